package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Metrics is what a node tells of its running tasks and its traffic.
type Metrics interface {
	// TaskUsage returns, by task ID, what each running task of the node
	// uses now: its CPU time so far and its memory.
	TaskUsage(ctx context.Context) (map[string]api.TaskUsage, error)
	// ServiceRequests returns how many requests reached the service on
	// the node so far; a count lower than the last one started again.
	ServiceRequests(ctx context.Context, service string) (uint64, error)
}

// Recorder is told of each change of a service's replicas (for `berth
// events`); it must not block.
type Recorder func(serviceID, name string, d api.ScaleDecision)

// Controller runs the store's autoscalers: one worker per autoscaler, each
// reading its metrics and triggers every polling interval and writing the
// service's replicas when they should change.
type Controller struct {
	st     store.Store
	nodes  []Metrics
	record Recorder
	log    *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	wakes map[string]chan struct{} // by service name, one per worker
}

// New returns a controller over st that reads the tasks' usage from nodes
// and tells record of its decisions (nil: nobody).
func New(st store.Store, nodes []Metrics, record Recorder, log *slog.Logger) *Controller {
	if record == nil {
		record = func(string, string, api.ScaleDecision) {}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Controller{st: st, nodes: nodes, record: record, log: log, now: time.Now, wakes: map[string]chan struct{}{}}
}

// Wake tells the autoscaler of service that a connection waits for it (an
// activator holds it): at zero replicas it scales to one now, without
// waiting for its polling interval. It never blocks.
func (c *Controller) Wake(service string) {
	c.mu.Lock()
	ch := c.wakes[service]
	c.mu.Unlock()
	select {
	case ch <- struct{}{}:
	default: // nil (no autoscaler), or a wake is pending already
	}
}

// supervise is how often the controller looks for autoscalers that came
// or went.
const supervise = time.Second

// Run works until ctx ends, and returns nil then.
func (c *Controller) Run(ctx context.Context) error {
	workers := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, cancel := range workers {
			cancel()
		}
		wg.Wait()
	}()
	t := time.NewTicker(supervise)
	defer t.Stop()
	for {
		kvs, _, err := c.st.List(ctx, api.AutoscalersPrefix)
		if err != nil && ctx.Err() == nil {
			// Keep the workers (and what they remember) until a list
			// says which went.
			c.log.Warn("autoscalers: list", "err", err)
		}
		live := map[string]bool{}
		for _, kv := range kvs {
			name := kv.Key[len(api.AutoscalersPrefix):]
			live[name] = true
			if workers[name] != nil {
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			workers[name] = cancel
			w := &worker{c: c, name: name, cpu: map[string]api.TaskUsage{}, scalers: map[string]scaler{}, wake: make(chan struct{}, 1)}
			c.mu.Lock()
			c.wakes[name] = w.wake
			c.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(wctx)
			}()
		}
		for name, cancel := range workers {
			if err == nil && !live[name] {
				cancel()
				delete(workers, name)
				c.mu.Lock()
				delete(c.wakes, name)
				c.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// worker scales one service.
type worker struct {
	c       *Controller
	name    string
	mem     memory
	cpu     map[string]api.TaskUsage // each task's last reading, for rates
	scalers map[string]scaler        // by the trigger's JSON
	written time.Time                // when the status was last stored
	wake    chan struct{}            // Controller.Wake
	woken   bool                     // since the last tick
}

// statusEvery bounds how often a status whose readings changed, but that
// decided nothing, is stored.
const statusEvery = 5 * time.Second

func (w *worker) run(ctx context.Context) {
	defer func() {
		for _, s := range w.scalers {
			s.Close()
		}
	}()
	w.mem.lastActive = w.c.now()
	for {
		interval, err := w.tick(ctx)
		if err != nil && ctx.Err() == nil && !errors.Is(err, errdefs.ErrConflict) {
			w.c.log.Warn("autoscaler", "service", w.name, "err", err)
		}
		if interval <= 0 {
			interval = api.DefaultPollingInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		case <-w.wake:
			w.woken = true
		}
	}
}

// tick reads the autoscaler, its service's metrics and triggers, decides,
// and writes the service's replicas and the status; it returns the
// polling interval.
func (w *worker) tick(ctx context.Context) (time.Duration, error) {
	var a api.Autoscaler
	akv, err := getJSON(ctx, w.c.st, api.AutoscalerKey(w.name), &a)
	if err != nil {
		return 0, err
	}
	a.Spec.SetDefaults()
	var svc api.Service
	skv, err := getJSON(ctx, w.c.st, api.ServiceKey(w.name), &svc)
	if err != nil {
		return a.Spec.PollingInterval.Std(), err
	}
	now := w.c.now()
	current := svc.Spec.DesiredReplicas()
	rs := w.read(ctx, now, a.Spec, svc)
	woken := w.woken
	if woken {
		w.woken = false
		rs = append(rs, result{trigger: true, MetricStatus: api.MetricStatus{Name: "activator",
			Current: "a connection waits", Desired: 1, Active: true}})
	}
	desired, why := decide(a.Spec, now, current, rs, &w.mem)

	st := a.Status
	st.CurrentReplicas, st.DesiredReplicas, st.Observed = current, desired, now.UTC()
	st.LastActive = w.mem.lastActive.UTC()
	st.Metrics = make([]api.MetricStatus, len(rs))
	for i, r := range rs {
		st.Metrics[i] = r.MetricStatus
	}
	ops := []store.Op{}
	var d api.ScaleDecision
	if desired != current {
		d = api.ScaleDecision{Time: now.UTC(), From: current, To: desired, Reason: why}
		st.Decisions = append(st.Decisions, d)
		if n := len(st.Decisions); n > api.MaxDecisions {
			st.Decisions = slices.Clone(st.Decisions[n-api.MaxDecisions:])
		}
		svc.Spec.Replicas = &desired
		svc.Generation++
		svc.UpdatedAt = now.UTC()
		b, err := json.Marshal(svc)
		if err != nil {
			return a.Spec.PollingInterval.Std(), err
		}
		ops = append(ops, store.OpPut(skv.Key, b, skv.ModRevision))
	} else if sameStatus(a.Status, st, true) && (sameStatus(a.Status, st, false) || now.Sub(w.written) < statusEvery) {
		// Readings that moved but ask for the same are stored now and
		// then, not each time.
		return a.Spec.PollingInterval.Std(), nil
	}
	a.Status = st
	b, err := json.Marshal(a)
	if err != nil {
		return a.Spec.PollingInterval.Std(), err
	}
	ops = append(ops, store.OpPut(akv.Key, b, akv.ModRevision))
	if _, err := w.c.st.Txn(ctx, ops...); err != nil {
		if desired != current {
			w.mem.changes = w.mem.changes[:max(len(w.mem.changes)-1, 0)]
		}
		w.woken = w.woken || woken // the connection still waits
		return a.Spec.PollingInterval.Std(), fmt.Errorf("write: %w", err)
	}
	w.written = now
	if desired != current {
		w.c.log.Info("autoscaled", "service", w.name, "from", current, "to", desired, "reason", why)
		w.c.record(svc.ID, svc.Name, d)
	}
	return a.Spec.PollingInterval.Std(), nil
}

// sameStatus reports whether two statuses show the same, their times
// aside; loosely, the readings only by what they ask for and whether they
// failed.
func sameStatus(a, b api.AutoscalerStatus, loosely bool) bool {
	return a.CurrentReplicas == b.CurrentReplicas && a.DesiredReplicas == b.DesiredReplicas &&
		len(a.Decisions) == len(b.Decisions) &&
		slices.EqualFunc(a.Metrics, b.Metrics, func(x, y api.MetricStatus) bool {
			if loosely {
				return x.Name == y.Name && x.Desired == y.Desired && x.Active == y.Active && x.Error == y.Error
			}
			return x == y
		})
}

// getJSON reads key into v.
func getJSON(ctx context.Context, st store.Store, key string, v any) (store.KeyValue, error) {
	kv, err := st.Get(ctx, key)
	if err != nil {
		return kv, err
	}
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return kv, fmt.Errorf("stored %s: %w", key, err)
	}
	return kv, nil
}

// percent writes a utilization: "182%".
func percent(p float64) string { return fmt.Sprintf("%.0f%%", math.Round(p)) }
