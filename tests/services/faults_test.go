package services

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sleeper is the arguments of `service create` for n busybox replicas
// that sleep, named name, with flags before the image.
func (e *env) sleeper(name string, n int, flags ...string) []string {
	args := append([]string{"service", "create", "--name", name, "--replicas", fmt.Sprint(n), "--stop-grace-period", "1s"}, flags...)
	return append(args, e.image, "sleep", "3600")
}

// TestKillMidCreate kills the control plane with SIGKILL while it creates
// six replicas: the next service command starts it again, and it finishes
// the create with one container per slot and none left over.
func TestKillMidCreate(t *testing.T) {
	e := newEnv(t)
	wait := e.start(e.sleeper("web", 6)...)
	// Kill it when the first container exists (maybe not started yet),
	// and again, once started, when three do.
	for i, at := range []int{1, 3} {
		eventually(t, 30*time.Second, fmt.Sprintf("%d replica containers", at), func() bool { return len(e.containers("web")) >= at })
		e.killServe(syscall.SIGKILL)
		t.Logf("kill %d: with %d containers, %d running", i+1, len(e.containers("web")), len(e.running("web")))
		if i == 0 {
			if code, _, _ := wait(); code == 0 {
				t.Log("service create finished before the kill") // the kill still tests a restart
			}
		}
		e.ok("service", "ps", "web") // starts the control plane again
	}
	before := e.converged("web", 6, 45*time.Second)
	time.Sleep(2 * time.Second) // a pass that would duplicate or remove has had its chance
	after := e.converged("web", 6, time.Second)
	if !slices.Equal(ids(before), ids(after)) {
		t.Errorf("the replicas changed after the create finished:\n%v\n%v", before, after)
	}
}

// TestKillMidRollout kills the control plane with SIGKILL in the middle of
// a slow rollout: started again, it finishes the rollout from where it was.
func TestKillMidRollout(t *testing.T) {
	e := newEnv(t)
	e.ok(e.sleeper("web", 4, "--update-delay", "1s", "--update-parallelism", "1")...)
	old := e.converged("web", 4, 30*time.Second)
	e.ok("service", "update", "-d", "--env-add", "A=1", "web")
	eventually(t, 30*time.Second, "the rollout to replace a replica", func() bool {
		for _, r := range e.running("web") {
			if r.Revision == "2" {
				return true
			}
		}
		return false
	})
	e.killServe(syscall.SIGKILL)
	var mid []string
	done := map[string]bool{} // replicas already of revision 2: they stay
	for _, r := range e.running("web") {
		mid = append(mid, r.Slot+"@"+r.Revision)
		if r.Revision == "2" {
			done[r.ID] = true
		}
	}
	t.Logf("killed with replicas %v", mid)

	e.ok("service", "ps", "web")
	eventually(t, 60*time.Second, "the rollout to finish", func() bool {
		svc := e.service("web")
		return svc.Status.Revision == 2 && svc.Status.Update == "completed"
	})
	rs := e.converged("web", 4, 30*time.Second)
	for _, r := range rs {
		delete(done, r.ID)
		if r.Revision != "2" {
			t.Errorf("replica %s runs revision %s after the rollout", r.Name, r.Revision)
		}
		if slices.ContainsFunc(old, func(o replica) bool { return o.ID == r.ID }) {
			t.Errorf("replica %s of the old revision still runs", r.Name)
		}
		if env := e.ok("inspect", "-f", "{{json .Config.Env}}", r.ID); !strings.Contains(env, `"A=1"`) {
			t.Errorf("replica %s: env %s has no A=1", r.Name, env)
		}
	}
	if len(done) > 0 {
		t.Errorf("replicas of the new revision were replaced after the restart: %v", done)
	}
	if r, w := e.ready("web"); r != 4 || w != 4 {
		t.Errorf("service ls: %d/%d ready, want 4/4", r, w)
	}
}

// TestRestartKeepsReplicas stops the control plane (SIGTERM, then
// SIGKILL) with replicas running and starts it again: no replica is
// stopped or replaced.
func TestRestartKeepsReplicas(t *testing.T) {
	e := newEnv(t)
	e.ok(e.sleeper("web", 3)...)
	e.ok(e.sleeper("probed", 2, "--health-cmd", "true", "--health-interval", "500ms")...)
	before := map[string][]replica{"web": e.converged("web", 3, 30*time.Second), "probed": e.converged("probed", 2, 30*time.Second)}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		e.killServe(sig)
		for _, rs := range before {
			for _, r := range rs {
				if syscall.Kill(r.Pid, 0) != nil {
					t.Fatalf("%v: replica %s (pid %d) stopped with the control plane", sig, r.Name, r.Pid)
				}
			}
		}
		e.ok("service", "ls") // starts it again
		for name, rs := range before {
			eventually(t, 20*time.Second, name+" ready again", func() bool { r, w := e.ready(name); return r == len(rs) && w == len(rs) })
		}
		time.Sleep(2 * time.Second) // its passes over the services have run
		for name, rs := range before {
			after := e.converged(name, len(rs), time.Second)
			if !slices.Equal(ids(rs), ids(after)) {
				t.Fatalf("%v: replicas of %s changed across a restart of the control plane:\n%+v\n%+v", sig, name, rs, after)
			}
			for i := range rs {
				if rs[i].Pid != after[i].Pid {
					t.Errorf("%v: replica %s: pid %d became %d", sig, rs[i].Name, rs[i].Pid, after[i].Pid)
				}
			}
		}
		out := e.ok("ps", "--filter", "label=berth.service.name", "--format", "{{.Names}} {{.Status}}")
		if n := strings.Count(out, "\n") + 1; n != 5 {
			t.Errorf("%v: berth ps shows %d replicas, want 5:\n%s", sig, n, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if !strings.Contains(line, " Up ") {
				t.Errorf("%v: berth ps: %q is not Up", sig, line)
			}
		}
	}
}

// TestKillAfterRemove kills the control plane with SIGKILL right after
// `service rm` returned: started again, it stops the removed service's
// replicas all the same.
func TestKillAfterRemove(t *testing.T) {
	e := newEnv(t)
	e.ok(e.sleeper("web", 3)...)
	e.converged("web", 3, 30*time.Second)
	e.ok("service", "rm", "web")
	e.killServe(syscall.SIGKILL)
	t.Logf("killed with %d containers", len(e.containers("web")))
	e.ok("service", "ls")
	eventually(t, 30*time.Second, "the replicas of the removed service to go", func() bool { return len(e.containers("web")) == 0 })
}

// ids returns the container IDs of rs, sorted.
func ids(rs []replica) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return out
}

// TestConcurrentUpdates runs two updates of one service at once, a few
// times: each exits 0 or with a one-line conflict (exit status 4), and the
// replicas end up all on the stored template.
func TestConcurrentUpdates(t *testing.T) {
	e := newEnv(t)
	e.ok(e.sleeper("web", 3)...)
	for round := range 3 {
		var wg sync.WaitGroup
		for _, v := range []string{"1", "2"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, out, errOut := e.start("service", "update", "--env-add", "A="+v+fmt.Sprint(round), "web")()
				switch {
				case code == 0:
				case code == 4 && errOut != "" && !strings.Contains(errOut, "\n"):
					t.Logf("round %d: A=%s: %s", round, v, errOut)
				default:
					t.Errorf("round %d: update A=%s: exit %d: %q\n%s", round, v, code, errOut, out)
				}
			}()
		}
		wg.Wait()
		svc := e.service("web")
		var a []string
		for _, kv := range svc.Spec.Template.Env {
			if strings.HasPrefix(kv, "A=") {
				a = append(a, kv)
			}
		}
		if len(a) != 1 {
			t.Fatalf("round %d: stored env %v: want one A", round, svc.Spec.Template.Env)
		}
		eventually(t, 60*time.Second, "every replica on the stored template", func() bool {
			svc = e.service("web")
			rs := e.running("web")
			if len(rs) != 3 || e.exactly("web", 3) != "" {
				return false
			}
			for _, r := range rs {
				if r.Revision != fmt.Sprint(svc.Status.Revision) {
					return false
				}
				if env := e.ok("inspect", "-f", "{{json .Config.Env}}", r.ID); !strings.Contains(env, `"`+a[0]+`"`) {
					return false
				}
			}
			return true
		})
	}
}

// TestConcurrentLabelUpdates runs four updates of different labels at
// once: each that exits 0 has its label stored (none is lost), the other
// gets the one-line conflict.
func TestConcurrentLabelUpdates(t *testing.T) {
	e := newEnv(t)
	e.ok(e.sleeper("web", 1)...)
	conflicts := 0
	for round := range 6 {
		codes := make([]int, 4)
		var wg sync.WaitGroup
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out, errOut string
				codes[i], out, errOut = e.start("service", "update", "--label-add", fmt.Sprintf("k%d%d=v", round, i), "web")()
				if codes[i] != 0 && (codes[i] != 4 || errOut == "" || strings.Contains(errOut, "\n")) {
					t.Errorf("round %d: update %d: exit %d: %q\n%s", round, i, codes[i], errOut, out)
				}
			}()
		}
		wg.Wait()
		labels := e.service("web").Labels
		for i, code := range codes {
			k := fmt.Sprintf("k%d%d", round, i)
			switch {
			case code == 0 && labels[k] != "v":
				t.Errorf("round %d: the update of %s exited 0 but its label is lost: %v", round, k, labels)
			case code == 4:
				conflicts++
				if _, ok := labels[k]; ok {
					t.Errorf("round %d: the update of %s failed but its label is stored: %v", round, k, labels)
				}
			}
		}
	}
	t.Logf("%d conflicts in 6 rounds of 4 updates", conflicts)
}

// TestRemovedReplicaReplaced removes a replica's container by hand: its
// slot gets a new one.
func TestRemovedReplicaReplaced(t *testing.T) {
	e := newEnv(t)
	e.ok(e.sleeper("web", 2)...)
	rs := e.converged("web", 2, 30*time.Second)
	e.ok("rm", "-f", rs[0].ID)
	eventually(t, 30*time.Second, "a replacement of the removed replica", func() bool {
		for _, r := range e.running("web") {
			if r.Slot == rs[0].Slot && r.ID != rs[0].ID {
				return true
			}
		}
		return false
	})
	e.converged("web", 2, 30*time.Second)
}

// TestCrashLoopBacksOff runs a replica that exits 3 at once: it is
// replaced after --restart-delay, then after a backoff that grows, so only
// a few times in 15 s; `service ps` says why each one ended.
func TestCrashLoopBacksOff(t *testing.T) {
	e := newEnv(t)
	e.ok("service", "create", "-d", "--name", "crash", "--restart-delay", "200ms", e.image, "sh", "-c", "exit 3")
	seen := map[string]bool{}
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		for id := range e.tasks("crash") {
			seen[id] = true
		}
	}
	ps := e.ok("service", "ps", "--no-trunc", "crash")
	// The first replacement after 200ms, the next after the backoff's
	// initial 10s, the one after that after 20s: three tasks, a fourth
	// if a slow machine spreads them. Without a backoff it is dozens.
	if len(seen) < 3 || len(seen) > 4 {
		t.Errorf("%d tasks in 15s, want 3 or 4 (a restart after 200ms, then a backoff of 10s):\n%s", len(seen), ps)
	}
	if n := strings.Count(ps, "exited with status 3"); n < 2 {
		t.Errorf("service ps says \"exited with status 3\" %d times, want one per ended task:\n%s", n, ps)
	}
	if n := strings.Count(ps, "crash.1"); n != len(seen) {
		t.Errorf("service ps shows %d tasks of slot 1, want %d:\n%s", n, len(seen), ps)
	}
}

// TestResources: a reservation no node can give leaves the task pending
// with the reason; --limit-memory is the replica's cgroup limit.
func TestResources(t *testing.T) {
	e := newEnv(t)
	e.ok("service", "create", "-d", "--name", "big", "--reserve-cpu", "1000", e.image, "sleep", "3600")
	eventually(t, 20*time.Second, "the reason the task is pending", func() bool {
		ps := e.ok("service", "ps", "big")
		return strings.Contains(ps, "Pending") && strings.Contains(ps, "no node has 1000 CPUs free")
	})
	if n := len(e.containers("big")); n != 0 {
		t.Errorf("a pending task has %d containers", n)
	}

	e.ok(e.sleeper("small", 1, "--limit-memory", "64m")...)
	r := e.converged("small", 1, 30*time.Second)[0]
	if got := e.ok("inspect", "-f", "{{json .HostConfig.Memory}}", r.ID); got != "67108864" {
		t.Errorf("berth inspect: HostConfig.Memory %s, want 67108864", got)
	}
	if got := memoryLimit(t, r.Pid); got != "67108864" {
		t.Errorf("the replica's cgroup has a memory limit of %s, want 67108864", got)
	}
}

// memoryLimit reads the memory limit of the cgroup of process pid
// (memory.max of cgroup v2, else memory.limit_in_bytes of v1's memory
// hierarchy).
func memoryLimit(t *testing.T, pid int) string {
	t.Helper()
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		f := strings.SplitN(line, ":", 3)
		switch {
		case len(f) != 3:
		case f[1] == "":
			files = append(files, "/sys/fs/cgroup"+f[2]+"/memory.max")
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			files = append(files, "/sys/fs/cgroup/memory"+f[2]+"/memory.limit_in_bytes")
		}
	}
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no memory limit file of the cgroup of pid %d (%s)", pid, cg)
	return ""
}
