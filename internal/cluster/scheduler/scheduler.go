// Package scheduler decides on which node each task runs, by reservations:
// a pure function over small types (what each node offers and has set
// aside, what each task reserves), as Nomad's and Swarm's schedulers see
// the cluster. It never overcommits: a task that fits on no node is not
// placed, with a reason a user reads in `service ps`.
//
// Nothing here assumes one node; today's single machine is the cluster of
// one that Nodes builds from the store's records.
package scheduler

import (
	"fmt"
	"slices"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// NodeInfo is what the scheduler knows of a node.
type NodeInfo struct {
	ID       string
	Capacity api.Resources // what the node offers to reservations
	Reserved api.Resources // what placed tasks have reserved
	Tasks    int           // tasks placed on the node
	// ServiceTasks counts the placed tasks per service ID.
	ServiceTasks map[string]int
}

// Free returns the node's capacity not yet reserved.
func (n NodeInfo) Free() api.Resources { return n.Capacity.Sub(n.Reserved) }

// Strategy is how the scheduler chooses among the nodes a task fits on.
type Strategy string

// Strategies.
const (
	// Spread (the default, as Swarm's) puts a task where its service has
	// the fewest tasks, then where there are the fewest tasks, then where
	// the most resources stay free.
	Spread Strategy = "spread"
	// Binpack puts a task where the least resources stay free (then where
	// the most tasks are), keeping other nodes empty.
	Binpack Strategy = "binpack"
)

// Decision is where one task goes: NodeID, or Err (an
// *UnschedulableError) when it fits nowhere.
type Decision struct {
	TaskID string
	NodeID string
	Err    error
}

// Place decides a node for each task, in order; each placement counts
// against its node for the tasks after it. nodes are the nodes that take
// tasks, with what is already placed on them; tasks are those to place
// (their NodeID is ignored). Only an unknown strategy is an error: tasks
// that fit nowhere get a Decision with Err.
func Place(nodes []NodeInfo, tasks []api.Task, strategy Strategy) ([]Decision, error) {
	better, err := comparer(strategy)
	if err != nil {
		return nil, err
	}
	nodes = clone(nodes)
	decisions := make([]Decision, 0, len(tasks))
	for _, t := range tasks {
		need := t.Template.Resources.Reservations
		best := -1
		for i := range nodes {
			if fits(nodes[i], need) && (best < 0 || better(nodes[i], nodes[best], t.ServiceID, need)) {
				best = i
			}
		}
		if best < 0 {
			decisions = append(decisions, Decision{TaskID: t.ID, Err: unschedulable(nodes, need)})
			continue
		}
		n := &nodes[best]
		n.Reserved = n.Reserved.Add(need)
		n.Tasks++
		n.ServiceTasks[t.ServiceID]++
		decisions = append(decisions, Decision{TaskID: t.ID, NodeID: n.ID})
	}
	return decisions, nil
}

// clone copies nodes and their maps, so that Place leaves its input as it
// was.
func clone(nodes []NodeInfo) []NodeInfo {
	c := slices.Clone(nodes)
	for i := range c {
		m := make(map[string]int, len(c[i].ServiceTasks))
		for k, v := range c[i].ServiceTasks {
			m[k] = v
		}
		c[i].ServiceTasks = m
	}
	return c
}

// fits reports whether need fits in n's free resources; a resource the task
// does not reserve always fits.
func fits(n NodeInfo, need api.Resources) bool {
	free := n.Free()
	return (need.NanoCPUs == 0 || free.NanoCPUs >= need.NanoCPUs) &&
		(need.MemoryBytes == 0 || free.MemoryBytes >= need.MemoryBytes)
}

// comparer returns the strategy's "a is a better home than b" for a task of
// service that reserves need.
func comparer(s Strategy) (func(a, b NodeInfo, service string, need api.Resources) bool, error) {
	switch s {
	case Spread, "":
		return func(a, b NodeInfo, service string, need api.Resources) bool {
			if a.ServiceTasks[service] != b.ServiceTasks[service] {
				return a.ServiceTasks[service] < b.ServiceTasks[service]
			}
			if a.Tasks != b.Tasks {
				return a.Tasks < b.Tasks
			}
			if ua, ub := usage(a, need), usage(b, need); ua != ub {
				return ua < ub
			}
			return a.ID < b.ID
		}, nil
	case Binpack:
		return func(a, b NodeInfo, _ string, need api.Resources) bool {
			if ua, ub := usage(a, need), usage(b, need); ua != ub {
				return ua > ub
			}
			if a.Tasks != b.Tasks {
				return a.Tasks > b.Tasks
			}
			return a.ID < b.ID
		}, nil
	}
	return nil, fmt.Errorf("scheduling strategy %q: must be spread or binpack: %w", s, errdefs.ErrInvalidArgument)
}

// usage returns the share of n's capacity reserved once need is placed
// there: the mean over CPU and memory, of those the node has.
func usage(n NodeInfo, need api.Resources) float64 {
	r := n.Reserved.Add(need)
	var sum float64
	var count int
	if n.Capacity.NanoCPUs > 0 {
		sum += float64(r.NanoCPUs) / float64(n.Capacity.NanoCPUs)
		count++
	}
	if n.Capacity.MemoryBytes > 0 {
		sum += float64(r.MemoryBytes) / float64(n.Capacity.MemoryBytes)
		count++
	}
	if count == 0 {
		return 0
	}
	return sum / float64(count)
}

// Nodes returns the scheduler's view of the ready nodes, with the tasks
// that hold resources on them (those assigned and not yet ended).
func Nodes(nodes []api.Node, tasks []api.Task) []NodeInfo {
	infos := make([]NodeInfo, 0, len(nodes))
	index := map[string]int{}
	for _, n := range nodes {
		if n.State != api.NodeReady {
			continue
		}
		index[n.ID] = len(infos)
		infos = append(infos, NodeInfo{ID: n.ID, Capacity: n.Capacity, ServiceTasks: map[string]int{}})
	}
	for _, t := range tasks {
		i, ok := index[t.NodeID]
		if !ok || !t.Status.State.Placed() {
			continue
		}
		infos[i].Reserved = infos[i].Reserved.Add(t.Template.Resources.Reservations)
		infos[i].Tasks++
		infos[i].ServiceTasks[t.ServiceID]++
	}
	return infos
}
