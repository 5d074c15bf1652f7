package controller

import (
	"fmt"
	"sync"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// Reasons a task ended that the controller writes into its status, for
// `service ps`.
const (
	reasonRemoved  = "removed"
	reasonLiveness = "liveness probe failed"
)

// observed is what the Runners last reported of each task container: their
// List at start and at each resync, their events, and what Ensure returned.
// It is the only state a controller keeps between passes, and it is
// rebuilt from the Runners after a restart.
type observed struct {
	mu  sync.Mutex
	m   map[string]report
	seq int64
}

type report struct {
	node      string
	status    api.TaskStatus
	seq       int64 // when it was recorded, to tell reports older than a List
	unhealthy bool  // liveness failed: the exit that follows says so
}

func newObserved() *observed { return &observed{m: map[string]report{}} }

// get returns the last report of a task.
func (o *observed) get(taskID string) (api.TaskStatus, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.m[taskID]
	return r.status, ok
}

// forget drops a task whose container was stopped.
func (o *observed) forget(taskID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, taskID)
}

// retain forgets the reports of tasks keep says no: those stopped and
// deleted, whose last events came after they were forgotten.
func (o *observed) retain(keep func(taskID string) bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id := range o.m {
		if !keep(id) {
			delete(o.m, id)
		}
	}
}

// set records st as reported by node: an ended task never comes back to
// life, and a report never replaces one of a later state change.
func (o *observed) set(node string, st api.TaskStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.setLocked(node, st, false)
}

func (o *observed) setLocked(node string, st api.TaskStatus, unhealthy bool) {
	old, ok := o.m[st.TaskID]
	if ok && (old.status.State.Terminal() && !st.State.Terminal() || st.Timestamp.Before(old.status.Timestamp)) {
		return
	}
	if st.State.Terminal() && st.Message == "" {
		st.Message = fmt.Sprintf("exited with status %d", st.ExitCode)
	}
	o.seq++
	o.m[st.TaskID] = report{node: node, status: st, seq: o.seq, unhealthy: unhealthy || old.unhealthy}
}

// event records one event of node's Runner.
func (o *observed) event(node string, ev api.TaskEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := ev.Status
	if st.Timestamp.IsZero() {
		st.Timestamp = ev.Time
	}
	unhealthy := o.m[st.TaskID].unhealthy
	switch ev.Action {
	case api.ActionUnhealthy:
		r, ok := o.m[st.TaskID]
		if ok {
			r.unhealthy = true
			o.m[st.TaskID] = r
			return
		}
		unhealthy = true
		st.State = api.TaskRunning
	case api.ActionExited:
		st.State = api.TaskFailed
		if st.ExitCode == 0 && !unhealthy {
			st.State = api.TaskComplete
		}
		st.Message = fmt.Sprintf("exited with status %d", st.ExitCode)
		if unhealthy {
			st.Message = reasonLiveness
		}
		if st.FinishedAt.IsZero() {
			st.FinishedAt = st.Timestamp
		}
	case api.ActionRemoved:
		if r, ok := o.m[st.TaskID]; ok && r.status.State.Terminal() {
			return // it ended before; its reason stands
		}
		st.State, st.Message = api.TaskFailed, reasonRemoved
		if st.FinishedAt.IsZero() {
			st.FinishedAt = st.Timestamp
		}
	}
	o.setLocked(node, st, unhealthy)
}

// begin returns a mark to pass to listed once a List of node returned.
func (o *observed) begin() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	return o.seq
}

// listed records a List of node begun at mark: its reports, and every task
// of node last seen live before mark and missing from the list as removed.
func (o *observed) listed(node string, mark int64, list []api.TaskStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := make(map[string]bool, len(list))
	for _, st := range list {
		seen[st.TaskID] = true
		o.setLocked(node, st, false)
	}
	for id, r := range o.m {
		if r.node == node && r.seq < mark && !seen[id] && !r.status.State.Terminal() {
			r.status.State, r.status.Message = api.TaskFailed, reasonRemoved
			o.seq++
			r.seq = o.seq
			o.m[id] = r
		}
	}
}
