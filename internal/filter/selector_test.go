package filter

import (
	"errors"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseSelector(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Selector
		str  string
	}{
		{"", nil, ""},
		{"app=web", Selector{{Key: "app", Op: Equals, Value: "web"}}, "app=web"},
		{"app==web", Selector{{Key: "app", Op: Equals, Value: "web"}}, "app=web"},
		{" app = web , tier!=db,berth.service, !canary ",
			Selector{{Key: "app", Op: Equals, Value: "web"}, {Key: "tier", Op: NotEquals, Value: "db"},
				{Key: "berth.service", Op: Exists}, {Key: "canary", Op: NotExists}},
			"app=web,tier!=db,berth.service,!canary"},
		{"empty=", Selector{{Key: "empty", Op: Equals}}, "empty="},
	} {
		got, err := ParseSelector(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %#v, want %#v", c.in, got, c.want)
		}
		if got.String() != c.str {
			t.Errorf("%q: String %q, want %q", c.in, got.String(), c.str)
		}
		if again, err := ParseSelector(got.String()); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%q: String does not parse back: %v %v", c.in, again, err)
		}
	}
	for _, bad := range []string{"a,,b", "=x", "!", "!a=b", "a b=c", "!=x"} {
		if _, err := ParseSelector(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: got %v, want an invalid argument", bad, err)
		}
	}
}

func TestSelectorMatches(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front", "empty": ""}
	for _, c := range []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"app", true},
		{"app=web", true},
		{"app=db", false},
		{"app!=db", true},
		{"app!=web", false},
		{"missing!=x", true},
		{"missing", false},
		{"!missing", true},
		{"!app", false},
		{"empty=", true},
		{"missing=", false},
		{"app=web,tier=front", true},
		{"app=web,tier=back", false},
		{"app=web,!canary", true},
	} {
		s, err := ParseSelector(c.sel)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Matches(labels); got != c.want {
			t.Errorf("%q: got %v, want %v", c.sel, got, c.want)
		}
	}
}
