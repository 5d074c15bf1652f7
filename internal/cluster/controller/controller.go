package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/scheduler"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Controller reconciles every service in a store with the tasks its nodes'
// Runners run.
type Controller struct {
	st      store.Store
	runners map[string]Runner // by node ID
	opts    options
	obs     *observed
	queue   *queue
	now     func() time.Time

	mu    sync.Mutex
	names map[string]string // task ID → service name, for Runner events
	// published is what each service's endpoints were when last handed
	// to every Runner, by service ID.
	published map[string]api.ServiceEndpoints
}

// Option modifies New.
type Option func(*options)

type options struct {
	resync   time.Duration
	workers  int
	strategy scheduler.Strategy
}

// Defaults of the options.
const (
	DefaultResync  = 5 * time.Second
	DefaultWorkers = 4
)

// WithResync sets how often every service is reconciled and every Runner
// listed again even when nothing was seen to change (default 5s).
func WithResync(d time.Duration) Option { return func(o *options) { o.resync = d } }

// WithWorkers sets how many services are reconciled at once (default 4);
// one service is never reconciled by two workers at once.
func WithWorkers(n int) Option { return func(o *options) { o.workers = max(n, 1) } }

// WithStrategy sets the scheduler's strategy (default spread).
func WithStrategy(s scheduler.Strategy) Option { return func(o *options) { o.strategy = s } }

// New returns a controller over st that runs tasks through runners, keyed
// by the ID of the node (api.NodeKey) each serves. Tasks are placed by
// scheduler.Place over the ready nodes in the store; a task placed on a node
// without a Runner here waits for the controller that has one.
func New(st store.Store, runners map[string]Runner, opts ...Option) *Controller {
	o := options{resync: DefaultResync, workers: DefaultWorkers, strategy: scheduler.Spread}
	for _, opt := range opts {
		opt(&o)
	}
	return &Controller{st: st, runners: runners, opts: o, obs: newObserved(), queue: newQueue(),
		now: time.Now, names: map[string]string{}, published: map[string]api.ServiceEndpoints{}}
}

// Run reconciles until ctx ends, then returns nil; it returns an error
// only when it cannot start (the store or a Runner fails its first list).
// A Controller is run once.
func (c *Controller) Run(ctx context.Context) error {
	for node, r := range c.runners {
		if _, err := c.listRunner(ctx, node, r); err != nil {
			return ignoreDone(ctx, err)
		}
	}
	svcRev, err := c.enqueueAll(ctx)
	if err != nil {
		return ignoreDone(ctx, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); c.queue.close(); wg.Wait() }()
	spawn := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	spawn(func() { c.watch(ctx, api.ServicesPrefix, svcRev) })
	spawn(func() { c.watch(ctx, api.TasksPrefix, svcRev) })
	spawn(func() { c.watch(ctx, api.AutoscalersPrefix, svcRev) })
	for node, r := range c.runners {
		spawn(func() { c.watchRunner(ctx, node, r) })
	}
	for range c.opts.workers {
		spawn(func() { c.work(ctx) })
	}
	t := time.NewTicker(c.opts.resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.resync(ctx)
		}
	}
}

// log returns the logger of ctx (slog's default for now).
func log(context.Context) *slog.Logger { return slog.Default() }

// work reconciles queued names until the queue closes.
func (c *Controller) work(ctx context.Context) {
	for {
		name, ok := c.queue.get()
		if !ok {
			return
		}
		after, err := c.reconcile(ctx, name)
		c.queue.done(name)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errdefs.ErrConflict):
			c.queue.addAfter(name, 10*time.Millisecond) // someone else wrote: read again
		case err != nil:
			log(ctx).Warn("reconcile service", "service", name, "err", err)
			c.queue.addAfter(name, time.Second)
		case after > 0:
			c.queue.addAfter(name, after)
		}
	}
}

// enqueueAll queues every service and returns the revision the store was
// listed at.
func (c *Controller) enqueueAll(ctx context.Context) (int64, error) {
	kvs, rev, err := c.st.List(ctx, api.ServicesPrefix)
	if err != nil {
		return 0, fmt.Errorf("list services: %w", err)
	}
	for _, kv := range kvs {
		c.queue.add(strings.TrimPrefix(kv.Key, api.ServicesPrefix))
	}
	return rev, nil
}

// watch queues the service of every change under prefix from rev on,
// listing again when the store's history is gone.
func (c *Controller) watch(ctx context.Context, prefix string, rev int64) {
	for ctx.Err() == nil {
		ch, err := c.st.Watch(ctx, prefix, rev)
		if err == nil {
			for ev := range ch {
				if ev.Err != nil {
					err = ev.Err
					break
				}
				rev = ev.KV.ModRevision
				c.onStoreEvent(prefix, ev)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, store.ErrCompacted) {
			log(ctx).Warn("watch store", "prefix", prefix, "err", err)
			sleep(ctx, time.Second)
		}
		if r, lerr := c.enqueueAll(ctx); lerr == nil {
			rev = r
		}
	}
}

// onStoreEvent queues the service a store event is about (an
// autoscaler's decides whether its service is activated).
func (c *Controller) onStoreEvent(prefix string, ev store.Event) {
	if prefix == api.ServicesPrefix || prefix == api.AutoscalersPrefix {
		c.queue.add(strings.TrimPrefix(ev.KV.Key, prefix))
		return
	}
	if ev.Type != store.EventPut {
		return // only the controllers delete tasks
	}
	var t api.Task
	if json.Unmarshal(ev.KV.Value, &t) == nil {
		c.remember(t)
		c.queue.add(t.ServiceName)
	}
}

// remember notes a task's service, for the Runners' events.
func (c *Controller) remember(t api.Task) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names[t.ID] = t.ServiceName
}

// watchRunner records node's Runner events and queues their services.
func (c *Controller) watchRunner(ctx context.Context, node string, r Runner) {
	for ctx.Err() == nil {
		err := r.Watch(ctx, func(ev api.TaskEvent) {
			c.obs.event(node, ev)
			c.mu.Lock()
			name, ok := c.names[ev.Status.TaskID]
			c.mu.Unlock()
			if ok {
				c.queue.add(name)
			}
		})
		if ctx.Err() != nil {
			return
		}
		log(ctx).Warn("watch node", "node", node, "err", err)
		sleep(ctx, time.Second)
		if _, err := c.listRunner(ctx, node, r); err != nil {
			log(ctx).Warn("list node", "node", node, "err", err)
		}
	}
}

// listRunner records and returns what node's Runner runs.
func (c *Controller) listRunner(ctx context.Context, node string, r Runner) ([]api.TaskStatus, error) {
	mark := c.obs.begin()
	list, err := r.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: list tasks: %w", node, err)
	}
	c.obs.listed(node, mark, list)
	return list, nil
}

// resync lists every Runner again, stops containers whose task is gone,
// forgets what belongs to deleted services and queues every service.
func (c *Controller) resync(ctx context.Context) {
	if err := c.collect(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, errdefs.ErrConflict) {
		log(ctx).Warn("resync", "err", err)
	}
	if _, err := c.enqueueAll(ctx); err != nil && ctx.Err() == nil {
		log(ctx).Warn("resync", "err", err)
	}
}

// ignoreDone returns nil for an error that comes of ctx ending.
func ignoreDone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
