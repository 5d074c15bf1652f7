package controller

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// TaskHistory is how many ended tasks a slot keeps for `service ps`
// (Swarm's task-history-limit).
const TaskHistory = 5

// trim forgets the ended tasks of each slot past TaskHistory (removing
// their containers) and the revisions past RevisionHistoryLimit that no
// task runs.
func (p *pass) trim(ctx context.Context) error {
	ended := map[int][]*taskKV{}
	for _, t := range p.v.tasks {
		if t.Status.State.Terminal() {
			ended[t.Slot] = append(ended[t.Slot], t)
		}
	}
	for _, ts := range ended {
		if len(ts) <= TaskHistory {
			continue
		}
		slices.SortFunc(ts, func(a, b *taskKV) int { return b.CreatedAt.Compare(a.CreatedAt) })
		for _, t := range ts[TaskHistory:] {
			if err := p.c.forgetTask(ctx, t); err != nil {
				return err
			}
		}
	}
	p.v.tasks = slices.DeleteFunc(p.v.tasks, func(t *taskKV) bool { return t.rev < 0 })
	keep := *p.v.spec.RevisionHistoryLimit
	used := map[int64]bool{p.target.Number: true}
	for _, t := range p.v.active() {
		used[t.Revision] = true
	}
	for i := len(p.v.revs) - 1; i >= 0; i-- {
		r := p.v.revs[i]
		if used[r.Number] {
			continue
		}
		if r.Number < p.target.Number && keep > 0 {
			keep--
			continue
		}
		if r.Number > p.target.Number {
			continue // being written by a pass of a newer generation
		}
		if _, err := p.c.st.Delete(ctx, api.RevisionKey(r.ServiceID, r.Number), r.rev); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return nil
}

// forgetTask stops a task's container, if any, and deletes the task; it
// marks t deleted by a negative rev.
func (c *Controller) forgetTask(ctx context.Context, t *taskKV) error {
	if r, ok := c.runners[t.NodeID]; ok {
		if err := r.Stop(ctx, t.ID, 0); err != nil {
			return err
		}
		c.obs.forget(t.ID)
	}
	if _, err := c.st.Delete(ctx, api.TaskKey(t.ServiceID, t.ID), t.rev); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	t.rev = -1
	return nil
}

// collect stops every container of this controller's nodes whose task is
// not in the store or was taken out, and forgets the tasks and revisions
// of services that are gone. The Runners are listed before the store, so
// that a container's task, written before the container was created, is
// seen.
func (c *Controller) collect(ctx context.Context) error {
	lists := map[string][]api.TaskStatus{}
	for node, r := range c.runners {
		list, err := c.listRunner(ctx, node, r)
		if err != nil {
			return err
		}
		lists[node] = list
	}
	tasks, err := c.listTasks(ctx)
	if err != nil {
		return err
	}
	revs, _, err := c.st.List(ctx, api.RevisionsPrefix)
	if err != nil {
		return err
	}
	// Listed after the tasks: a task seen has its service in this list
	// unless the service is gone.
	svcs, _, err := c.st.List(ctx, api.ServicesPrefix)
	if err != nil {
		return err
	}
	live, liveNames := map[string]bool{}, map[string]bool{}
	for _, kv := range svcs {
		var s api.Service
		if err := s.UnmarshalJSON(kv.Value); err == nil {
			live[s.ID], liveNames[s.Name] = true, true
		}
	}
	// A removed service leaves load balancing before its tasks stop; a
	// node that fails to is told again at the next collect, and the rest
	// of the clean-up goes on.
	if err := c.unpublish(ctx, liveNames, live); err != nil {
		log(ctx).Warn("unpublish removed services", "err", err)
	}
	byID := map[string]*taskKV{}
	var gone, running []*taskKV
	for _, t := range tasks {
		byID[t.ID] = t
		if live[t.ServiceID] {
			continue
		}
		gone = append(gone, t)
		if !t.Status.State.Terminal() && t.NodeID != "" {
			running = append(running, t)
		}
	}
	// All at once, as a scale-down stops its tasks.
	if err := c.stopTasks(ctx, running); err != nil {
		return err
	}
	for _, t := range gone {
		if err := c.forgetTask(ctx, t); err != nil {
			return err
		}
	}
	c.obs.retain(func(id string) bool {
		t, ok := byID[id]
		return ok && t.DesiredState == api.TaskRunning
	})
	for node, list := range lists {
		for _, st := range list {
			t, ok := byID[st.TaskID]
			if ok && !(t.DesiredState == api.TaskShutdown && t.Status.State.Terminal()) {
				continue
			}
			if err := c.runners[node].Stop(ctx, st.TaskID, api.DefaultStopGracePeriod); err != nil {
				return err
			}
			c.obs.forget(st.TaskID)
		}
	}
	for _, kv := range revs {
		id, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, api.RevisionsPrefix), "/")
		if !live[id] {
			if _, err := c.st.Delete(ctx, kv.Key, kv.ModRevision); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}
