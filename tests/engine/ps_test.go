package engine

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPsFilters checks Docker's filter semantics through the binary: the
// same key repeated is either value, different keys and labels must all
// hold; and --format as every list command reads it.
func TestPsFilters(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	e.must("run", "-d", "--name", "web", "--network", "none", "--label", "app=shop", "--label", "tier=front", img, "sleep", "1000")
	if _, errOut, code := e.run("run", "--name", "job", "--network", "none", "--label", "app=shop", img, "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("run job: exit %d, want 3: %s", code, errOut)
	}
	e.must("create", "--name", "new", "--network", "none", img)

	names := func(args ...string) string {
		t.Helper()
		got := strings.Fields(e.must(append([]string{"ps", "--format", "{{.Names}}"}, args...)...))
		slices.Sort(got)
		return strings.Join(got, " ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-a", "--filter", "status=running", "--filter", "status=exited"}, "job web"},
		{[]string{"--filter", "status=running", "--filter", "status=exited"}, "job web"}, // status implies -a, as Docker's
		{[]string{"-a", "--filter", "status=running", "--filter", "name=web"}, "web"},
		{[]string{"-a", "--filter", "status=exited", "--filter", "name=web"}, ""},
		{[]string{"-a", "--filter", "label=app=shop", "--filter", "label=tier=front"}, "web"},
		{[]string{"-a", "--filter", "label=app=shop", "--filter", "label!=tier"}, "job"},
		{[]string{"-a", "--filter", "exited=3"}, "job"},
		{[]string{"-a", "--filter", "name=^ne", "--filter", "name=^jo"}, "job new"},
		{[]string{"-a", "--filter", "ancestor=" + img}, "job new web"},
		{[]string{"--filter", "label=app"}, "web"}, // without -a, only running ones
	} {
		if got := names(c.args...); got != c.want {
			t.Errorf("ps %v: %q, want %q", c.args, got, c.want)
		}
	}
	e.fails(`--filter "x=1": unknown filter x (status, name, id, label, ancestor, exited)`, "ps", "--filter", "x=1")
	e.fails(`--filter "status": use KEY=VALUE`, "ps", "--filter", "status")
	if _, _, code := e.run("ps", "--filter", "status=up"); code != 2 {
		t.Errorf("ps with a bad status: exit %d, want 2", code)
	}

	// --format: a table's titles, JSON lines, a template error.
	if got := e.must("ps", "--format", `table {{.Names}}\t{{.State}}`); got != "NAMES   STATE\nweb     running" {
		t.Errorf("ps --format table: %q", got)
	}
	if got := e.must("ps", "--format", "json"); !strings.HasPrefix(got, `{"ID":"`) || !strings.Contains(got, `"Names":"web"`) || strings.Contains(got, "\n") {
		t.Errorf("ps --format json: %q", got)
	}
	e.fails("--format: template: ", "ps", "--format", "{{.Nope}}")
	if _, _, code := e.run("ps", "--format", "{{.Names"); code != 2 {
		t.Errorf("ps with a bad template: exit %d, want 2", code)
	}

	// events: the same model (labels all required, an event repeated is
	// either).
	got := e.must("events", "--since", since, "--until", "0s", "--filter", "label=app=shop", "--filter", "label=tier=front",
		"--filter", "event=create", "--filter", "event=start", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	if got != "create web\nstart web" {
		t.Errorf("events with two labels and two events: %q", got)
	}
}
