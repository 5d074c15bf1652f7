package controller

import (
	"context"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/scheduler"
)

// slot is one replica's place: the tasks in it that are wanted and have
// not ended, or else the last one that ended by itself and waits for its
// replacement.
type slot struct {
	n      int
	active []*taskKV
	dead   *taskKV
}

// slotsOf groups the wanted tasks by slot, in slot order.
func (v *view) slotsOf() []*slot {
	m := map[int]*slot{}
	for _, t := range v.tasks {
		if t.DesiredState != api.TaskRunning {
			continue
		}
		s := m[t.Slot]
		if s == nil {
			s = &slot{n: t.Slot}
			m[t.Slot] = s
		}
		if !t.Status.State.Terminal() {
			s.active = append(s.active, t)
		} else if s.dead == nil || t.CreatedAt.After(s.dead.CreatedAt) {
			s.dead = t
		}
	}
	out := make([]*slot, 0, len(m))
	for _, s := range m {
		if len(s.active) > 0 {
			s.dead = nil
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *slot) int { return a.n - b.n })
	return out
}

// available reports whether t counts as available: ready for MinReady.
// A task ready for less asks for a pass when it will be.
func (p *pass) available(t *taskKV) bool {
	if t.Status.State != api.TaskReady {
		return false
	}
	left := t.Status.Timestamp.Add(p.v.spec.MinReady.Std()).Sub(p.now)
	if left > 0 {
		p.wake(left)
		return false
	}
	return true
}

func (p *pass) slotAvailable(s *slot) bool {
	return slices.ContainsFunc(s.active, p.available)
}

// slots makes the number of slots the desired one: the extra ones go,
// not-ready ones first and then the highest; an ended task is replaced by
// the restart policy; missing slots are filled, the lowest numbers first.
func (p *pass) slots(ctx context.Context) error {
	want := p.v.spec.DesiredReplicas()
	slots := p.v.slotsOf()
	if extra := len(slots) - want; extra > 0 {
		victims := slices.Clone(slots)
		slices.SortStableFunc(victims, func(a, b *slot) int {
			if aa, ba := p.slotAvailable(a), p.slotAvailable(b); aa != ba {
				if aa {
					return 1
				}
				return -1
			}
			return b.n - a.n
		})
		var out []*taskKV
		for _, s := range victims[:extra] {
			out = append(out, s.active...)
			if s.dead != nil {
				out = append(out, s.dead)
			}
		}
		if err := p.takeOut(ctx, out...); err != nil {
			return err
		}
		slots = p.v.slotsOf()
	}
	for _, s := range slots {
		if s.dead == nil {
			continue
		}
		restarts, wait, ok := p.restart(s.n, s.dead)
		if !p.paused() && !p.current(s.dead) {
			// A rollout replaces it: the backoff was earned by another
			// template.
			restarts, wait, ok = -1, 0, true
		}
		if !ok {
			continue
		}
		if wait > 0 {
			p.wake(wait)
			continue
		}
		rev := p.target
		if p.paused() { // a paused rollout keeps the old revision serving
			rev = revisionKV{Revision: api.Revision{Number: s.dead.Revision, Template: s.dead.Template}}
		}
		t := p.newTask(s.n, rev, restarts+1)
		p.place([]*taskKV{t})
		s.dead.DesiredState = api.TaskShutdown
		if err := p.c.commit(ctx, p.v, []*taskKV{t, s.dead}); err != nil {
			return err
		}
	}
	var fill []*taskKV
	used := map[int]bool{}
	for _, s := range slots {
		used[s.n] = true
	}
	for n := 1; len(slots)+len(fill) < want; n++ {
		if !used[n] {
			fill = append(fill, p.newTask(n, p.target, 0))
		}
	}
	p.place(fill)
	for len(fill) > 0 {
		k := min(len(fill), 100)
		if err := p.c.commit(ctx, p.v, fill[:k]); err != nil {
			return err
		}
		fill = fill[k:]
	}
	return nil
}

// paused reports whether the rollout is paused.
func (p *pass) paused() bool {
	u := p.v.svc.Status.Update
	return u == api.UpdatePaused || u == api.UpdateRollbackPaused
}

// restart decides whether the ended task dead of slot n is replaced, after
// how long, and how many restarts of the slot count toward its backoff.
func (p *pass) restart(n int, dead *taskKV) (restarts int, wait time.Duration, ok bool) {
	pol := p.v.spec.Restart
	switch {
	case pol.Condition == api.RestartNone:
		return 0, 0, false
	case pol.Condition == api.RestartOnFailure && dead.Status.State == api.TaskComplete:
		return 0, 0, false
	}
	st := dead.Status
	restarts = st.RestartCount
	if !st.StartedAt.IsZero() && st.FinishedAt.Sub(st.StartedAt) >= pol.Backoff.Reset.Std() {
		restarts = 0 // it ran well: the backoff starts over
	}
	if pol.MaxAttempts > 0 {
		attempts := restarts
		if pol.Window > 0 {
			attempts = 0
			for _, t := range p.v.tasks {
				if t.Slot == n && t.Status.RestartCount > 0 && p.now.Sub(t.CreatedAt) < pol.Window.Std() {
					attempts++
				}
			}
		}
		if attempts >= pol.MaxAttempts {
			return 0, 0, false
		}
	}
	end := st.FinishedAt
	if end.IsZero() {
		end = st.Timestamp
	}
	return restarts, end.Add(pol.NextDelay(restarts)).Sub(p.now), true
}

// newTask returns a task of revision rev for slot n, still to place.
func (p *pass) newTask(n int, rev revisionKV, restarts int) *taskKV {
	svc := p.v.svc
	t := &taskKV{Task: api.Task{ID: newTaskID(), ServiceID: svc.ID, ServiceName: svc.Name, Slot: n,
		Revision: rev.Number, DesiredState: api.TaskRunning, Template: rev.Template, CreatedAt: p.now,
		Status: api.TaskStatus{State: api.TaskPending, RestartCount: restarts, Timestamp: p.now}}}
	t.Status.TaskID = t.ID
	return t
}

// place puts tasks on nodes by the scheduler, over every task placed so
// far; a task that fits nowhere stays pending with the scheduler's reason.
func (p *pass) place(ts []*taskKV) {
	placed := slices.Clone(p.v.others)
	for _, t := range p.v.tasks {
		placed = append(placed, t.Task)
	}
	tasks := make([]api.Task, len(ts))
	for i, t := range ts {
		tasks[i] = t.Task
	}
	decisions, err := scheduler.Place(scheduler.Nodes(p.v.nodes, placed), tasks, p.c.opts.strategy)
	for i, t := range ts {
		switch {
		case err != nil:
			t.Status.Message = err.Error()
		case decisions[i].Err != nil:
			t.Status.Message = decisions[i].Err.Error()
		default:
			t.NodeID = decisions[i].NodeID
			t.Status.State, t.Status.Message, t.Status.Timestamp = api.TaskAssigned, "", p.now
		}
	}
}
