package controller

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
)

// view is one service as a pass read it from the store, with the
// ModRevision of each key so that every write is a compare-and-swap.
type view struct {
	name   string
	svc    api.Service     // as read, and as written back
	spec   api.ServiceSpec // svc.Spec with its defaults
	svcRev int64
	revs   []revisionKV // by number
	tasks  []*taskKV    // this service's
	others []api.Task   // every other service's, for the scheduler
	nodes  []api.Node
}

type taskKV struct {
	api.Task
	rev int64 // 0 until written
}

type revisionKV struct {
	api.Revision
	rev int64
}

// load reads service name and what belongs to it; the service missing is
// an error wrapping errdefs.ErrNotFound.
func (c *Controller) load(ctx context.Context, name string) (*view, error) {
	kv, err := c.st.Get(ctx, api.ServiceKey(name))
	if err != nil {
		return nil, err
	}
	v := &view{name: name, svcRev: kv.ModRevision}
	if err := json.Unmarshal(kv.Value, &v.svc); err != nil {
		return nil, fmt.Errorf("service %q: %w", name, err)
	}
	b, _ := json.Marshal(v.svc.Spec) // a deep copy: SetDefaults writes through the probes
	if err := json.Unmarshal(b, &v.spec); err != nil {
		return nil, fmt.Errorf("service %q: %w", name, err)
	}
	v.spec.SetDefaults()
	kvs, _, err := c.st.List(ctx, api.RevisionPrefix(v.svc.ID))
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		var r api.Revision
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		v.revs = append(v.revs, revisionKV{r, kv.ModRevision})
	}
	tasks, err := c.listTasks(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		if t.ServiceID == v.svc.ID {
			v.tasks = append(v.tasks, t)
			c.remember(t.Task)
		} else {
			v.others = append(v.others, t.Task)
		}
	}
	v.nodes, err = c.listNodes(ctx)
	return v, err
}

func (c *Controller) listTasks(ctx context.Context) ([]*taskKV, error) {
	kvs, _, err := c.st.List(ctx, api.TasksPrefix)
	if err != nil {
		return nil, err
	}
	tasks := make([]*taskKV, 0, len(kvs))
	for _, kv := range kvs {
		t := &taskKV{rev: kv.ModRevision}
		if err := json.Unmarshal(kv.Value, &t.Task); err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		tasks = append(tasks, t)
	}
	return tasks, nil
}

func (c *Controller) listNodes(ctx context.Context) ([]api.Node, error) {
	kvs, _, err := c.st.List(ctx, api.NodesPrefix)
	if err != nil {
		return nil, err
	}
	nodes := make([]api.Node, 0, len(kvs))
	for _, kv := range kvs {
		var n api.Node
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// commit writes tasks (new ones with rev 0) and the service as v holds it,
// all or nothing, on the condition that none of them changed since read:
// the service's key is the lock that keeps two controllers from deciding
// at once. extra ops ride along.
func (c *Controller) commit(ctx context.Context, v *view, tasks []*taskKV, extra ...store.Op) error {
	now := c.now()
	ops := make([]store.Op, 0, len(tasks)+len(extra)+1)
	for _, t := range tasks {
		t.UpdatedAt = now
		b, err := json.Marshal(t.Task)
		if err != nil {
			return err
		}
		ops = append(ops, store.OpPut(api.TaskKey(t.ServiceID, t.ID), b, t.rev))
	}
	b, err := json.Marshal(v.svc)
	if err != nil {
		return err
	}
	ops = append(ops, extra...)
	ops = append(ops, store.OpPut(api.ServiceKey(v.name), b, v.svcRev))
	rev, err := c.st.Txn(ctx, ops...)
	if err != nil {
		return err
	}
	v.svcRev = rev
	for _, t := range tasks {
		if t.rev == 0 {
			v.tasks = append(v.tasks, t)
			c.remember(t.Task)
		}
		t.rev = rev
	}
	return nil
}

// putTask writes what was observed of one task (no decision), on the
// condition that it did not change since read.
func (c *Controller) putTask(ctx context.Context, t *taskKV) error {
	t.UpdatedAt = c.now()
	b, err := json.Marshal(t.Task)
	if err != nil {
		return err
	}
	rev, err := c.st.Put(ctx, api.TaskKey(t.ServiceID, t.ID), b, t.rev)
	if err != nil {
		return err
	}
	t.rev = rev
	return nil
}

// newTaskID returns a random 25-character lowercase alphanumeric ID.
func newTaskID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 25)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// revision returns the revision numbered n.
func (v *view) revision(n int64) (revisionKV, bool) {
	i := slices.IndexFunc(v.revs, func(r revisionKV) bool { return r.Number == n })
	if i < 0 {
		return revisionKV{}, false
	}
	return v.revs[i], true
}

// active returns the tasks wanted running that have not ended.
func (v *view) active() []*taskKV {
	var out []*taskKV
	for _, t := range v.tasks {
		if t.DesiredState == api.TaskRunning && !t.Status.State.Terminal() {
			out = append(out, t)
		}
	}
	return out
}
