package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/cluster/store/bolt"
	"github.com/berth-dev/berth/internal/errdefs"
)

var nodeCapacity = api.Resources{NanoCPUs: 8e9, MemoryBytes: 16 << 30}

// env is a store with one ready node, its fake Runner, and controllers
// over them.
type env struct {
	t   *testing.T
	st  store.Store
	run *fakeRunner
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, run: newFakeRunner()}
	e.put(api.NodeKey("n1"), api.Node{ID: "n1", Name: "n1", Capacity: nodeCapacity, State: api.NodeReady}, store.Any)
	return e
}

// start runs a controller until the returned stop is called (or the test
// ends).
func (e *env) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	c := New(e.st, map[string]Runner{"n1": e.run}, WithResync(100*time.Millisecond))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.Run(ctx); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	e.t.Cleanup(stop)
	return stop
}

func (e *env) put(key string, v any, rev int64) int64 {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	r, err := e.st.Put(context.Background(), key, b, rev)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// template returns a template of image.
func template(image string) api.TaskTemplate {
	return api.TaskTemplate{Image: image, StopGracePeriod: api.Duration(time.Second)}
}

// create writes a service as the server does.
func (e *env) create(name string, replicas int, image string, mod func(*api.ServiceSpec)) {
	noDrain := api.Duration(0)
	spec := api.ServiceSpec{Replicas: &replicas, Template: template(image), DrainDelay: &noDrain}
	if mod != nil {
		mod(&spec)
	}
	e.put(api.ServiceKey(name), api.Service{ID: "id-" + name, Name: name, Spec: spec, Generation: 1, CreatedAt: time.Now()}, 0)
}

// service reads a service and its key's ModRevision.
func (e *env) service(name string) (api.Service, int64) {
	e.t.Helper()
	kv, err := e.st.Get(context.Background(), api.ServiceKey(name))
	if err != nil {
		e.t.Fatal(err)
	}
	var s api.Service
	if err := json.Unmarshal(kv.Value, &s); err != nil {
		e.t.Fatal(err)
	}
	return s, kv.ModRevision
}

// change writes a change of a service's spec as the server does: a
// compare-and-swap that bumps Generation, tried again on a conflict (the
// controller writes the status of the same key).
func (e *env) change(name string, fn func(*api.Service)) {
	e.t.Helper()
	for {
		s, rev := e.service(name)
		fn(&s)
		s.Generation++
		b, _ := json.Marshal(s)
		_, err := e.st.Put(context.Background(), api.ServiceKey(name), b, rev)
		if err == nil {
			return
		}
		if !errors.Is(err, errdefs.ErrConflict) {
			e.t.Fatal(err)
		}
	}
}

// rollback writes what `service rollback` does: the template of the
// revision before the current one, with Update rollback_started.
func (e *env) rollback(name string) {
	e.t.Helper()
	e.change(name, func(s *api.Service) {
		var r api.Revision
		kv, err := e.st.Get(context.Background(), api.RevisionKey(s.ID, s.Status.Revision-1))
		if err != nil {
			e.t.Fatal(err)
		}
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			e.t.Fatal(err)
		}
		s.Spec.Template = r.Template
		s.Status.Update = api.UpdateRollbackStarted
	})
}

// tasks returns every task of a service in the store.
func (e *env) tasks(name string) []api.Task {
	e.t.Helper()
	kvs, _, err := e.st.List(context.Background(), api.TaskPrefix("id-"+name))
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]api.Task, len(kvs))
	for i, kv := range kvs {
		if err := json.Unmarshal(kv.Value, &out[i]); err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

// wanted returns the tasks of a service wanted running that have not ended.
func (e *env) wanted(name string) []api.Task {
	return slices.DeleteFunc(e.tasks(name), func(t api.Task) bool {
		return t.DesiredState != api.TaskRunning || t.Status.State.Terminal()
	})
}

// eventually polls cond until it holds, and fails the test with cond's
// last word if it does not within a generous deadline (an outcome, not a
// timing, is asserted).
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// converged checks that a service runs replicas ready tasks of image, one
// per slot, that every container of the node has a wanted task and every
// wanted task a ready container, and that no rollout is under way.
func (e *env) converged(name string, replicas int, image string) func() (bool, string) {
	return func() (bool, string) {
		s, _ := e.service(name)
		if s.Status.ObservedGeneration != s.Generation {
			return false, fmt.Sprintf("generation %d observed %d", s.Generation, s.Status.ObservedGeneration)
		}
		if s.Status.Update == api.UpdateUpdating || s.Status.Update == api.UpdateRollbackStarted {
			return false, "update " + string(s.Status.Update)
		}
		wanted := e.wanted(name)
		slots := map[int]bool{}
		ids := map[string]bool{}
		for _, t := range wanted {
			if t.Template.Image != image || t.Status.State != api.TaskReady || slots[t.Slot] {
				return false, fmt.Sprintf("task %s slot %d image %s state %s (%s)", t.ID, t.Slot, t.Template.Image, t.Status.State, t.Status.Message)
			}
			slots[t.Slot], ids[t.ID] = true, true
		}
		if len(wanted) != replicas {
			return false, fmt.Sprintf("%d tasks wanted, want %d", len(wanted), replicas)
		}
		var live []string
		for _, c := range e.run.containers() {
			if c.status.State.Terminal() {
				continue
			}
			live = append(live, c.task.ID)
			if c.task.ServiceName == name && !ids[c.task.ID] {
				return false, fmt.Sprintf("container of task %s is not wanted (%s)", c.task.ID, c.status.State)
			}
		}
		n := 0
		for _, c := range e.run.containers() {
			if c.task.ServiceName == name && c.status.State == api.TaskReady {
				n++
			}
		}
		if n != replicas {
			return false, fmt.Sprintf("%d ready containers (%s), want %d", n, strings.Join(live, " "), replicas)
		}
		return true, ""
	}
}
