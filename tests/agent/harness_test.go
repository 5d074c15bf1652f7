package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/agent"
	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/root"
	"github.com/berth-dev/berth/tests/fixture"
)

// env is one test's node: a root of its own (with its own network prefix
// and subnet, so tests run beside each other), its engine and an Agent.
type env struct {
	t      *testing.T
	berth  string
	dir    string
	prefix string
	image  string
	eng    *container.Engine
	agent  *agent.Agent
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("agent tests need root (namespaces, cgroups, overlay mounts, nftables)")
	}
	e := &env{t: t, berth: fixture.Berth(t), dir: t.TempDir()}
	n := rand.IntN(1 << 16)
	e.prefix = fmt.Sprintf("ba%04x", n)
	conf := fmt.Sprintf("[network]\nprefix = %q\ndefault_subnet = \"10.%d.%d.0/24\"\n", e.prefix, 150+n%50, n>>8)
	if err := os.WriteFile(filepath.Join(e.dir, "berth.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)
	e.image = fixture.BusyboxImage(t, e.berth, e.dir)
	r, err := root.Open(e.dir, root.WithExecutable(e.berth))
	if err != nil {
		t.Fatal(err)
	}
	if e.eng, err = r.Engine(); err != nil {
		t.Fatal(err)
	}
	e.agent = e.newAgent()
	return e
}

// newAgent starts an Agent on the test's engine, closed at the end.
func (e *env) newAgent(opts ...agent.Option) *agent.Agent {
	a := agent.New(e.eng, "node-1", opts...)
	e.t.Cleanup(func() { a.Close() })
	return a
}

// task returns a task of a service of its own running tpl (busybox sleeping
// by default), with a stop grace period of 1s: sleep as PID 1 ignores
// SIGTERM.
func (e *env) task(tpl api.TaskTemplate) api.Task {
	if tpl.Image == "" {
		tpl.Image = e.image
	}
	if tpl.Command == nil {
		tpl.Command = []string{"sleep", "3600"}
	}
	if tpl.StopGracePeriod == 0 {
		tpl.StopGracePeriod = api.Duration(time.Second)
	}
	id := fmt.Sprintf("t%024x", rand.Uint64())[:25]
	return api.Task{ID: id, ServiceID: "s" + id[:8], ServiceName: "web", Slot: 1, Revision: 1,
		DesiredState: api.TaskRunning, Template: tpl}
}

// ensure runs t and fails the test unless it starts.
func (e *env) ensure(a *agent.Agent, t api.Task) api.TaskStatus {
	e.t.Helper()
	st, err := a.Ensure(context.Background(), t)
	if err != nil {
		e.t.Fatalf("Ensure: %v", err)
	}
	if st.State != api.TaskRunning && st.State != api.TaskReady {
		e.t.Fatalf("Ensure: state %s (%s), want running or ready", st.State, st.Message)
	}
	return st
}

// berthCmd runs berth on the test's root and returns its combined output.
func (e *env) berthCmd(args ...string) (string, error) {
	out, err := exec.Command(e.berth, append([]string{"--root", e.dir}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// events collects what a Watch of a reports.
type events struct {
	mu   sync.Mutex
	evs  []api.TaskEvent
	wake chan struct{}
}

func (e *env) watch(a *agent.Agent) *events {
	w := &events{wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Watch(ctx, func(ev api.TaskEvent) {
			w.mu.Lock()
			w.evs = append(w.evs, ev)
			w.mu.Unlock()
			select {
			case w.wake <- struct{}{}:
			default:
			}
		})
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	return w
}

// await waits up to d for an event of task id with action, past the
// events of that task already awaited, and returns it.
func (w *events) await(t *testing.T, id string, action api.TaskAction, d time.Duration) api.TaskEvent {
	t.Helper()
	deadline := time.After(d)
	for {
		w.mu.Lock()
		for i, ev := range w.evs {
			if ev.Status.TaskID == id && ev.Action == action {
				// Drop this task's events up to this one; keep the others'.
				rest := w.evs[:0:0]
				for j, o := range w.evs {
					if j > i || o.Status.TaskID != id {
						rest = append(rest, o)
					}
				}
				w.evs = rest
				w.mu.Unlock()
				return ev
			}
		}
		seen := w.summary()
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-deadline:
			t.Fatalf("no %s event for task %s within %v; saw: %s", action, id, d, seen)
		}
	}
}

// none fails the test if an event of task id with action was seen.
func (w *events) none(t *testing.T, id string, action api.TaskAction) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.evs {
		if ev.Status.TaskID == id && ev.Action == action {
			t.Fatalf("unexpected %s event: %+v", action, ev)
		}
	}
}

func (w *events) summary() string {
	var b strings.Builder
	for _, ev := range w.evs {
		fmt.Fprintf(&b, "[%s %s %s] ", ev.Action, ev.Status.State, ev.Status.Message)
	}
	return b.String()
}

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cleanup removes every container of the test and whatever it left on the
// host: mounts, links, nftables tables, processes.
func (e *env) cleanup() {
	t := e.t
	if ids, _ := e.berthCmd("ps", "-aq", "--no-trunc"); ids != "" {
		for _, id := range strings.Fields(ids) {
			e.berthCmd("rm", "-f", "-v", id)
		}
	}
	fixture.Sweep(t, e.dir, e.prefix)
}
