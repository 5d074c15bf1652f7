package runtime

import (
	"fmt"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

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
