package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// fakeRunner is an in-memory node: a task's container starts at once and
// turns ready shortly after (never for an image in neverReady); a test
// makes containers exit, vanish, fail liveness or turn unready. It records,
// per service, the most containers live at once and the fewest ready, while
// recording is on. The real Runner, cluster/agent, is tested against the
// engine.
type fakeRunner struct {
	mu         sync.Mutex
	tasks      map[string]*fakeTask
	subs       map[chan api.TaskEvent]bool
	neverReady map[string]bool // by image
	ensured    int             // containers created
	onStop     func(taskID string)
	published  map[string]api.ServiceEndpoints // by service name
	publishErr error                           // what Publish returns, when set
	left       map[string]time.Time            // when Publish last left each task out

	recording bool
	maxLive   map[string]int
	minReady  map[string]int
}

type fakeTask struct {
	task   api.Task
	status api.TaskStatus
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{tasks: map[string]*fakeTask{}, subs: map[chan api.TaskEvent]bool{},
		neverReady: map[string]bool{}, maxLive: map[string]int{}, minReady: map[string]int{},
		published: map[string]api.ServiceEndpoints{}, left: map[string]time.Time{}}
}

// Publish records e; the service's virtual IP is made of its name.
func (f *fakeRunner) Publish(_ context.Context, e api.ServiceEndpoints) ([]api.VirtualIP, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.publishErr != nil {
		return nil, f.publishErr
	}
	now := time.Now()
	for _, id := range f.published[e.Service].Tasks {
		if !slices.Contains(e.Tasks, id) {
			f.left[id] = now
		}
	}
	f.published[e.Service] = e
	return []api.VirtualIP{{Network: "bridge", Addr: "vip-" + e.Service}}, nil
}

func (f *fakeRunner) Unpublish(_ context.Context, live func(string) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name := range f.published {
		if !live(name) {
			delete(f.published, name)
		}
	}
	return nil
}

// endpoints returns what was last published for service, and whether it is.
func (f *fakeRunner) endpoints(service string) (api.ServiceEndpoints, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.published[service]
	return e, ok
}

func (f *fakeRunner) Ensure(_ context.Context, t api.Task) (api.TaskStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft, ok := f.tasks[t.ID]; ok {
		if ft.status.State == api.TaskStarting { // created, not started: start it
			now := time.Now()
			ft.status.State, ft.status.Timestamp, ft.status.StartedAt = api.TaskRunning, now, now
			f.emitLocked(api.ActionStarted, ft.status)
			time.AfterFunc(20*time.Millisecond, func() { f.setReady(t.ID, true) })
		}
		return ft.status, nil
	}
	if t.Template.Image == "missing" {
		return api.TaskStatus{}, fmt.Errorf("image %q: not found", t.Template.Image)
	}
	now := time.Now()
	st := api.TaskStatus{TaskID: t.ID, State: api.TaskRunning, ContainerID: "c" + t.ID, Timestamp: now, StartedAt: now}
	f.tasks[t.ID] = &fakeTask{task: t, status: st}
	f.ensured++
	f.emitLocked(api.ActionStarted, st)
	if !f.neverReady[t.Template.Image] {
		time.AfterFunc(20*time.Millisecond, func() { f.setReady(t.ID, true) })
	}
	return st, nil
}

func (f *fakeRunner) Stop(_ context.Context, taskID string, _ time.Duration) error {
	if f.onStop != nil {
		f.onStop(taskID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.tasks[taskID]
	if !ok {
		return nil
	}
	delete(f.tasks, taskID)
	st := ft.status
	st.State, st.Timestamp = api.TaskShutdown, time.Now()
	f.emitLocked(api.ActionRemoved, st)
	return nil
}

func (f *fakeRunner) List(context.Context) ([]api.TaskStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.TaskStatus
	for _, ft := range f.tasks {
		out = append(out, ft.status)
	}
	return out, nil
}

func (f *fakeRunner) Watch(ctx context.Context, fn func(api.TaskEvent)) error {
	ch := make(chan api.TaskEvent, 4096)
	f.mu.Lock()
	f.subs[ch] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-ch:
			fn(ev)
		}
	}
}

func (f *fakeRunner) Usage(context.Context) (api.NodeUsage, error) {
	return api.NodeUsage{NodeID: "n1", Capacity: nodeCapacity}, nil
}

// emitLocked sends an event to every watcher and records the counts.
func (f *fakeRunner) emitLocked(a api.TaskAction, st api.TaskStatus) {
	for ch := range f.subs {
		ch <- api.TaskEvent{Action: a, Status: st, Time: st.Timestamp}
	}
	if !f.recording {
		return
	}
	live, ready := map[string]int{}, map[string]int{}
	for _, ft := range f.tasks {
		switch ft.status.State {
		case api.TaskReady:
			ready[ft.task.ServiceName]++
			fallthrough
		case api.TaskRunning:
			live[ft.task.ServiceName]++
		}
	}
	for name, n := range live {
		f.maxLive[name] = max(f.maxLive[name], n)
	}
	for name := range f.minReady {
		f.minReady[name] = min(f.minReady[name], ready[name])
	}
}

// record starts recording the counts of service name from now.
func (f *fakeRunner) record(name string, ready int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recording = true
	f.maxLive[name], f.minReady[name] = 0, ready
}

// counts returns the most live and fewest ready containers of name seen.
func (f *fakeRunner) counts(name string) (maxLive, minReady int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxLive[name], f.minReady[name]
}

func (f *fakeRunner) setReady(taskID string, ready bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.tasks[taskID]
	if !ok || ft.status.State.Terminal() {
		return
	}
	ft.status.Timestamp = time.Now()
	if ready {
		ft.status.State = api.TaskReady
		f.emitLocked(api.ActionReady, ft.status)
	} else {
		ft.status.State = api.TaskRunning
		f.emitLocked(api.ActionUnready, ft.status)
	}
}

// exit ends the task's process with code; unhealthy says the liveness
// probe killed it.
func (f *fakeRunner) exit(taskID string, code int, unhealthy bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.tasks[taskID]
	if !ok {
		return
	}
	now := time.Now()
	if unhealthy {
		f.emitLocked(api.ActionUnhealthy, ft.status)
	}
	ft.status.State, ft.status.ExitCode, ft.status.Timestamp, ft.status.FinishedAt = api.TaskFailed, code, now, now
	f.emitLocked(api.ActionExited, ft.status)
}

// vanish removes the task's container behind the controller's back
// (`berth rm -f`).
func (f *fakeRunner) vanish(taskID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.tasks[taskID]
	if !ok {
		return
	}
	delete(f.tasks, taskID)
	ft.status.Timestamp = time.Now()
	f.emitLocked(api.ActionRemoved, ft.status)
}

// containers returns the live containers' tasks.
func (f *fakeRunner) containers() []fakeTask {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeTask
	for _, ft := range f.tasks {
		out = append(out, *ft)
	}
	return out
}

// unstart turns a task's container into one created and never started, as
// a controller killed between the two leaves it.
func (f *fakeRunner) unstart(taskID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.tasks[taskID]
	ft.status.State, ft.status.StartedAt = api.TaskStarting, time.Time{}
}

// addOrphan adds a container whose task no store holds.
func (f *fakeRunner) addOrphan(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.tasks[id] = &fakeTask{task: api.Task{ID: id, ServiceName: "ghost"},
		status: api.TaskStatus{TaskID: id, State: api.TaskRunning, Timestamp: now, StartedAt: now}}
}
