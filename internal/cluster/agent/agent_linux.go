package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
)

// Agent runs tasks on one engine. Its methods are safe for concurrent use.
// New starts it following the engine's events and probing the task
// containers that run; Close stops that (the containers keep running).
type Agent struct {
	e      *container.Engine
	nodeID string
	o      options

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	act *activator // nil without WithActivator

	mu        sync.Mutex
	probers   map[string]*prober // by container ID
	subs      map[*subscriber]struct{}
	cpu       cpuSample
	published map[string]chan struct{} // by service, closed by its next Publish
}

// Option changes how New sets an Agent up.
type Option func(*options)

type options struct {
	capacity *api.Resources
	log      *slog.Logger
	nets     *network.Manager
	wake     func(service string)
}

// WithCapacity makes the node offer r instead of this machine's CPUs and
// memory.
func WithCapacity(r api.Resources) Option { return func(o *options) { o.capacity = &r } }

// WithNetworks makes Publish balance services on nets' networks, which
// must be the engine's.
func WithNetworks(nets *network.Manager) Option { return func(o *options) { o.nets = nets } }

// WithLogger logs what the agent cannot report otherwise (probes it could
// not run, events it could not read) to l instead of slog's default.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// New returns the agent of node nodeID over e. It adopts the task
// containers that already run (probing them again) and follows the
// engine's events until Close.
func New(e *container.Engine, nodeID string, opts ...Option) *Agent {
	a := &Agent{e: e, nodeID: nodeID, probers: map[string]*prober{}, subs: map[*subscriber]struct{}{},
		published: map[string]chan struct{}{}, done: make(chan struct{})}
	for _, o := range opts {
		o(&a.o)
	}
	if a.o.log == nil {
		a.o.log = slog.Default()
	}
	if a.o.wake != nil && a.o.nets != nil {
		act, err := a.startActivator()
		if err != nil {
			a.o.log.Error("agent: services cannot scale from zero", "err", err)
		}
		a.act = act
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() {
		defer close(a.done)
		a.follow(started)
	}()
	<-started
	return a
}

// Close stops following events, probing and the activator (closing the
// connections it holds or splices); it returns once all stopped. The
// containers keep running, for the next Agent to adopt.
func (a *Agent) Close() error {
	a.cancel()
	<-a.done
	if a.act != nil {
		a.act.close()
	}
	a.mu.Lock()
	ps := a.probers
	a.probers = map[string]*prober{}
	a.mu.Unlock()
	for _, p := range ps {
		p.stop()
	}
	return nil
}

// task is a task's container as the engine has it.
type task struct {
	c  *container.Container
	st *container.State
}

func (t task) id() string { return t.c.Config.Labels[LabelTaskID] }

// tasks returns every task container of the engine.
func (a *Agent) tasks(ctx context.Context) ([]task, error) {
	cs, sts, err := a.e.List(ctx)
	if err != nil {
		return nil, err
	}
	var ts []task
	for i, c := range cs {
		if c.Config.Labels[LabelTaskID] != "" {
			ts = append(ts, task{c, sts[i]})
		}
	}
	return ts, nil
}

// find returns the container of task id, looked up by its name first and
// by its label if renamed; ok is false if there is none.
func (a *Agent) find(ctx context.Context, id, name string) (t task, ok bool, err error) {
	if name != "" {
		c, st, err := a.e.Get(ctx, name)
		switch {
		case err == nil && c.Config.Labels[LabelTaskID] == id:
			return task{c, st}, true, nil
		case err != nil && !errors.Is(err, errdefs.ErrNotFound):
			return t, false, err
		}
	}
	ts, err := a.tasks(ctx)
	if err != nil {
		return t, false, err
	}
	for _, t := range ts {
		if t.id() == id {
			return t, true, nil
		}
	}
	return t, false, nil
}

// status is what the agent makes of a task container now.
func (a *Agent) status(t task) api.TaskStatus {
	s := api.TaskStatus{TaskID: t.id(), ContainerID: t.c.ID, StartedAt: t.st.StartedAt, FinishedAt: t.st.FinishedAt}
	switch t.st.Status {
	case container.Created:
		s.State, s.Timestamp = api.TaskStarting, t.c.Created
	case container.Running, container.Paused, container.Restarting:
		s.State, s.Timestamp = api.TaskRunning, t.st.StartedAt
		if p := a.prober(t.c.ID); p != nil && p.isReady() {
			s.State = api.TaskReady
		}
	case container.Removing:
		s.State, s.Timestamp, s.Message = api.TaskShutdown, t.st.FinishedAt, "container removed"
	default:
		s.State, s.Message = exitStatus(t.st.ExitCode, t.st.OOMKilled)
		s.ExitCode, s.Timestamp = t.st.ExitCode, t.st.FinishedAt
		if t.st.Error != "" {
			s.Message = t.st.Error
		}
	}
	return s
}

// List returns the status of every task container on this engine.
func (a *Agent) List(ctx context.Context) ([]api.TaskStatus, error) {
	ts, err := a.tasks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	out := make([]api.TaskStatus, len(ts))
	for i, t := range ts {
		out[i] = a.status(t)
	}
	return out, nil
}

// Stop stops the container of task taskID with its stop signal, SIGKILL
// after grace, and removes it with its anonymous volumes. A task without a
// container is not an error.
func (a *Agent) Stop(ctx context.Context, taskID string, grace time.Duration) error {
	t, ok, err := a.find(ctx, taskID, "")
	if err != nil || !ok {
		return err
	}
	if err := a.e.Stop(ctx, t.c.ID, &grace); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("stop task %s: %w", taskID, err)
	}
	err = a.e.Remove(ctx, t.c.ID, container.RemoveOptions{Force: true, Volumes: true})
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("remove task %s: %w", taskID, err)
	}
	return nil
}
