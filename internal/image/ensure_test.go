package image

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/registrytest"
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
