package container

import (
	"errors"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
)

func TestParseFilter(t *testing.T) {
	img := digest.FromString("busybox")
	entry := func(id, name, status string, code int, labels map[string]string) Entry {
		return Entry{
			Container: &Container{ID: id, Name: name, Image: "busybox", ImageID: img, Config: Config{Labels: labels}},
			State:     &State{Status: status, ExitCode: code},
		}
	}
	all := []Entry{
		entry("aaa111", "web", Running, 0, map[string]string{"app": "shop", "tier": "front"}),
		entry("bbb222", "db", Exited, 3, map[string]string{"app": "shop"}),
		entry("aaa333", "webold", Exited, 0, nil),
		entry("ccc444", "new", Created, 0, nil),
	}
	all[3].Container.Image, all[3].Container.ImageID = "docker.io/library/alpine:3", digest.FromString("alpine")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"web", "db", "webold", "new"}},
		// Docker: the same key repeated is either value...
		{[]string{"status=running", "status=exited"}, []string{"web", "db", "webold"}},
		{[]string{"exited=0", "exited=3"}, []string{"db", "webold"}},
		{[]string{"id=aaa", "id=ccc"}, []string{"web", "webold", "new"}},
		// ...different keys must all hold...
		{[]string{"status=running", "name=web"}, []string{"web"}},
		{[]string{"status=exited", "name=web"}, []string{"webold"}},
		{[]string{"status=exited", "exited=0"}, []string{"webold"}},
		// ...and so must every label filter.
		{[]string{"label=app=shop", "label=tier=front"}, []string{"web"}},
		{[]string{"label=app", "label!=tier"}, []string{"db"}},
		// Names are unanchored regular expressions, IDs prefixes.
		{[]string{"name=^web$"}, []string{"web"}},
		{[]string{"name=e"}, []string{"web", "webold", "new"}},
		{[]string{"id=333"}, nil},
		// exited= is an exited container's status.
		{[]string{"exited=0"}, []string{"webold"}},
		// ancestor= is the image as named, normalised, or its ID.
		{[]string{"ancestor=busybox"}, []string{"web", "db", "webold"}},
		{[]string{"ancestor=docker.io/library/busybox:latest"}, []string{"web", "db", "webold"}},
		{[]string{"ancestor=alpine:3"}, []string{"new"}},
		{[]string{"ancestor=" + img.Encoded()[:12]}, []string{"web", "db", "webold"}},
		{[]string{"ancestor=alpine"}, nil},
	} {
		f, err := ParseFilter(c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		var got []string
		for _, en := range all {
			if f.Match(en) {
				got = append(got, en.Container.Name)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.args, got, c.want)
		}
	}
	for _, c := range []struct{ arg, want string }{
		{"colour=red", `--filter "colour=red": unknown filter colour (status, name, id, label, ancestor, exited): invalid argument`},
		{"status", `--filter "status": use KEY=VALUE: invalid argument`},
		{"status=up", `--filter "status=up": unknown status up (created, restarting, running, removing, paused, exited, dead): invalid argument`},
		{"exited=x", `--filter "exited=x": exited takes an exit status, a number: invalid argument`},
	} {
		if _, err := ParseFilter([]string{c.arg}); err == nil || err.Error() != c.want || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: got %v, want %s", c.arg, err, c.want)
		}
	}
	if f, _ := ParseFilter([]string{"status=exited"}); !f.Has("status") {
		t.Error("Has(status) is false with a status filter")
	}
}

func TestEventFilterDocker(t *testing.T) {
	ev := &Event{Type: "container", Action: "start", Actor: EventActor{ID: "abcdef0123",
		Attributes: map[string]string{"name": "web", "image": "docker.io/library/busybox:latest", "app": "shop", "tier": "front"}}}
	for _, c := range []struct {
		filters []string
		want    bool
	}{
		{[]string{"container=we"}, true}, // a name prefix, as Docker's FuzzyMatch
		{[]string{"container=a"}, true},
		{[]string{"container=eb"}, false},
		{[]string{"image=docker.io/library/busybox"}, true}, // without its tag
		{[]string{"image=docker.io/library/busybox:1"}, false},
		{[]string{"label=app=shop", "label=tier=front"}, true},
		{[]string{"label=app=shop", "label=tier=back"}, false}, // labels are all required, as Docker's
		{[]string{"label!=tier=back"}, true},
		{[]string{"event=start", "event=die"}, true},
	} {
		match, err := eventFilter(c.filters)
		if err != nil {
			t.Fatal(err)
		}
		if got := match.Match(ev); got != c.want {
			t.Errorf("%q: got %v, want %v", c.filters, got, c.want)
		}
	}
}
