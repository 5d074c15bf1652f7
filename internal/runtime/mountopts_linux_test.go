package runtime

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	o := parseMountOptions([]string{"nosuid", "noexec", "rw", "mode=755", "size=65536k", "rprivate", "rbind", "tmpcopyup"})
	if o.flags != unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_BIND|unix.MS_REC {
		t.Errorf("flags %#x", o.flags)
	}
	if o.clear != unix.MS_RDONLY || !o.bind {
		t.Errorf("clear %#x bind %v", o.clear, o.bind)
	}
	if o.data != "mode=755,size=65536k" {
		t.Errorf("data %q", o.data)
	}
	if len(o.propagation) != 1 || o.propagation[0] != unix.MS_PRIVATE|unix.MS_REC {
		t.Errorf("propagation %v", o.propagation)
	}
	// A later option overrides an earlier one.
	if o := parseMountOptions([]string{"ro", "rw"}); o.flags&unix.MS_RDONLY != 0 {
		t.Error("rw after ro left the mount read-only")
	}
}
