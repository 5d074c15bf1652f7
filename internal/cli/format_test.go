package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

type testRow struct {
	ID, Names, Labels string
	Args              []string
}

var testRows = []testRow{
	{ID: "abc", Names: "web", Labels: "a=1,b=<2>", Args: []string{"sh", "-c"}},
	{ID: "defghi", Names: "database", Args: []string{"true"}},
}

func TestListFormat(t *testing.T) {
	const def = `table {{.ID}}\t{{.Names}}`
	titles := map[string]string{"ID": "CONTAINER ID"}
	for _, c := range []struct {
		spec string
		rows []testRow
		want string
	}{
		{"", testRows, "CONTAINER ID   NAMES\nabc            web\ndefghi         database\n"},
		{"table", testRows, "CONTAINER ID   NAMES\nabc            web\ndefghi         database\n"},
		{"", nil, "CONTAINER ID   NAMES\n"},
		{"table {{.Names}}\t{{json .Labels}}", testRows, "NAMES      LABELS\nweb        \"a=1,b=<2>\"\ndatabase   \"\"\n"},
		{`table {{upper .Names}}\t{{.ID}}`, testRows[:1], "NAMES   CONTAINER ID\nWEB     abc\n"},
		{"{{.Names}}", testRows, "web\ndatabase\n"},
		{`{{.Names}}\t{{.ID}}`, testRows[:1], "web\tabc\n"},
		{`{{.ID}}\n{{.Names}}`, testRows[:1], "abc\nweb\n"},
		{"json", testRows[:1], `{"ID":"abc","Names":"web","Labels":"a=1,b=<2>","Args":["sh","-c"]}` + "\n"},
		{" json ", nil, ""},
		{`{{join .Args " "}}|{{title .Names}}|{{pad .Names 1 2}}|{{truncate .Names 2}}|{{lower "A"}}|{{split .Labels ","}}`, testRows[:1],
			"sh -c|Web| web  |we|a|[a=1 b=<2>]\n"},
	} {
		f, err := parseListFormat(c.spec, def, titles)
		if err != nil {
			t.Fatalf("%q: %v", c.spec, err)
		}
		var b bytes.Buffer
		if err := printList(&b, f, c.rows); err != nil {
			t.Fatalf("%q: %v", c.spec, err)
		}
		if b.String() != c.want {
			t.Errorf("%q: got\n%q, want\n%q", c.spec, b.String(), c.want)
		}
	}
}

func TestFormatErrors(t *testing.T) {
	_, err := parseListFormat("{{.Names", "", nil)
	if want := `--format: template: format:1: unclosed action: invalid argument`; err == nil || err.Error() != want || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("parse: got %v, want %s", err, want)
	}
	if _, err := parseInspectFormat("{{end}}"); !errors.Is(err, errdefs.ErrInvalidArgument) || strings.Contains(err.Error(), "\n") {
		t.Errorf("inspect parse: %v", err)
	}
	f, err := parseListFormat("{{.Colour}}", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	err = printList(&b, f, testRows)
	if err == nil || !strings.HasPrefix(err.Error(), "--format: template: format:1:2: executing") ||
		strings.Contains(err.Error(), "\n") || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("execute: %v", err)
	}
	if b.Len() != 0 {
		t.Errorf("a failed template printed %q", b.String())
	}
}

type testDetails struct {
	ID     string            `json:"Id"`
	Labels map[string]string `json:"Labels"`
}

func TestInspectFormat(t *testing.T) {
	items := []testDetails{{ID: "abc", Labels: map[string]string{"a": "1"}}, {ID: "def"}}
	for _, c := range []struct{ spec, want string }{
		{"", "[\n    {\n        \"Id\": \"abc\",\n        \"Labels\": {\n            \"a\": \"1\"\n        }\n    },\n    {\n        \"Id\": \"def\",\n        \"Labels\": null\n    }\n]\n"},
		{"json", `[{"Id":"abc","Labels":{"a":"1"}},{"Id":"def","Labels":null}]` + "\n"},
		{"{{.Id}} {{json .Labels}}", "abc {\"a\":\"1\"}\ndef null\n"},
		{`{{.Id}}\t`, "abc\\t\ndef\\t\n"}, // inspect, as Docker's, leaves \t alone
	} {
		f, err := parseInspectFormat(c.spec)
		if err != nil {
			t.Fatalf("%q: %v", c.spec, err)
		}
		var b bytes.Buffer
		if err := printInspect(&b, f, items); err != nil {
			t.Fatalf("%q: %v", c.spec, err)
		}
		if b.String() != c.want {
			t.Errorf("%q: got\n%q, want\n%q", c.spec, b.String(), c.want)
		}
	}
}
