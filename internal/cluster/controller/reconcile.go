package controller

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// pass is one reconciliation of one service.
type pass struct {
	c      *Controller
	v      *view
	now    time.Time
	target revisionKV    // the revision the replicas run or roll to
	after  time.Duration // when the next pass is due, 0 for none
}

// reconcile makes one pass over service name and returns when the next one
// is due without a change (0: only on a change).
func (c *Controller) reconcile(ctx context.Context, name string) (time.Duration, error) {
	v, err := c.load(ctx, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return 0, c.collect(ctx)
	}
	if err != nil {
		return 0, err
	}
	p := &pass{c: c, v: v, now: c.now()}
	for _, step := range []func(context.Context) error{p.observe, p.publish, p.syncRevision, p.finishRemovals,
		p.slots, p.rollout, p.run, p.trim} {
		if err := step(ctx); err != nil {
			return 0, err
		}
	}
	return p.after, nil
}

// wake asks for another pass within d.
func (p *pass) wake(d time.Duration) {
	d = max(d, time.Millisecond)
	if p.after == 0 || d < p.after {
		p.after = d
	}
}

// observe writes what the Runners reported into the statuses of the tasks
// that run (or ran) and are wanted.
func (p *pass) observe(ctx context.Context) error {
	for _, t := range p.v.tasks {
		if t.DesiredState != api.TaskRunning || t.Status.State.Terminal() || t.NodeID == "" {
			continue
		}
		st, ok := p.c.obs.get(t.ID)
		if !ok {
			continue // not run yet, or the controller restarted: run Ensures it
		}
		if err := p.record(ctx, t, st); err != nil {
			return err
		}
	}
	return nil
}

// record writes st as t's status if it says something new; the restart
// count is the controller's own.
func (p *pass) record(ctx context.Context, t *taskKV, st api.TaskStatus) error {
	st.TaskID, st.RestartCount = t.ID, t.Status.RestartCount
	cur := t.Status
	if cur.State == st.State && cur.Message == st.Message && cur.ExitCode == st.ExitCode &&
		cur.ContainerID == st.ContainerID && cur.StartedAt.Equal(st.StartedAt) && cur.FinishedAt.Equal(st.FinishedAt) {
		return nil
	}
	if st.Timestamp.IsZero() {
		st.Timestamp = p.now
	}
	t.Status = st
	return p.c.putTask(ctx, t)
}

// syncRevision acts on a new Generation: a template that hashes as the
// current revision changes only the status (a scale); another one gets a
// new revision, and the rollout to it starts.
func (p *pass) syncRevision(ctx context.Context) error {
	v := p.v
	st := &v.svc.Status
	cur, hasCur := v.revision(st.Revision)
	p.target = cur
	if hasCur && st.ObservedGeneration == v.svc.Generation {
		return nil
	}
	hash := v.svc.Spec.Template.Hash()
	if hasCur && cur.Hash == hash {
		st.ObservedGeneration = v.svc.Generation
		return p.c.commit(ctx, v, nil)
	}
	var next revisionKV
	if n := len(v.revs); n > 0 && v.revs[n-1].Number > st.Revision && v.revs[n-1].Hash == hash {
		next = v.revs[n-1] // written by a pass that died before the status
	} else {
		number := int64(1)
		if n > 0 {
			number = v.revs[n-1].Number + 1
		}
		r := api.Revision{ServiceID: v.svc.ID, Number: number, Template: v.svc.Spec.Template, Hash: hash, CreatedAt: p.now}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		rev, err := p.c.st.Put(ctx, api.RevisionKey(v.svc.ID, number), b, 0)
		if err != nil {
			return err
		}
		next = revisionKV{r, rev}
		v.revs = append(v.revs, next)
	}
	first := st.Revision == 0
	st.Revision, st.ObservedGeneration = next.Number, v.svc.Generation
	if !first {
		if st.Update != api.UpdateRollbackStarted {
			st.Update, st.Message = api.UpdateUpdating, ""
		}
		st.UpdateStart, st.UpdateEnd = p.now, time.Time{}
	}
	p.target = next
	return p.c.commit(ctx, v, nil)
}

// run places the tasks that wait for a node and Ensures those placed that
// no Runner has reported yet, or reported created and not started (a
// controller killed between the two leaves such a container).
func (p *pass) run(ctx context.Context) error {
	var pending []*taskKV
	for _, t := range p.v.active() {
		if t.NodeID == "" {
			pending = append(pending, t)
		}
	}
	if len(pending) > 0 {
		p.place(pending)
		for _, t := range pending {
			if err := p.c.putTask(ctx, t); err != nil {
				return err
			}
		}
	}
	var ensure []*taskKV
	for _, t := range p.v.active() {
		if t.NodeID == "" {
			continue
		}
		if st, ok := p.c.obs.get(t.ID); ok && st.State != api.TaskStarting {
			continue
		}
		if _, ok := p.c.runners[t.NodeID]; ok { // else another controller's node
			ensure = append(ensure, t)
		}
	}
	// Containers start several at once (much of a start is waiting); the
	// statuses are written in order after.
	sts := make([]api.TaskStatus, len(ensure))
	var wg sync.WaitGroup
	sem := make(chan struct{}, ensureParallel)
	for i, t := range ensure {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			st, err := p.c.runners[t.NodeID].Ensure(ctx, t.Task)
			if err != nil {
				st = api.TaskStatus{TaskID: t.ID, State: api.TaskRejected, Message: err.Error(), Timestamp: p.now, FinishedAt: p.now}
			}
			sts[i] = st
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for i, t := range ensure {
		p.c.obs.set(t.NodeID, sts[i])
		if err := p.record(ctx, t, sts[i]); err != nil {
			return err
		}
	}
	return nil
}

// ensureParallel is how many Runner.Ensure calls a pass makes at once.
const ensureParallel = 4

// takeOut removes tasks from the service: their desired state becomes
// shutdown and, once that decision is committed, they leave load balancing
// and DNS, those that took traffic drain, and those that run are stopped.
func (p *pass) takeOut(ctx context.Context, ts ...*taskKV) error {
	served := false
	for _, t := range ts {
		served = served || t.Status.State == api.TaskReady
		t.DesiredState = api.TaskShutdown
		switch {
		case t.Status.State.Terminal():
		case t.NodeID == "" || !t.Status.State.Placed():
			t.Status = api.TaskStatus{TaskID: t.ID, State: api.TaskShutdown, Message: "removed before it ran",
				RestartCount: t.Status.RestartCount, Timestamp: p.now, FinishedAt: p.now}
		default:
			t.Status.State, t.Status.Message, t.Status.Timestamp = api.TaskLeaving, "", p.now
		}
	}
	if err := p.c.commit(ctx, p.v, ts); err != nil {
		return err
	}
	if err := p.publish(ctx); err != nil {
		return err
	}
	p.drain(ctx, served)
	return p.c.stopTasks(ctx, slices.DeleteFunc(slices.Clone(ts), func(t *taskKV) bool { return t.Status.State.Terminal() }))
}

// finishRemovals carries every task taken out to its end; those still
// leaving (a controller stopped before their drain ended) drain again.
func (p *pass) finishRemovals(ctx context.Context) error {
	var ts []*taskKV
	leaving := false
	for _, t := range p.v.tasks {
		if t.DesiredState == api.TaskShutdown && !t.Status.State.Terminal() {
			ts = append(ts, t)
			leaving = leaving || t.Status.State == api.TaskLeaving
		}
	}
	p.drain(ctx, leaving)
	return p.c.stopTasks(ctx, ts)
}

// stopTasks stops ts all at once (each waits out its own grace period, as
// Swarm stops the tasks of a scale-down together).
func (c *Controller) stopTasks(ctx context.Context, ts []*taskKV) error {
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.stopTask(ctx, t)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stopTask takes a task out of service: leaving (where issue 13's drain
// will hold it), stopping, Runner.Stop with its grace period, shutdown.
// Each state is written before the next step, so a restarted controller
// goes on from where one stopped.
func (c *Controller) stopTask(ctx context.Context, t *taskKV) error {
	if t.Status.State != api.TaskStopping {
		t.Status.State, t.Status.Timestamp = api.TaskStopping, c.now()
		if err := c.putTask(ctx, t); err != nil {
			return err
		}
	}
	r, ok := c.runners[t.NodeID]
	if !ok {
		return nil // its node's controller stops it
	}
	grace := t.Template.StopGracePeriod.Std()
	if grace == 0 {
		grace = api.DefaultStopGracePeriod
	}
	if err := r.Stop(ctx, t.ID, grace); err != nil {
		return err
	}
	c.obs.forget(t.ID)
	now := c.now()
	t.Status.State, t.Status.Timestamp, t.Status.FinishedAt = api.TaskShutdown, now, now
	return c.putTask(ctx, t)
}
