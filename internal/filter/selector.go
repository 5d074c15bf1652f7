package filter

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Op is how a Requirement tests a label.
type Op int

// The operators of a label selector.
const (
	Exists    Op = iota // KEY: the label is set
	NotExists           // !KEY: the label is not set
	Equals              // KEY=VALUE (or KEY==VALUE): set to VALUE
	NotEquals           // KEY!=VALUE: not set, or set to another value
)

// Requirement is one condition on labels.
type Requirement struct {
	Key   string
	Op    Op
	Value string // for Equals and NotEquals
}

// Matches reports whether labels meet r.
func (r Requirement) Matches(labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Op {
	case Exists:
		return ok
	case NotExists:
		return !ok
	case Equals:
		return ok && v == r.Value
	case NotEquals:
		return !ok || v != r.Value
	}
	return false
}

// String is r in selector syntax: KEY, !KEY, KEY=VALUE or KEY!=VALUE.
func (r Requirement) String() string {
	switch r.Op {
	case NotExists:
		return "!" + r.Key
	case Equals:
		return r.Key + "=" + r.Value
	case NotEquals:
		return r.Key + "!=" + r.Value
	}
	return r.Key
}

// Selector is a Kubernetes-style label selector: labels match when they
// meet every requirement. The empty selector matches all labels.
type Selector []Requirement

// Matches reports whether labels meet every requirement of s.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		if !r.Matches(labels) {
			return false
		}
	}
	return true
}

// String is s in the syntax ParseSelector reads.
func (s Selector) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// ParseSelector reads a selector as Kubernetes writes one: requirements
// separated by commas, each KEY, !KEY, KEY=VALUE, KEY==VALUE or
// KEY!=VALUE (spaces around the parts are dropped; values may be empty,
// keys may not, and neither may hold a comma). The empty string is the
// empty selector.
func ParseSelector(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var sel Selector
	for _, part := range strings.Split(s, ",") {
		r, err := parseRequirement(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("label selector %q: %w", s, err)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

func parseRequirement(s string) (Requirement, error) {
	r := Requirement{Key: s, Op: Exists}
	if k, ok := strings.CutPrefix(s, "!"); ok {
		r = Requirement{Key: k, Op: NotExists}
	} else if k, v, ok := strings.Cut(s, "="); ok {
		r = Requirement{Key: k, Op: Equals, Value: strings.TrimPrefix(v, "=")}
		if k, ok = strings.CutSuffix(k, "!"); ok {
			r = Requirement{Key: k, Op: NotEquals, Value: v}
		}
	}
	r.Key, r.Value = strings.TrimSpace(r.Key), strings.TrimSpace(r.Value)
	if r.Key == "" {
		return r, fmt.Errorf("requirement %q has no key: %w", s, errdefs.ErrInvalidArgument)
	}
	if strings.ContainsAny(r.Key, "=! ") {
		return r, fmt.Errorf("requirement %q: a key cannot hold '=', '!' or spaces: %w", s, errdefs.ErrInvalidArgument)
	}
	return r, nil
}
