package filter

import (
	"errors"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

// box is a stand-in object with a status, a name and labels.
type box struct {
	status, name string
	labels       map[string]string
}

var boxKeys = []Key[box]{
	{Name: "status", Value: func(v string) (func(box) bool, error) {
		return func(b box) bool { return b.status == v }, nil
	}},
	{Name: "name", Value: func(v string) (func(box) bool, error) {
		match, err := Pattern(v)
		if err != nil {
			return nil, err
		}
		return func(b box) bool { return match(b.name) }, nil
	}},
	Labels(func(b box) map[string]string { return b.labels }),
}

func TestFilterMatch(t *testing.T) {
	web := box{"running", "web", map[string]string{"app": "shop", "tier": "front"}}
	db := box{"exited", "db", map[string]string{"app": "shop"}}
	old := box{"created", "webold", nil}
	all := []box{web, db, old}
	for _, c := range []struct {
		args []string
		want []string // names selected
	}{
		{nil, []string{"web", "db", "webold"}},
		// The same key repeated: either value.
		{[]string{"status=running", "status=exited"}, []string{"web", "db"}},
		// Different keys: both.
		{[]string{"status=running", "name=web"}, []string{"web"}},
		{[]string{"status=exited", "name=web"}, nil},
		{[]string{"status=running", "status=created", "name=web"}, []string{"web", "webold"}},
		// Names as Docker's: an unanchored regular expression.
		{[]string{"name=web"}, []string{"web", "webold"}},
		{[]string{"name=^web$"}, []string{"web"}},
		{[]string{"name=b"}, []string{"web", "db", "webold"}},
		// Labels: every one must hold, repeated or not.
		{[]string{"label=app"}, []string{"web", "db"}},
		{[]string{"label=app=shop", "label=tier=front"}, []string{"web"}},
		{[]string{"label=app", "label=tier"}, []string{"web"}},
		{[]string{"label=app=cart"}, nil},
		{[]string{"label=app=shop", "status=exited"}, []string{"db"}},
		// label!=: absent, or absent or another value.
		{[]string{"label!=tier"}, []string{"db", "webold"}},
		{[]string{"label!=tier=front"}, []string{"db", "webold"}},
		{[]string{"label!=tier=back"}, []string{"web", "db", "webold"}},
		{[]string{"label=app", "label!=tier"}, []string{"db"}},
		{[]string{"label!=app", "label!=tier"}, []string{"webold"}},
		// A label value may hold "=": split at the first one.
		{[]string{"label=app=shop=1"}, nil},
	} {
		f, err := New(c.args, boxKeys...)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		var got []string
		for _, b := range all {
			if f.Match(b) {
				got = append(got, b.name)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.args, got, c.want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	for _, c := range []struct{ arg, want string }{
		{"x=1", `--filter "x=1": unknown filter x (status, name, label): invalid argument`},
		{"status", `--filter "status": use KEY=VALUE: invalid argument`},
		{"=running", `--filter "=running": use KEY=VALUE: invalid argument`},
		{"status=", `--filter "status=": use KEY=VALUE: invalid argument`},
		{"!=x", `--filter "!=x": use KEY=VALUE: invalid argument`},
		{"status!=running", `--filter "status!=running": only label filters take !=, use status=VALUE: invalid argument`},
		{"label==x", `--filter "label==x": no label key, use label=KEY or label=KEY=VALUE: invalid argument`},
		{"name=[", "--filter \"name=[\": error parsing regexp: missing closing ]: `[`: invalid argument"},
	} {
		_, err := New([]string{"status=running", c.arg}, boxKeys...)
		if err == nil || err.Error() != c.want || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: got %v, want %s", c.arg, err, c.want)
		}
	}
}

func TestFilterHas(t *testing.T) {
	f, err := New([]string{"name=web", "label!=app"}, boxKeys...)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Has("name") || !f.Has("label") || f.Has("status") {
		t.Errorf("Has: name %v, label %v, status %v", f.Has("name"), f.Has("label"), f.Has("status"))
	}
	var none *Filter[box]
	if none.Has("name") || !none.Match(box{}) {
		t.Error("a nil filter must match everything and have no key")
	}
}
