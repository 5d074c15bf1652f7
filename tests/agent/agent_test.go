package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/agent"
	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/tests/fixture"
	"golang.org/x/sys/unix"
)

func TestEnsureIsIdempotentAndStopRemoves(t *testing.T) {
	e := newEnv(t)
	w := e.watch(e.agent)
	tk := e.task(api.TaskTemplate{Labels: map[string]string{"tier": "front"}, Env: []string{"A=1"}})
	st := e.ensure(e.agent, tk)
	again := e.ensure(e.agent, tk)
	if again.ContainerID != st.ContainerID {
		t.Fatalf("second Ensure made another container: %s, then %s", st.ContainerID, again.ContainerID)
	}
	w.await(t, tk.ID, api.ActionStarted, 10*time.Second)
	w.await(t, tk.ID, api.ActionReady, 10*time.Second)

	ids, _ := e.berthCmd("ps", "-q", "--no-trunc", "--filter", "label="+agent.LabelTaskID+"="+tk.ID)
	if ids != st.ContainerID {
		t.Fatalf("containers of the task: %q, want only %s", ids, st.ContainerID)
	}
	c, cst, err := e.eng.Get(context.Background(), st.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "web.1." + tk.ID; c.Name != want {
		t.Errorf("name %q, want %q", c.Name, want)
	}
	for k, v := range map[string]string{agent.LabelServiceName: "web", agent.LabelServiceID: tk.ServiceID,
		agent.LabelTaskID: tk.ID, agent.LabelTaskSlot: "1", agent.LabelRevision: "1", "tier": "front"} {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Config.Labels[k], v)
		}
	}
	if c.Host.RestartPolicy.Name != "no" {
		t.Errorf("restart policy %q, want no", c.Host.RestartPolicy.Name)
	}
	if cst.Status != container.Running {
		t.Errorf("container %s, want running", cst.Status)
	}
	list, err := e.agent.List(context.Background())
	if err != nil || len(list) != 1 || list[0].TaskID != tk.ID || list[0].State != api.TaskReady {
		t.Fatalf("List = %+v, %v; want the task ready", list, err)
	}

	if err := e.agent.Stop(context.Background(), tk.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	w.await(t, tk.ID, api.ActionExited, 10*time.Second)
	w.await(t, tk.ID, api.ActionRemoved, 10*time.Second)
	if _, _, err := e.eng.Get(context.Background(), st.ContainerID); err == nil {
		t.Fatal("the container is still there after Stop")
	}
	if err := e.agent.Stop(context.Background(), tk.ID, time.Second); err != nil {
		t.Fatalf("Stop of a task without a container: %v", err)
	}
	if list, _ := e.agent.List(context.Background()); len(list) != 0 {
		t.Fatalf("List after Stop = %+v", list)
	}
}

func TestKill9ReportsExitQuickly(t *testing.T) {
	e := newEnv(t)
	w := e.watch(e.agent)
	tk := e.task(api.TaskTemplate{})
	st := e.ensure(e.agent, tk)
	w.await(t, tk.ID, api.ActionReady, 10*time.Second)
	_, cst, err := e.eng.Get(context.Background(), st.ContainerID)
	if err != nil || cst.Pid <= 0 {
		t.Fatalf("state: %+v, %v", cst, err)
	}
	killed := time.Now()
	if err := unix.Kill(cst.Pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev := w.await(t, tk.ID, api.ActionExited, 10*time.Second)
	t.Logf("kill -9 to the exited event: %v", time.Since(killed).Round(time.Millisecond))
	if ev.Status.ExitCode != 137 || ev.Status.State != api.TaskFailed || ev.Status.Message != "exited with status 137" {
		t.Fatalf("exited event %+v, want failed with status 137", ev.Status)
	}
	list, _ := e.agent.List(context.Background())
	if len(list) != 1 || list[0].State != api.TaskFailed || list[0].ExitCode != 137 {
		t.Fatalf("List = %+v, want the task failed with 137", list)
	}
	// What the controller does next: a replacement, ready when it runs.
	next := e.task(api.TaskTemplate{})
	e.ensure(e.agent, next)
	w.await(t, next.ID, api.ActionReady, 10*time.Second)
	t.Logf("kill -9 to the replacement's ready event (without the controller): %v", time.Since(killed).Round(time.Millisecond))
}

func TestRemovedByHand(t *testing.T) {
	e := newEnv(t)
	w := e.watch(e.agent)
	tk := e.task(api.TaskTemplate{})
	st := e.ensure(e.agent, tk)
	w.await(t, tk.ID, api.ActionStarted, 10*time.Second)
	if out, err := e.berthCmd("rm", "-f", st.ContainerID); err != nil {
		t.Fatalf("berth rm -f: %v: %s", err, out)
	}
	w.await(t, tk.ID, api.ActionExited, 10*time.Second)
	w.await(t, tk.ID, api.ActionRemoved, 10*time.Second)
}

// probe returns an exec probe checked every 100ms that fails at once.
func probe(args ...string) *api.Probe {
	return &api.Probe{Exec: args, Period: api.Duration(100 * time.Millisecond), FailureThreshold: 1}
}

func TestReadinessExecProbe(t *testing.T) {
	e := newEnv(t)
	w := e.watch(e.agent)
	tk := e.task(api.TaskTemplate{ReadinessProbe: probe("cat", "/tmp/ready")})
	st := e.ensure(e.agent, tk)
	w.await(t, tk.ID, api.ActionStarted, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	w.none(t, tk.ID, api.ActionReady)
	if list, _ := e.agent.List(context.Background()); len(list) != 1 || list[0].State != api.TaskRunning {
		t.Fatalf("List before the probe passes = %+v, want running", list)
	}
	exec := func(args ...string) {
		if code, err := e.eng.Exec(context.Background(), st.ContainerID, container.ExecOptions{Args: args}); err != nil || code != 0 {
			t.Fatalf("exec %v: %d, %v", args, code, err)
		}
	}
	exec("touch", "/tmp/ready")
	w.await(t, tk.ID, api.ActionReady, 10*time.Second)
	exec("rm", "/tmp/ready")
	ev := w.await(t, tk.ID, api.ActionUnready, 10*time.Second)
	if ev.Status.State != api.TaskRunning || !strings.Contains(ev.Status.Message, "readiness probe failed") {
		t.Fatalf("unready event %+v", ev.Status)
	}
	exec("touch", "/tmp/ready")
	w.await(t, tk.ID, api.ActionReady, 10*time.Second)
}

func TestLivenessFailureKills(t *testing.T) {
	e := newEnv(t)
	w := e.watch(e.agent)
	lp := probe("cat", "/tmp/alive")
	lp.FailureThreshold = 2
	tk := e.task(api.TaskTemplate{
		Command:       []string{"sh", "-c", "touch /tmp/alive; trap 'exit 143' TERM; while :; do sleep 0.1; done"},
		LivenessProbe: lp,
	})
	st := e.ensure(e.agent, tk)
	w.await(t, tk.ID, api.ActionReady, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	w.none(t, tk.ID, api.ActionUnhealthy)
	if code, err := e.eng.Exec(context.Background(), st.ContainerID, container.ExecOptions{Args: []string{"rm", "/tmp/alive"}}); err != nil || code != 0 {
		t.Fatalf("exec rm: %d, %v", code, err)
	}
	ev := w.await(t, tk.ID, api.ActionUnhealthy, 10*time.Second)
	if !strings.Contains(ev.Status.Message, "liveness probe failed") {
		t.Errorf("unhealthy event message %q", ev.Status.Message)
	}
	ex := w.await(t, tk.ID, api.ActionExited, 10*time.Second)
	if ex.Status.ExitCode != 143 {
		t.Errorf("exited with %d, want 143 (the stop signal)", ex.Status.ExitCode)
	}
}

func TestHTTPAndTCPProbes(t *testing.T) {
	e := newEnv(t)
	w := e.watch(e.agent)
	httpd := []string{"sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"}
	period := api.Duration(100 * time.Millisecond)
	good := e.task(api.TaskTemplate{Command: httpd,
		ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGet{Port: 8080, Path: "/index.html"}, Period: period},
		LivenessProbe:  &api.Probe{TCPSocket: &api.TCPSocket{Port: 8080}, Period: period, FailureThreshold: 20}})
	bad := e.task(api.TaskTemplate{Command: httpd,
		ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGet{Port: 8080, Path: "/missing"}, Period: period}})
	e.ensure(e.agent, good)
	e.ensure(e.agent, bad)
	w.await(t, good.ID, api.ActionReady, 10*time.Second)
	w.await(t, bad.ID, api.ActionStarted, 10*time.Second)
	time.Sleep(time.Second)
	w.none(t, bad.ID, api.ActionReady)
	w.none(t, good.ID, api.ActionUnhealthy)
}

func TestBadImageIsRejected(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		image  string
		policy api.PullPolicy
		want   string
	}{
		{"localhost/no-such-image:1", api.PullNever, "localhost/no-such-image:1"},
		{"Not An Image", "", "Not An Image"},
	} {
		tk := e.task(api.TaskTemplate{Image: tc.image, PullPolicy: tc.policy})
		st, err := e.agent.Ensure(context.Background(), tk)
		if err != nil {
			t.Fatalf("Ensure of %q: %v, want a rejected status", tc.image, err)
		}
		if st.State != api.TaskRejected || !strings.Contains(st.Message, tc.want) || strings.Contains(st.Message, "\n") {
			t.Errorf("Ensure of %q: %s %q, want rejected with one line naming it", tc.image, st.State, st.Message)
		}
	}
	tk := e.task(api.TaskTemplate{Command: []string{"/no/such/command"}})
	st, err := e.agent.Ensure(context.Background(), tk)
	if err != nil || st.State != api.TaskRejected {
		t.Fatalf("Ensure of a missing command: %+v, %v; want rejected", st, err)
	}
	t.Logf("missing command: %s", st.Message)
	if list, _ := e.agent.List(context.Background()); len(list) != 0 {
		t.Fatalf("rejected tasks left containers: %+v", list)
	}
}

func TestLimitsAndUsage(t *testing.T) {
	e := newEnv(t)
	res := api.ResourceRequirements{
		Limits:       api.Resources{NanoCPUs: 500_000_000, MemoryBytes: 64 << 20},
		Reservations: api.Resources{NanoCPUs: 250_000_000, MemoryBytes: 32 << 20},
	}
	a := e.task(api.TaskTemplate{Resources: res})
	b := e.task(api.TaskTemplate{Resources: res})
	st := e.ensure(e.agent, a)
	e.ensure(e.agent, b)
	if mem := cgroupValue(t, st.ContainerID, "memory.max", "memory/berth/%s/memory.limit_in_bytes"); mem != strconv.Itoa(64<<20) {
		t.Errorf("memory limit %q, want %d", mem, 64<<20)
	}
	cpu := cgroupValue(t, st.ContainerID, "cpu.max", "cpu/berth/%s/cpu.cfs_quota_us")
	if cpu != "50000 100000" && cpu != "50000" {
		t.Errorf("cpu limit %q, want a quota of 50000 in 100000", cpu)
	}
	u, err := e.agent.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u.NodeID != "node-1" || u.Capacity.NanoCPUs <= 0 || u.Capacity.MemoryBytes <= 0 || u.Tasks != 2 {
		t.Errorf("Usage = %+v", u)
	}
	if want := res.Reservations.Add(res.Reservations); u.Reserved != want {
		t.Errorf("reserved %+v, want %+v", u.Reserved, want)
	}
	if u.Used.MemoryBytes <= 0 {
		t.Errorf("used memory %d, want some", u.Used.MemoryBytes)
	}
	// A new agent (after a restart) finds the reservations in the labels.
	fixed := api.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30}
	u2, err := e.newAgent(agent.WithCapacity(fixed)).Usage(context.Background())
	if err != nil || u2.Reserved != u.Reserved || u2.Capacity != fixed {
		t.Errorf("a new agent's Usage = %+v, %v", u2, err)
	}
}

func TestAdoption(t *testing.T) {
	e := newEnv(t)
	tk := e.task(api.TaskTemplate{ReadinessProbe: probe("cat", "/tmp/ready"),
		Command: []string{"sh", "-c", "touch /tmp/ready; exec sleep 3600"}})
	st := e.ensure(e.agent, tk)
	eventually(t, 10*time.Second, "the task ready", func() bool {
		l, _ := e.agent.List(context.Background())
		return len(l) == 1 && l[0].State == api.TaskReady
	})
	e.agent.Close()

	a2 := e.newAgent()
	w := e.watch(a2)
	eventually(t, 10*time.Second, "the task ready under a new agent", func() bool {
		l, _ := a2.List(context.Background())
		return len(l) == 1 && l[0].State == api.TaskReady && l[0].ContainerID == st.ContainerID
	})
	if again := e.ensure(a2, tk); again.ContainerID != st.ContainerID {
		t.Fatalf("Ensure under a new agent made another container")
	}
	if code, err := e.eng.Exec(context.Background(), st.ContainerID, container.ExecOptions{Args: []string{"rm", "/tmp/ready"}}); err != nil || code != 0 {
		t.Fatalf("exec rm: %d, %v", code, err)
	}
	w.await(t, tk.ID, api.ActionUnready, 10*time.Second)
	if err := a2.Stop(context.Background(), tk.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	w.await(t, tk.ID, api.ActionRemoved, 10*time.Second)
}

// cgroupValue reads a file of the container's cgroup: v2's name, else
// v1's path under /sys/fs/cgroup (with the container's ID for %s).
func cgroupValue(t *testing.T, id, v2, v1 string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/berth", id, v2))
	if err != nil {
		b, err = os.ReadFile(filepath.Join("/sys/fs/cgroup", fmt.Sprintf(v1, id)))
	}
	if err != nil {
		t.Fatalf("cgroup of %s: %v", id, err)
	}
	return strings.TrimSpace(string(b))
}

// An image's HEALTHCHECK, run by the container's monitor, serves as
// readiness and liveness of a template without probes.
func TestImageHealthcheck(t *testing.T) {
	e := newEnv(t)
	img := "localhost/busybox-health:latest"
	fixture.Import(t, e.berth, e.dir, fixture.BusyboxRootfs(t), img,
		`CMD ["sh"]`, "HEALTHCHECK --interval=200ms --timeout=1s --start-period=2s --retries=1 CMD cat /tmp/ok")
	w := e.watch(e.agent)
	tk := e.task(api.TaskTemplate{Image: img,
		Command: []string{"sh", "-c", "trap 'exit 143' TERM; sleep 0.5; touch /tmp/ok; while :; do sleep 0.1; done"}})
	st := e.ensure(e.agent, tk)
	w.await(t, tk.ID, api.ActionStarted, 10*time.Second)
	w.await(t, tk.ID, api.ActionReady, 10*time.Second)
	if code, err := e.eng.Exec(context.Background(), st.ContainerID, container.ExecOptions{Args: []string{"rm", "/tmp/ok"}}); err != nil || code != 0 {
		t.Fatalf("exec rm: %d, %v", code, err)
	}
	ev := w.await(t, tk.ID, api.ActionUnhealthy, 10*time.Second)
	if ev.Status.Message != "health check failed" {
		t.Errorf("unhealthy event message %q", ev.Status.Message)
	}
	w.await(t, tk.ID, api.ActionExited, 10*time.Second)
}
