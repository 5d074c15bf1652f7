package services

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/tests/fixture"
)

// env is one test's berth: a root of its own (with its own network prefix
// and subnet, so tests run beside each other and beside a user's berth)
// whose control plane the CLI starts on first use.
type env struct {
	t      *testing.T
	berth  string
	dir    string
	prefix string
	image  string // busybox
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("service tests need root (namespaces, cgroups, overlay mounts, nftables)")
	}
	e := &env{t: t, berth: fixture.Berth(t), dir: t.TempDir()}
	n := rand.IntN(1 << 16)
	e.prefix = fmt.Sprintf("bs%04x", n)
	conf := fmt.Sprintf("[network]\nprefix = %q\ndefault_subnet = \"10.%d.%d.0/24\"\n", e.prefix, 200+n%50, n>>8)
	if err := os.WriteFile(filepath.Join(e.dir, "berth.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)
	e.image = fixture.BusyboxImage(t, e.berth, e.dir)
	return e
}

// run runs berth on the test's root and returns its stdout and stderr,
// trimmed, and its exit status.
func (e *env) run(args ...string) (stdout, stderr string, code int) {
	cmd := exec.Command(e.berth, append([]string{"--root", e.dir}, args...)...)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		e.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(o.String()), strings.TrimSpace(er.String()), code
}

// ok runs berth and fails the test unless it exits 0; it returns stdout.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("berth %s: exit %d: %s\n%s", strings.Join(args, " "), code, errOut, out)
	}
	return out
}

// fails runs berth, wants exit status code and one line on stderr, and
// returns that line.
func (e *env) fails(code int, args ...string) string {
	e.t.Helper()
	out, errOut, got := e.run(args...)
	if got != code {
		e.t.Fatalf("berth %s: exit %d, want %d: %s\n%s", strings.Join(args, " "), got, code, errOut, out)
	}
	if errOut == "" || strings.Contains(errOut, "\n") {
		e.t.Fatalf("berth %s: want one line on stderr, got %q", strings.Join(args, " "), errOut)
	}
	return errOut
}

// service reads a service as `berth service inspect` shows it.
func (e *env) service(name string) api.Service {
	e.t.Helper()
	var svcs []api.Service
	if err := json.Unmarshal([]byte(e.ok("service", "inspect", name)), &svcs); err != nil || len(svcs) != 1 {
		e.t.Fatalf("service inspect %s: %v (%d services)", name, err, len(svcs))
	}
	return svcs[0]
}

// replica is one task container of a service, as `berth ps` shows it.
type replica struct {
	ID, Name, Task, Slot, Revision, Status string
	Pid                                    int
}

// replicas lists the running containers of service name.
func (e *env) replicas(name string) []replica {
	e.t.Helper()
	out := e.ok("ps", "--no-trunc", "--filter", "label=berth.service.name="+name, "--format",
		`{{.ID}} {{.Names}} {{.Label "berth.task.id"}} {{.Label "berth.task.slot"}} {{.Label "berth.revision"}}`)
	var rs []replica
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 5 {
			continue
		}
		r := replica{ID: f[0], Name: f[1], Task: f[2], Slot: f[3], Revision: f[4]}
		r.Pid, _ = strconv.Atoi(e.ok("inspect", "-f", "{{.State.Pid}}", r.ID))
		rs = append(rs, r)
	}
	return rs
}

// ready counts the ready replicas of service name, as `service ls` does.
func (e *env) ready(name string) (ready, want int) {
	e.t.Helper()
	out := e.ok("service", "ls", "--filter", "name="+name, "--format", "{{.Replicas}}")
	for _, line := range strings.Split(out, "\n") {
		if _, err := fmt.Sscanf(line, "%d/%d", &ready, &want); err == nil {
			return ready, want
		}
	}
	e.t.Fatalf("service ls: no line for %s in %q", name, out)
	return 0, 0
}

// eventually polls cond for up to d, then fails the test with what.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// servePid is the PID of the root's control plane, 0 when none runs.
func (e *env) servePid() int {
	b, err := os.ReadFile(filepath.Join(e.dir, "serve.lock"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// killServe kills the control plane with sig and waits until it is gone.
func (e *env) killServe(sig syscall.Signal) {
	e.t.Helper()
	pid := e.servePid()
	if pid == 0 {
		return
	}
	syscall.Kill(pid, sig)
	eventually(e.t, 10*time.Second, "the control plane to stop", func() bool { return syscall.Kill(pid, 0) != nil })
}

// cleanup removes every service and container of the test, stops its
// control plane, and removes whatever it left on the host.
func (e *env) cleanup() {
	if e.servePid() != 0 {
		if names, _, _ := e.run("service", "ls", "-q"); names != "" {
			e.run(append([]string{"service", "rm"}, strings.Fields(names)...)...)
			// The control plane takes them out of load balancing just
			// after the command returned (their replicas are removed
			// below).
			deadline := time.Now().Add(30 * time.Second)
			for {
				nets, _, _ := e.run("network", "ls", "-q")
				svcs, _, _ := e.run(append([]string{"network", "inspect"}, strings.Fields(nets)...)...)
				if !strings.Contains(svcs, `"Services"`) {
					break
				}
				if time.Now().After(deadline) {
					log, _ := os.ReadFile(filepath.Join(e.dir, "serve.log"))
					e.t.Logf("the control plane did not take the services out of their networks: %s\nserve.log:\n%s", svcs, log)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	e.killServe(syscall.SIGKILL)
	if ids, _, _ := e.run("ps", "-aq", "--no-trunc"); ids != "" {
		for _, id := range strings.Fields(ids) {
			e.run("rm", "-f", "-v", id)
		}
	}
	fixture.Sweep(e.t, e.dir, e.prefix)
}
