package image

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/registrytest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	bolt "go.etcd.io/bbolt"
)

func TestParsePullPolicy(t *testing.T) {
	for in, want := range map[string]PullPolicy{
		"": PullMissing, "missing": PullMissing, "IfNotPresent": PullMissing, "if_not_present": PullMissing,
		"always": PullAlways, "Always": PullAlways, "never": PullNever, "Never": PullNever,
	} {
		if got, err := ParsePullPolicy(in); err != nil || got != want {
			t.Errorf("ParsePullPolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParsePullPolicy("sometimes"); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "always, missing or never") {
		t.Errorf("ParsePullPolicy(sometimes) = %v, want an invalid argument naming the policies", err)
	}
}

// TestEnsure follows each policy against a real registry whose tag moves:
// missing pulls once and then keeps what it has, always follows the tag,
// never uses only the store.
func TestEnsure(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t)
	ref := reg.Ref("ensure/bb:1")
	ctx := context.Background()
	s := newStore(t)

	if _, err := s.Ensure(ctx, ref, PullNever, PullOptions{}); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "pull policy is never") {
		t.Fatalf("never, image absent: %v, want not found naming the policy", err)
	}
	if _, err := s.Ensure(ctx, ref, PullMissing, PullOptions{}); err == nil || !strings.Contains(err.Error(), "is not here and could not be pulled") {
		t.Fatalf("missing, image absent everywhere: %v, want one error naming both facts", err)
	}

	reg.PushBusybox(t, ref)
	var steps []string
	progress := &Progress{Step: func(f string, a ...any) { steps = append(steps, f) }}
	first, err := s.Ensure(ctx, ref, PullMissing, PullOptions{Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 || !strings.Contains(steps[0], "not found here") {
		t.Errorf("missing pull announced %q, want a not-found-here line first", steps)
	}

	// The tag moves to another image.
	reg.Push(t, ref, registrytest.NewImage(t, registrytest.WithLayers(registrytest.FileLayer(t, map[string]string{"moved": "yes"}))))
	for _, p := range []PullPolicy{PullMissing, PullNever} {
		img, err := s.Ensure(ctx, ref, p, PullOptions{})
		if err != nil || img.ID != first.ID {
			t.Errorf("%s with the image here: %v %v, want the stored image without a pull", p, img, err)
		}
	}
	moved, err := s.Ensure(ctx, ref, PullAlways, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if moved.ID == first.ID {
		t.Errorf("always kept %s, want the image the tag moved to", first.ID)
	}
}

// TestShortNames looks short names up as Podman does: localhost/NAME
// first, then Docker Hub's NAME, then an image of any registry named
// …/NAME if only one image is; a missing tag names the tags there are.
func TestShortNames(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	add := func(label string, names ...string) *Image {
		t.Helper()
		img, err := s.AddImage(ctx, &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{Labels: map[string]string{"l": label}}}, nil, names)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	local := add("local", "localhost/bb:latest", "localhost/bb:1")
	hub := add("hub", "docker.io/library/bb:latest", "docker.io/library/hub:1")
	quay := add("quay", "quay.io/org/tool:2", "quay.io/org/app:3")
	add("other", "example.com/app:3")

	for _, c := range []struct{ name, want, tag string }{
		{"bb", local.ID.String(), "localhost/bb:latest"},
		{"bb:1", local.ID.String(), "localhost/bb:1"},
		{"docker.io/bb", hub.ID.String(), "docker.io/library/bb:latest"},
		{"library/bb", hub.ID.String(), "docker.io/library/bb:latest"},
		{"hub:1", hub.ID.String(), "docker.io/library/hub:1"},
		{"tool:2", quay.ID.String(), "quay.io/org/tool:2"},
		{"org/tool:2", quay.ID.String(), "quay.io/org/tool:2"},
		{local.ID.Encoded()[:12], local.ID.String(), ""},
	} {
		var f found
		err := s.index.view(func(tx *bolt.Tx) (err error) { f, err = lookup(tx, c.name); return err })
		if err != nil || f.img.ID.String() != c.want || f.tag != c.tag {
			t.Errorf("%s: %v %v, want %s by %q", c.name, f, err, c.want, c.tag)
		}
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"bb:2", errdefs.ErrNotFound, `image "bb:2" not found; docker.io/library/bb has tag latest; localhost/bb has tags 1, latest`},
		{"localhost/bb:2", errdefs.ErrNotFound, `image "localhost/bb:2" not found; localhost/bb has tags 1, latest`},
		{"quay.io/bb", errdefs.ErrNotFound, `image "quay.io/bb": not found`},
		{"app:3", errdefs.ErrInvalidArgument, `short name "app:3" matches several images (example.com/app:3, quay.io/org/app:3); give the full name`},
	} {
		_, err := s.Get(c.name)
		if !errors.Is(err, c.err) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := s.Ensure(ctx, "bb:2", PullNever, PullOptions{}); err == nil || !strings.Contains(err.Error(), "localhost/bb has tags 1, latest") {
		t.Errorf("Ensure bb:2 never: %v, want the tags there are", err)
	}
	// rmi of a short name untags the name it found.
	untagged, _, err := s.Remove("bb:1", false)
	if err != nil || len(untagged) != 1 || untagged[0] != "localhost/bb:1" {
		t.Errorf("Remove bb:1: %v %v, want localhost/bb:1 untagged", untagged, err)
	}
}
