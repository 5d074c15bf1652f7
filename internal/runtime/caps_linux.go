package runtime

import (
	"fmt"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var capsByName = func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
}()

func capabilityByName(name string) (capability.Cap, error) {
	c, ok := capsByName[strings.ToUpper(name)]
	if !ok {
		return 0, fmt.Errorf("unknown capability %q", name)
	}
	return c, nil
}

// capSet is the spec's capabilities resolved against the running kernel;
// capabilities the kernel does not know are skipped, as runc does.
type capSet struct {
	caps capability.Capabilities
	spec *specs.LinuxCapabilities
	last capability.Cap
}

func newCapSet(spec *specs.LinuxCapabilities) (*capSet, error) {
	c, err := capability.NewPid2(0)
	if err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	if err := c.Load(); err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	if spec == nil {
		spec = &specs.LinuxCapabilities{}
	}
	return &capSet{caps: c, spec: spec, last: last}, nil
}

func (s *capSet) list(names []string) []capability.Cap {
	var out []capability.Cap
	for _, n := range names {
		if c, err := capabilityByName(n); err == nil && c <= s.last {
			out = append(out, c)
		}
	}
	return out
}

// applyBounding drops every capability outside the bounding set.
func (s *capSet) applyBounding() error {
	s.caps.Clear(capability.BOUNDING)
	s.caps.Set(capability.BOUNDING, s.list(s.spec.Bounding)...)
	if err := s.caps.Apply(capability.BOUNDING); err != nil {
		return fmt.Errorf("capabilities: bounding set: %w", err)
	}
	return nil
}

// apply sets the effective, permitted, inheritable and ambient sets.
func (s *capSet) apply() error {
	s.caps.Clear(capability.CAPS | capability.AMBIENT)
	s.caps.Set(capability.EFFECTIVE, s.list(s.spec.Effective)...)
	s.caps.Set(capability.PERMITTED, s.list(s.spec.Permitted)...)
	s.caps.Set(capability.INHERITABLE, s.list(s.spec.Inheritable)...)
	s.caps.Set(capability.AMBIENT, s.list(s.spec.Ambient)...)
	if err := s.caps.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	if err := s.caps.Apply(capability.AMBIENT); err != nil {
		return fmt.Errorf("capabilities: ambient set: %w", err)
	}
	return nil
}
