package services

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCreateScaleHeal creates a service, scales it up and down, and kills
// a replica's process: the replica is replaced in its slot.
func TestCreateScaleHeal(t *testing.T) {
	e := newEnv(t)
	e.ok("service", "create", "--name", "web", "--replicas", "3", "--stop-grace-period", "1s", e.image, "sleep", "3600")
	if r, w := e.ready("web"); r != 3 || w != 3 {
		t.Fatalf("after create: %d/%d ready, want 3/3", r, w)
	}
	rs := e.replicas("web")
	if len(rs) != 3 {
		t.Fatalf("berth ps shows %d replicas, want 3: %+v", len(rs), rs)
	}
	for _, r := range rs {
		if !strings.HasPrefix(r.Name, "web."+r.Slot+".") {
			t.Errorf("replica %s: name not SERVICE.SLOT.TASK", r.Name)
		}
	}

	victim := rs[0]
	syscall.Kill(victim.Pid, syscall.SIGKILL)
	eventually(t, 10*time.Second, "a replacement of the killed replica", func() bool {
		now := e.replicas("web")
		for _, r := range now {
			if r.Slot == victim.Slot && r.Task != victim.Task {
				return len(now) == 3
			}
		}
		return false
	})
	ps := e.ok("service", "ps", "web")
	if !strings.Contains(ps, "exited with status 137") {
		t.Errorf("service ps does not say why the replica went:\n%s", ps)
	}

	e.ok("service", "scale", "web=5")
	if r, w := e.ready("web"); r != 5 || w != 5 {
		t.Fatalf("after scale to 5: %d/%d ready", r, w)
	}
	e.ok("service", "scale", "web=1")
	eventually(t, 20*time.Second, "scale down to 1", func() bool { return len(e.replicas("web")) == 1 })

	e.ok("service", "rm", "web")
	eventually(t, 20*time.Second, "the replicas to go with the service", func() bool { return len(e.replicas("web")) == 0 })
}
