package runtime

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func validateProcessPlatform(p *specs.Process) error {
	for i, r := range p.Rlimits {
		if _, ok := rlimitNames[r.Type]; !ok {
			return invalid(fmt.Sprintf("process.rlimits[%d].type", i), "unknown rlimit %q", r.Type)
		}
		if r.Soft > r.Hard {
			return invalid(fmt.Sprintf("process.rlimits[%d]", i), "soft limit %d exceeds hard limit %d", r.Soft, r.Hard)
		}
	}
	if c := p.Capabilities; c != nil {
		for set, list := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective,
			"permitted": c.Permitted, "inheritable": c.Inheritable, "ambient": c.Ambient} {
			for _, name := range list {
				if _, err := capabilityByName(name); err != nil {
					return invalid("process.capabilities."+set, "%v", err)
				}
			}
		}
	}
	return nil
}
