// Package filter is berth's one model of filters: the --filter KEY=VALUE
// arguments of ps, images and events, and the label selectors that the
// control plane's controllers use to find their containers.
//
// A command names the keys it accepts and says what one value of each
// means for its objects (a container with its state, an image under one
// of its names, an event); New compiles the arguments into a Filter, whose
// Match follows Docker's rules:
//
//   - values of one key are alternatives: status=running with
//     status=exited selects both;
//   - different keys must all hold: status=running with name=web selects
//     the running containers whose names match web;
//   - except labels: every label filter must hold, repeated or not, so
//     label=a with label=b selects what has both labels (Docker matches
//     labels with MatchKVList, which wants every value to match).
//
// Label filters are label=KEY (the label is set), label=KEY=VALUE, and,
// as Podman takes them, label!=KEY (not set) and label!=KEY=VALUE (not set
// or set to another value). Together they are a Selector, the
// Kubernetes-style label selector that code outside the CLI uses
// directly. Docker takes label!= only in prune filters, where an object is
// kept unless it matches every label!= at once; here, as in Kubernetes
// and Podman, each one must hold.
package filter

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Key is one filter key a command accepts and what its values mean for
// objects of type T. Exactly one of Value and Labels is set.
type Key[T any] struct {
	Name string
	// Value compiles one value of the key into a test. Its error says
	// what is wrong with the value and wraps an errdefs class; New puts
	// the argument in front of it.
	Value func(value string) (func(T) bool, error)
	// Labels makes the key a label filter on the labels it returns.
	Labels func(T) map[string]string
}

// Labels returns the "label" key for objects whose labels get returns.
func Labels[T any](get func(T) map[string]string) Key[T] {
	return Key[T]{Name: "label", Labels: get}
}

// Filter is a compiled set of filter arguments. A nil Filter matches
// everything.
type Filter[T any] struct {
	given    map[string]bool
	groups   [][]func(T) bool // one per key; any test of a group may hold
	labels   func(T) map[string]string
	selector Selector
}

// New compiles args (KEY=VALUE, or label!=VALUE) against keys. Its errors
// are one line that quotes the argument, and wrap
// errdefs.ErrInvalidArgument unless a key's Value said otherwise (an
// image that before= names may not exist).
func New[T any](args []string, keys ...Key[T]) (*Filter[T], error) {
	f := &Filter[T]{given: map[string]bool{}}
	group := map[string]int{}
	for _, arg := range args {
		name, value, not, err := split(arg)
		if err != nil {
			return nil, err
		}
		k := find(keys, name)
		switch {
		case k == nil:
			return nil, fmt.Errorf("--filter %q: unknown filter %s (%s): %w", arg, name, names(keys), errdefs.ErrInvalidArgument)
		case k.Labels != nil:
			r, err := labelRequirement(value, not)
			if err != nil {
				return nil, fmt.Errorf("--filter %q: %w", arg, err)
			}
			f.labels, f.selector = k.Labels, append(f.selector, r)
		case not:
			return nil, fmt.Errorf("--filter %q: only label filters take !=, use %s=VALUE: %w", arg, name, errdefs.ErrInvalidArgument)
		default:
			test, err := k.Value(value)
			if err != nil {
				return nil, fmt.Errorf("--filter %q: %w", arg, err)
			}
			i, ok := group[name]
			if !ok {
				i = len(f.groups)
				group[name] = i
				f.groups = append(f.groups, nil)
			}
			f.groups[i] = append(f.groups[i], test)
		}
		f.given[name] = true
	}
	return f, nil
}

// Has reports whether the arguments use key (with = or !=).
func (f *Filter[T]) Has(key string) bool { return f != nil && f.given[key] }

// Match reports whether v passes: for each key one of its values, and
// every label filter.
func (f *Filter[T]) Match(v T) bool {
	if f == nil {
		return true
	}
	for _, tests := range f.groups {
		ok := false
		for _, t := range tests {
			if ok = t(v); ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return len(f.selector) == 0 || f.selector.Matches(f.labels(v))
}

// split reads KEY=VALUE or KEY!=VALUE; neither part may be empty.
func split(arg string) (key, value string, not bool, err error) {
	key, value, ok := strings.Cut(arg, "=")
	if key, not = strings.CutSuffix(key, "!"); !ok || key == "" || value == "" {
		return "", "", false, fmt.Errorf("--filter %q: use KEY=VALUE: %w", arg, errdefs.ErrInvalidArgument)
	}
	return key, value, not, nil
}

// labelRequirement reads a label filter's value as Docker does: KEY or
// KEY=VALUE, split at the first "=".
func labelRequirement(value string, not bool) (Requirement, error) {
	k, v, hasValue := strings.Cut(value, "=")
	if k == "" {
		return Requirement{}, fmt.Errorf("no label key, use label=KEY or label=KEY=VALUE: %w", errdefs.ErrInvalidArgument)
	}
	r := Requirement{Key: k, Value: v}
	switch {
	case hasValue && not:
		r.Op = NotEquals
	case hasValue:
		r.Op = Equals
	case not:
		r.Op = NotExists
	default:
		r.Op = Exists
	}
	return r, nil
}

func find[T any](keys []Key[T], name string) *Key[T] {
	for i := range keys {
		if keys[i].Name == name {
			return &keys[i]
		}
	}
	return nil
}

func names[T any](keys []Key[T]) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k.Name
	}
	return strings.Join(s, ", ")
}
