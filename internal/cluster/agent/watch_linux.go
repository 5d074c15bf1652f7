package agent

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/container"
)

// Watch calls fn with every change the agent sees in a task — its
// container created, started, exited or removed (the engine's events) and
// its probes' verdicts (ready, unready, unhealthy) — in the order seen,
// from the call on, until ctx ends or the Agent is closed; then it
// returns nil. fn is called from
// one goroutine at a time; a slow fn delays only its own events.
func (a *Agent) Watch(ctx context.Context, fn func(api.TaskEvent)) error {
	s := &subscriber{wake: make(chan struct{}, 1)}
	a.mu.Lock()
	a.subs[s] = struct{}{}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.subs, s)
		a.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.ctx.Done():
			return nil
		case <-s.wake:
		}
		for _, ev := range s.take() {
			if ctx.Err() != nil {
				return nil
			}
			fn(ev)
		}
	}
}

// subscriber is one Watch: an unbounded queue, so that publishing never
// waits for a watcher.
type subscriber struct {
	mu   sync.Mutex
	q    []api.TaskEvent
	wake chan struct{}
}

func (s *subscriber) put(ev api.TaskEvent) {
	s.mu.Lock()
	s.q = append(s.q, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) take() []api.TaskEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.q
	s.q = nil
	return q
}

// publish hands ev to every Watch.
func (a *Agent) publish(ev api.TaskEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Status.Timestamp.IsZero() {
		ev.Status.Timestamp = ev.Time.UTC()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for s := range a.subs {
		s.put(ev)
	}
}

// eventsPoll is how often the engine's events log is read: a replica's
// exit is reported within it (a read of a file that has not grown is one
// cheap system call).
const eventsPoll = 10 * time.Millisecond

// follow turns the engine's events about task containers into task
// events and keeps a prober on each running task, until Close. It closes
// started once it will see every event from then on; the containers that
// already run are adopted after that, so that none is missed.
func (a *Agent) follow(started chan struct{}) {
	since := time.Now()
	go func() {
		a.adopt(a.ctx)
		close(started)
	}()
	for a.ctx.Err() == nil {
		o := container.EventsOptions{Since: since, Filters: []string{"type=container", "label=" + LabelTaskID}, Poll: eventsPoll}
		err := a.e.Events(a.ctx, o, func(ev *container.Event) error {
			since = ev.When()
			a.handle(ev)
			return nil
		})
		if err != nil && a.ctx.Err() == nil {
			a.o.log.Warn("agent: reading the engine's events", "err", err)
			select {
			case <-a.ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// adopt starts probing every task container that runs.
func (a *Agent) adopt(ctx context.Context) {
	ts, err := a.tasks(ctx)
	if err != nil {
		a.o.log.Warn("agent: listing task containers", "err", err)
		return
	}
	for _, t := range ts {
		if t.st.Status == container.Running {
			a.startProber(t.c, t.st, true)
		}
	}
}

// handle acts on one engine event about a task container.
func (a *Agent) handle(ev *container.Event) {
	attrs := ev.Actor.Attributes
	id := ev.Actor.ID
	s := api.TaskStatus{TaskID: attrs[LabelTaskID], ContainerID: id, Timestamp: ev.When().UTC()}
	out := api.TaskEvent{Status: s, Time: ev.When()}
	switch action := ev.Action; {
	case action == "create":
		out.Action, out.Status.State = api.ActionCreated, api.TaskStarting
	case action == "start":
		out.Action, out.Status.State, out.Status.StartedAt = api.ActionStarted, api.TaskRunning, s.Timestamp
		a.publish(out)
		if c, st, err := a.e.Get(a.ctx, id); err == nil && st.Status == container.Running {
			a.startProber(c, st, false)
		}
		return
	case action == "die":
		a.stopProber(id)
		code, _ := strconv.Atoi(attrs["exitCode"])
		oom := false
		if _, st, err := a.e.Get(a.ctx, id); err == nil {
			oom = st.OOMKilled
		}
		out.Action, out.Status.ExitCode, out.Status.FinishedAt = api.ActionExited, code, s.Timestamp
		out.Status.State, out.Status.Message = exitStatus(code, oom)
	case action == "destroy":
		a.stopProber(id)
		out.Action, out.Status.State, out.Status.Message = api.ActionRemoved, api.TaskShutdown, "container removed"
	case strings.HasPrefix(action, "health_status: "):
		if p := a.prober(id); p != nil {
			p.health(strings.TrimPrefix(action, "health_status: "))
		}
		return
	default:
		return
	}
	a.publish(out)
}
