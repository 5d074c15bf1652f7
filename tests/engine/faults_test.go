package engine

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestConcurrentRuns(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	const n = 20
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut, code := e.run("run", "-d", img, "sleep", "60")
			if code != 0 {
				errs[i] = fmt.Sprintf("run %d: exit %d: %s %s", i, code, out, errOut)
			}
		}()
	}
	wg.Wait()
	for _, msg := range errs {
		if msg != "" {
			t.Error(msg)
		}
	}
	lines := strings.Split(e.must("ps", "--format", "{{.Names}} {{.State}}"), "\n")
	ips := strings.Fields(e.must("ps", "-q"))
	if len(lines) != n || len(ips) != n {
		t.Fatalf("ps shows %d containers, want %d:\n%s", len(lines), n, strings.Join(lines, "\n"))
	}
	names, addrs := map[string]bool{}, map[string]bool{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 || f[1] != "running" {
			t.Fatalf("ps line %q", l)
		}
		names[f[0]] = true
	}
	for _, id := range ips {
		addrs[e.must("inspect", "-f", "{{.NetworkSettings.IPAddress}}", id)] = true
	}
	if len(names) != n || len(addrs) != n {
		t.Fatalf("%d distinct names and %d distinct addresses for %d containers", len(names), len(addrs), n)
	}
}

// TestKilledRun kills `berth run` with SIGKILL at several points of its
// work: whatever it leaves, ps -a shows and rm removes.
func TestKilledRun(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	for _, delay := range []time.Duration{5, 15, 30, 60, 120} {
		cmd := e.cmd("run", "-d", "-p", "18761:80", "-v", "vol:/v", img, "sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		for _, id := range strings.Fields(e.must("ps", "-aq")) {
			e.must("rm", "-f", id)
		}
		if got := e.must("ps", "-aq"); got != "" {
			t.Fatalf("after kill at %v and rm: ps -a shows %q", delay, got)
		}
		// The published port is free again.
		e.must("run", "-d", "--name", "again", "-p", "18761:80", img, "sleep", "60")
		e.must("rm", "-f", "again")
	}
}

// TestMonitorKilled: killing one container's monitor affects only that
// container, and ps, logs and inspect still work without it.
func TestMonitorKilled(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "a", "--network", "none", img, "sh", "-c", "echo a; sleep 60")
	e.must("run", "-d", "--name", "b", "--network", "none", img, "sh", "-c", "echo b; sleep 60")
	monitorOf := func(name string) int {
		pids := monitors(t, e.must("inspect", "-f", "{{.Id}}", name))
		if len(pids) != 1 {
			t.Fatalf("monitors of %s: %v", name, pids)
		}
		return pids[0]
	}
	syscall.Kill(monitorOf("a"), syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	if got := e.must("ps", "--format", "{{.Names}} {{.State}}"); !strings.Contains(got, "b running") || !strings.Contains(got, "a running") {
		t.Fatalf("ps after killing a's monitor: %q", got)
	}
	if got := e.must("logs", "b"); got != "b" {
		t.Fatalf("logs b: %q", got)
	}
	e.must("exec", "b", "true")
	// a can still be stopped and removed.
	e.must("stop", "-t", "1", "a")
	e.must("rm", "a")
	if got := e.must("ps", "-a", "--format", "{{.Names}}"); got != "b" {
		t.Fatalf("ps -a: %q", got)
	}
}

func TestHealthcheck(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "h", "--network", "none", "--health-cmd", "test -f /tmp/ok", "--health-interval", "200ms", "--health-retries", "2",
		img, "sh", "-c", "sleep 60")
	eventually(t, 5*time.Second, "unhealthy", func() bool { return e.must("inspect", "-f", "{{.State.Health.Status}}", "h") == "unhealthy" })
	e.must("exec", "h", "touch", "/tmp/ok")
	eventually(t, 5*time.Second, "healthy", func() bool { return e.must("inspect", "-f", "{{.State.Health.Status}}", "h") == "healthy" })
	if got := e.must("ps", "--format", "{{.Status}}"); !strings.HasSuffix(got, "(healthy)") {
		t.Fatalf("ps status %q", got)
	}
}

// TestStartAll is what a reboot leaves (every process gone, state files
// saying otherwise) and what `berth start --all` makes of it: the
// containers whose restart policy wants them running come back.
func TestStartAll(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "always", "--restart", "always", "-p", "18762:80", img, "httpd", "-f", "-p", "80")
	e.must("run", "-d", "--name", "never", img, "sleep", "60")
	e.must("run", "-d", "--name", "stopped", "--restart", "unless-stopped", img, "sleep", "60")
	e.must("stop", "-t", "0", "stopped")
	// Crash everything: monitors first, so nothing records the exits.
	for _, name := range []string{"always", "never"} {
		id := e.must("inspect", "-f", "{{.Id}}", name)
		pid, _ := strconv.Atoi(e.must("inspect", "-f", "{{.State.Pid}}", name))
		for _, m := range monitors(t, id) {
			syscall.Kill(m, syscall.SIGKILL)
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
	eventually(t, 5*time.Second, "the crash to show", func() bool {
		return e.must("ps", "-a", "--filter", "status=exited", "-q") != "" && e.must("ps", "-q") == ""
	})
	e.must("start", "--all")
	if got := e.must("ps", "--format", "{{.Names}}"); got != "always" {
		t.Fatalf("after start --all: running %q, want only always", got)
	}
	// httpd serves a 404 for /: any answer shows the port is published again.
	eventually(t, 5*time.Second, "always answering again", func() bool {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:18762", time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// monitors returns the pids of the monitor processes of container id.
func monitors(t *testing.T, id string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if strings.HasPrefix(string(cmdline), "berth-monitor\x00") && strings.Contains(string(cmdline), id) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestOrphanEndpoint: a monitor killed after removing its --rm container
// but before releasing its network leaves an endpoint without a
// container; network prune releases it and the network goes.
func TestOrphanEndpoint(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	net := "orph" + e.prefix[2:]
	e.must("network", "create", "--subnet", e.extraSubnet(2), net)
	id := e.must("run", "-d", "--network", net, img, "sleep", "60")
	pid, _ := strconv.Atoi(e.must("inspect", "-f", "{{.State.Pid}}", id))
	for _, m := range monitors(t, id) {
		syscall.Kill(m, syscall.SIGKILL)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	// What the monitor had done before it died: delete the runtime's
	// record (and the cgroup), unmount the root file system and the
	// network namespace, remove the record.
	runtime := filepath.Join(filepath.Dir(e.berth), "berth-runtime")
	if out, err := exec.Command(runtime, "--root", filepath.Join(e.root, "run", "runtime"), "delete", "--force", id).CombinedOutput(); err != nil {
		t.Fatalf("berth-runtime delete: %v: %s", err, out)
	}
	dir := filepath.Join(e.root, "containers", id)
	exec.Command("umount", "-l", filepath.Join(dir, "rootfs")).Run()
	exec.Command("umount", "-l", filepath.Join(e.root, "run", "netns", id)).Run()
	os.RemoveAll(dir)
	e.fails("connected container", "network", "rm", net)
	if got := e.must("network", "prune"); !strings.Contains(got, net) {
		t.Fatalf("network prune: %q, want %s removed", got, net)
	}
}

// TestStartAfterInterruptedRemove: a container that a killed `rm -f` left
// marked as being removed is never started again (Docker refuses too); a
// new `rm -f` finishes the removal. The state a killed removal leaves is
// written here as it would have been, since killing `rm -f` between two
// particular writes cannot be timed.
func TestStartAfterInterruptedRemove(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	id := e.must("create", "--network", "none", img, "true")
	path := filepath.Join(e.root, "containers", id, "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	marked := strings.Replace(string(b), `"status": "created"`, `"status": "removing"`, 1)
	if marked == string(b) {
		t.Fatalf("state.json has no created status: %s", b)
	}
	if err := os.WriteFile(path, []byte(marked), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.run("start", id); code != 4 || !strings.Contains(errOut, "being removed") {
		t.Fatalf("start of a container being removed: exit %d, %q; want 4 and a line that says so", code, errOut)
	}
	e.must("rm", "-f", id)
	if ids := e.must("ps", "-aq"); ids != "" {
		t.Fatalf("rm -f left %s", ids)
	}
}

// TestStopAfterMonitorKilled: when a container's monitor was killed, stop
// releases what the monitor would have released at the exit — the root
// file system's mount, the network namespace, the endpoint with its
// published port — instead of leaving them until rm. The container then
// starts again.
func TestStopAfterMonitorKilled(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	id := e.must("run", "-d", "-p", fmt.Sprintf("%d:80", port), img, "sleep", "600")
	statePath := filepath.Join(e.root, "containers", id, "state.json")
	var st struct {
		Monitor struct{ Pid int } `json:"monitor"`
	}
	b, _ := os.ReadFile(statePath)
	if err := json.Unmarshal(b, &st); err != nil || st.Monitor.Pid == 0 {
		t.Fatalf("state.json: no monitor PID (%v): %s", err, b)
	}
	syscall.Kill(st.Monitor.Pid, syscall.SIGKILL)
	e.must("stop", "-t", "1", id)
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), id) {
		t.Errorf("stop left the container's mounts")
	}
	if b, _ := os.ReadFile(statePath); strings.Contains(string(b), `"endpoints"`) {
		t.Errorf("stop left the container's endpoints: %s", b)
	}
	e.must("start", id)
	if got := e.must("port", id); !strings.Contains(got, strconv.Itoa(port)) {
		t.Errorf("port after a new start: %q, want %d", got, port)
	}
}
