package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
)

func TestCreateConverges(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.create("web", 3, "nginx:1", nil)
	eventually(t, "3 ready replicas", e.converged("web", 3, "nginx:1"))
	s, _ := e.service("web")
	if s.Status.Revision != 1 || s.Status.Update != "" {
		t.Errorf("status = %+v, want revision 1 and no update", s.Status)
	}
}

func slotsOf(ts []api.Task) []int {
	var out []int
	for _, t := range ts {
		out = append(out, t.Slot)
	}
	slices.Sort(out)
	return out
}

func TestScale(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	stoppedIn := map[string]api.TaskState{} // the state in the store when Stop came
	e.run.onStop = func(id string) {
		for _, tk := range e.tasks("web") {
			if tk.ID == id {
				mu.Lock()
				stoppedIn[id] = tk.Status.State
				mu.Unlock()
			}
		}
	}
	e.start()
	e.create("web", 3, "nginx:1", nil)
	eventually(t, "3 replicas", e.converged("web", 3, "nginx:1"))
	scale := func(n int) { e.change("web", func(s *api.Service) { s.Spec.Replicas = &n }) }

	scale(5)
	eventually(t, "scaled to 5", e.converged("web", 5, "nginx:1"))
	if got := slotsOf(e.wanted("web")); !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
		t.Errorf("slots %v", got)
	}
	scale(3)
	eventually(t, "scaled to 3", e.converged("web", 3, "nginx:1"))
	if got := slotsOf(e.wanted("web")); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("slots after scaling down %v, want the highest gone", got)
	}
	// A not-ready replica goes before a higher ready one.
	var slot1 string
	for _, tk := range e.wanted("web") {
		if tk.Slot == 1 {
			slot1 = tk.ID
		}
	}
	e.run.setReady(slot1, false)
	eventually(t, "slot 1 unready in the store", func() (bool, string) {
		for _, tk := range e.wanted("web") {
			if tk.ID == slot1 {
				return tk.Status.State == api.TaskRunning, string(tk.Status.State)
			}
		}
		return false, "gone"
	})
	scale(2)
	eventually(t, "scaled to 2", e.converged("web", 2, "nginx:1"))
	if got := slotsOf(e.wanted("web")); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("slots %v, want the not-ready slot 1 gone", got)
	}
	scale(0)
	eventually(t, "scaled to 0", e.converged("web", 0, "nginx:1"))
	mu.Lock()
	stopped := maps.Clone(stoppedIn)
	mu.Unlock()
	if len(stopped) != 5 {
		t.Errorf("%d tasks stopped, want 5", len(stopped))
	}
	for id, st := range stopped {
		if st != api.TaskStopping {
			t.Errorf("task %s was %s in the store when stopped, want stopping", id, st)
		}
	}
	eventually(t, "removed tasks shut down", func() (bool, string) {
		for _, tk := range e.tasks("web") {
			if tk.DesiredState == api.TaskShutdown && tk.Status.State != api.TaskShutdown {
				return false, fmt.Sprintf("removed task %s is %s", tk.ID, tk.Status.State)
			}
		}
		return true, ""
	})
}

// slotTask returns the wanted task of slot n, once there is one.
func (e *env) slotTask(name string, n int) api.Task {
	e.t.Helper()
	var got api.Task
	eventually(e.t, fmt.Sprintf("a running task in slot %d", n), func() (bool, string) {
		for _, t := range e.wanted(name) {
			if t.Slot == n && t.Status.State == api.TaskReady {
				got = t
				return true, ""
			}
		}
		return false, "none"
	})
	return got
}

// task returns one task by ID.
func (e *env) task(name, id string) api.Task {
	for _, t := range e.tasks(name) {
		if t.ID == id {
			return t
		}
	}
	e.t.Fatalf("task %s not in the store", id)
	return api.Task{}
}

// replaced waits until slot n runs a task other than old and returns it.
func (e *env) replaced(name string, n int, old string) api.Task {
	e.t.Helper()
	var got api.Task
	eventually(e.t, "replacement of "+old, func() (bool, string) {
		for _, t := range e.wanted(name) {
			if t.Slot == n && t.ID != old && t.Status.State == api.TaskReady {
				got = t
				return true, ""
			}
		}
		return false, "none"
	})
	return got
}

func TestSelfHealing(t *testing.T) {
	for _, tt := range []struct {
		name, reason string
		state        api.TaskState
		break_       func(f *fakeRunner, id string)
	}{
		{"exit", "exited with status 137", api.TaskFailed, func(f *fakeRunner, id string) { f.exit(id, 137, false) }},
		{"removed by hand", "removed", api.TaskFailed, (*fakeRunner).vanish},
		{"liveness", "liveness probe failed", api.TaskFailed, func(f *fakeRunner, id string) { f.exit(id, 137, true) }},
		{"exit 0", "exited with status 0", api.TaskComplete, func(f *fakeRunner, id string) { f.exit(id, 0, false) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.start()
			e.create("web", 2, "nginx:1", nil)
			eventually(t, "2 replicas", e.converged("web", 2, "nginx:1"))
			old := e.slotTask("web", 2)
			tt.break_(e.run, old.ID)
			// The default backoff (10s, then more) would fail the test:
			// the first replacement is immediate.
			nw := e.replaced("web", 2, old.ID)
			if nw.Status.RestartCount != 1 {
				t.Errorf("replacement's restart count %d, want 1", nw.Status.RestartCount)
			}
			dead := e.task("web", old.ID)
			if dead.Status.State != tt.state || dead.Status.Message != tt.reason {
				t.Errorf("replaced task: %s %q, want %s %q", dead.Status.State, dead.Status.Message, tt.state, tt.reason)
			}
			eventually(t, "2 replicas again", e.converged("web", 2, "nginx:1"))
		})
	}
}

func TestRestartBackoff(t *testing.T) {
	e := newEnv(t)
	e.start()
	const initial, limit = 300 * time.Millisecond, 500 * time.Millisecond
	e.create("web", 1, "nginx:1", func(s *api.ServiceSpec) {
		s.Restart.Backoff = api.Backoff{Initial: api.Duration(initial), Max: api.Duration(limit)}
	})
	id := e.slotTask("web", 1).ID
	// Each replacement comes no sooner than its backoff after the end of
	// the task it replaces: immediately, then 300ms, then capped at 500ms.
	for i, wait := range []time.Duration{0, initial, limit, limit} {
		e.run.exit(id, 1, false)
		nw := e.replaced("web", 1, id)
		dead := e.task("web", id)
		if nw.Status.RestartCount != i+1 {
			t.Errorf("restart %d: count %d", i+1, nw.Status.RestartCount)
		}
		if gap := nw.CreatedAt.Sub(dead.Status.FinishedAt); gap < wait {
			t.Errorf("restart %d came %v after the exit, before its backoff %v", i+1, gap, wait)
		}
		id = nw.ID
	}
	// The history of the slot is bounded.
	eventually(t, "history trimmed", func() (bool, string) {
		n := len(e.tasks("web"))
		return n <= TaskHistory+1, fmt.Sprintf("%d tasks", n)
	})
}

func TestRestartConditionNone(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.create("job", 1, "busybox", func(s *api.ServiceSpec) { s.Restart.Condition = api.RestartNone })
	id := e.slotTask("job", 1).ID
	e.run.exit(id, 1, false)
	eventually(t, "task failed", func() (bool, string) {
		st := e.task("job", id).Status
		return st.State == api.TaskFailed, string(st.State)
	})
	time.Sleep(300 * time.Millisecond) // several resyncs
	if w := e.wanted("job"); len(w) != 0 {
		t.Errorf("restart condition none replaced the task: %v", w)
	}
}

func TestBackoffHoldsReplacement(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.create("web", 1, "nginx:1", func(s *api.ServiceSpec) { s.Restart.Backoff.Initial = api.Duration(time.Hour) })
	first := e.slotTask("web", 1)
	e.run.exit(first.ID, 1, false)
	second := e.replaced("web", 1, first.ID) // the first is immediate
	e.run.exit(second.ID, 1, false)
	eventually(t, "second failure seen", func() (bool, string) {
		st := e.task("web", second.ID).Status
		return st.State == api.TaskFailed, string(st.State)
	})
	time.Sleep(300 * time.Millisecond) // several resyncs
	if w := e.wanted("web"); len(w) != 0 {
		t.Errorf("replaced within an hour's backoff: %v", w)
	}
}

func TestUnplaceable(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.create("big", 1, "nginx:1", func(s *api.ServiceSpec) {
		s.Template.Resources.Reservations.NanoCPUs = 100e9
	})
	eventually(t, "pending with the scheduler's reason", func() (bool, string) {
		w := e.wanted("big")
		if len(w) != 1 {
			return false, fmt.Sprint(len(w), " tasks")
		}
		st := w[0].Status
		return st.State == api.TaskPending && st.Message == "no node has 100 CPUs free", fmt.Sprintf("%s %q", st.State, st.Message)
	})
}

func TestAdoptAndCollect(t *testing.T) {
	e := newEnv(t)
	stop := e.start()
	e.create("web", 3, "nginx:1", nil)
	e.create("db", 1, "postgres", nil)
	eventually(t, "web", e.converged("web", 3, "nginx:1"))
	eventually(t, "db", e.converged("db", 1, "postgres"))
	stop()
	before := e.run.ensured
	ids := slotsOf(e.wanted("web"))
	// While no controller runs: a stray container appears, one replica is
	// removed by hand, and a service is deleted.
	e.run.addOrphan("strayxxxxxxxxxxxxxxxxxxxx")
	gone := e.slotTask("web", 3)
	e.run.vanish(gone.ID)
	if _, err := e.st.Delete(context.Background(), "/services/db", store.Any); err != nil {
		t.Fatal(err)
	}
	e.start()
	eventually(t, "web adopted", e.converged("web", 3, "nginx:1"))
	if got := slotsOf(e.wanted("web")); !slices.Equal(got, ids) {
		t.Errorf("slots %v, want %v", got, ids)
	}
	if n := e.run.ensured - before; n != 1 {
		t.Errorf("%d containers created on adoption, want 1 (the replacement)", n)
	}
	eventually(t, "stray and db stopped, db forgotten", func() (bool, string) {
		for _, c := range e.run.containers() {
			if c.task.ServiceName != "web" {
				return false, "container of " + c.task.ServiceName
			}
		}
		kvs, _, _ := e.st.List(context.Background(), api.RevisionPrefix("id-db"))
		return len(e.tasks("db")) == 0 && len(kvs) == 0, fmt.Sprint(len(e.tasks("db")), " tasks ", len(kvs), " revisions")
	})
}

// TestAdoptCreatedNotStarted: a controller killed between creating a
// replica's container and starting it left it created; the next one starts
// it rather than waiting for it forever.
func TestAdoptCreatedNotStarted(t *testing.T) {
	e := newEnv(t)
	stop := e.start()
	e.create("web", 2, "nginx:1", nil)
	eventually(t, "web", e.converged("web", 2, "nginx:1"))
	stop()
	before := e.run.ensured
	e.run.unstart(e.slotTask("web", 1).ID)
	e.start()
	eventually(t, "the created replica started", e.converged("web", 2, "nginx:1"))
	if n := e.run.ensured - before; n != 0 {
		t.Errorf("%d containers created, want none (the created one is started)", n)
	}
}
