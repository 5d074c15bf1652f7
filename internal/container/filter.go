package container

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filter"
	"github.com/berth-dev/berth/internal/image"
)

// What `ps --filter` and `events --filter` mean, on the one model of
// package filter: values of one key are alternatives, different keys and
// labels must all hold.

// Entry is a container with its state, as List returns them: what a
// container filter tests.
type Entry struct {
	Container *Container
	State     *State
}

// statuses are the values of status=, Docker's (berth has no "dead").
var statuses = []string{Created, Restarting, Running, Removing, Paused, Exited, "dead"}

// ParseFilter compiles `ps --filter` arguments:
//
//   - status=STATUS, one of created, restarting, running, removing,
//     paused, exited, dead (a status filter also selects stopped
//     containers, as `ps -a`: the caller asks f.Has("status"));
//   - name=PATTERN, the name or an unanchored regular expression
//     (filter.Pattern);
//   - id=PREFIX;
//   - label=KEY[=VALUE], label!=KEY[=VALUE];
//   - ancestor=IMAGE, the image as the container was created from it
//     (busybox and docker.io/library/busybox:latest are the same) or
//     its ID or ID prefix;
//   - exited=CODE, an exited container's exit status.
func ParseFilter(args []string) (*filter.Filter[Entry], error) {
	return filter.New(args,
		filter.Key[Entry]{Name: "status", Value: func(v string) (func(Entry) bool, error) {
			if !slices.Contains(statuses, v) {
				return nil, fmt.Errorf("unknown status %s (%s): %w", v, strings.Join(statuses, ", "), errdefs.ErrInvalidArgument)
			}
			return func(en Entry) bool { return en.State.Status == v }, nil
		}},
		filter.Key[Entry]{Name: "name", Value: func(v string) (func(Entry) bool, error) {
			match, err := filter.Pattern(v)
			if err != nil {
				return nil, err
			}
			return func(en Entry) bool { return match(en.Container.Name) }, nil
		}},
		filter.Key[Entry]{Name: "id", Value: func(v string) (func(Entry) bool, error) {
			return func(en Entry) bool { return strings.HasPrefix(en.Container.ID, v) }, nil
		}},
		filter.Labels(func(en Entry) map[string]string { return en.Container.Config.Labels }),
		filter.Key[Entry]{Name: "ancestor", Value: ancestor},
		filter.Key[Entry]{Name: "exited", Value: func(v string) (func(Entry) bool, error) {
			code, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("exited takes an exit status, a number: %w", errdefs.ErrInvalidArgument)
			}
			return func(en Entry) bool { return en.State.Status == Exited && en.State.ExitCode == code }, nil
		}},
	)
}

// ancestor tests whether a container was created from image v.
func ancestor(v string) (func(Entry) bool, error) {
	ref := v
	if r, err := image.ParseReference(v); err == nil {
		ref = r.String()
	}
	return func(en Entry) bool {
		c := en.Container
		if c.Image == v || c.ImageID.String() == v || strings.HasPrefix(c.ImageID.Encoded(), v) {
			return true
		}
		r, err := image.ParseReference(c.Image)
		return err == nil && r.String() == ref
	}, nil
}

// eventFilter compiles EventsOptions.Filters, the keys of Docker's
// container events:
//
//   - container=NAME|ID, an ID or name or a prefix of either (Docker's
//     fuzzy match);
//   - event=ACTION, such as die or exec_start (which also selects
//     "exec_start: sh");
//   - type=container;
//   - image=IMAGE, as the container names it, with or without its tag;
//   - label=KEY[=VALUE], label!=KEY[=VALUE], on the event's attributes.
func eventFilter(args []string) (*filter.Filter[*Event], error) {
	return filter.New(args,
		filter.Key[*Event]{Name: "container", Value: func(v string) (func(*Event) bool, error) {
			return func(ev *Event) bool {
				return strings.HasPrefix(ev.Actor.ID, v) || strings.HasPrefix(ev.Actor.Attributes["name"], v)
			}, nil
		}},
		filter.Key[*Event]{Name: "event", Value: func(v string) (func(*Event) bool, error) {
			return func(ev *Event) bool {
				action, _, _ := strings.Cut(ev.Action, ":")
				return ev.Action == v || action == v
			}, nil
		}},
		filter.Key[*Event]{Name: "type", Value: func(v string) (func(*Event) bool, error) {
			return func(ev *Event) bool { return ev.Type == v }, nil
		}},
		filter.Key[*Event]{Name: "image", Value: func(v string) (func(*Event) bool, error) {
			return func(ev *Event) bool {
				img := ev.Actor.Attributes["image"]
				return img == v || stripTag(img) == v
			}, nil
		}},
		filter.Labels(func(ev *Event) map[string]string { return ev.Actor.Attributes }),
	)
}

// stripTag drops a reference's :TAG (not a registry's :PORT).
func stripTag(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}
