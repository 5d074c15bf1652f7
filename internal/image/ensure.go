package image

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// PullPolicy says when Ensure pulls an image. The names are Compose's
// pull_policy values; Kubernetes' imagePullPolicy spellings are accepted by
// ParsePullPolicy too.
type PullPolicy string

// Pull policies.
const (
	// PullMissing pulls only an image the store does not have (Docker's
	// and Podman's default; Kubernetes' IfNotPresent).
	PullMissing PullPolicy = "missing"
	// PullAlways pulls every time, so that a moved tag is followed.
	PullAlways PullPolicy = "always"
	// PullNever uses only what the store has.
	PullNever PullPolicy = "never"
)

// ParsePullPolicy reads a policy as users write it: always, missing or
// never (Compose, Podman's --pull), or Kubernetes' Always, IfNotPresent and
// Never. An empty string is PullMissing.
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch strings.ToLower(s) {
	case "", "missing", "ifnotpresent", "if_not_present":
		return PullMissing, nil
	case "always":
		return PullAlways, nil
	case "never":
		return PullNever, nil
	}
	return "", fmt.Errorf("pull policy %q: use always, missing or never: %w", s, errdefs.ErrInvalidArgument)
}

// Ensure returns the image name refers to, pulling it first as policy
// says. A PullMissing pull is announced to o.Progress's Step; an image that
// is neither here nor pullable is one error that names both facts.
func (s *Store) Ensure(ctx context.Context, name string, policy PullPolicy, o PullOptions) (*Image, error) {
	if policy == "" {
		policy = PullMissing
	}
	img, getErr := s.Get(name)
	err := getErr
	switch {
	case err == nil && policy != PullAlways:
		return img, nil
	case err != nil && !errors.Is(err, errdefs.ErrNotFound):
		return nil, err
	case err != nil && policy == PullNever:
		return nil, fmt.Errorf("%w, and the pull policy is never", err)
	}
	ref, err := ParseReference(name)
	if err != nil {
		return nil, err
	}
	if img == nil {
		o.Progress.step("Image %s not found here; pulling it", ref)
	} else {
		o.Progress.step("Pulling %s", ref)
	}
	pulled, err := s.Pull(ctx, ref, o)
	if err != nil {
		if img == nil {
			var nf *notFoundError
			if errors.As(getErr, &nf) && nf.others != "" {
				return nil, fmt.Errorf("image %s is not here (%s) and could not be pulled: %w", name, nf.others, err)
			}
			return nil, fmt.Errorf("image %s is not here and could not be pulled: %w", name, err)
		}
		return nil, fmt.Errorf("image %s could not be pulled: %w", name, err)
	}
	return pulled, nil
}
