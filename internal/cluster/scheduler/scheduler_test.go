package scheduler

import (
	"errors"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

const (
	cpu = int64(1e9)
	mib = int64(1 << 20)
	gib = int64(1 << 30)
)

func node(id string, cpus, mem int64) NodeInfo {
	return NodeInfo{ID: id, Capacity: api.Resources{NanoCPUs: cpus, MemoryBytes: mem}}
}

func task(id, service string, cpus, mem int64) api.Task {
	t := api.Task{ID: id, ServiceID: service}
	t.Template.Resources.Reservations = api.Resources{NanoCPUs: cpus, MemoryBytes: mem}
	return t
}

// where returns the node of each decision, or its error's text.
func where(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Err != nil {
			out = append(out, d.Err.Error())
		} else {
			out = append(out, d.NodeID)
		}
	}
	return out
}

func TestPlace(t *testing.T) {
	busy := node("b", 4*cpu, 8*gib)
	busy.Tasks, busy.ServiceTasks = 5, map[string]int{"other": 5}
	withWeb := node("x", 4*cpu, 8*gib)
	withWeb.Tasks, withWeb.ServiceTasks = 1, map[string]int{"web": 1}
	half := node("h", 4*cpu, 8*gib)
	half.Reserved = api.Resources{NanoCPUs: 2 * cpu, MemoryBytes: 4 * gib}
	full := node("f", 2*cpu, 4*gib)
	full.Reserved = api.Resources{NanoCPUs: 1500 * cpu / 1000, MemoryBytes: 3 * gib}
	tests := []struct {
		name     string
		nodes    []NodeInfo
		tasks    []api.Task
		strategy Strategy
		want     []string
	}{
		{"spread evens out a service", []NodeInfo{node("c", 4*cpu, 8*gib), node("a", 4*cpu, 8*gib), node("b", 4*cpu, 8*gib)},
			[]api.Task{task("1", "web", cpu, 0), task("2", "web", cpu, 0), task("3", "web", cpu, 0), task("4", "web", cpu, 0)},
			"", []string{"a", "b", "c", "a"}},
		{"spread looks at the service before all tasks", []NodeInfo{busy, withWeb},
			[]api.Task{task("1", "web", 0, 0), task("2", "web", 0, 0)}, Spread, []string{"b", "x"}},
		{"spread prefers the emptier node", []NodeInfo{half, node("z", 4*cpu, 8*gib)},
			[]api.Task{task("1", "web", cpu, gib)}, Spread, []string{"z"}},
		{"binpack fills one node first", []NodeInfo{node("a", 2*cpu, 4*gib), node("b", 2*cpu, 4*gib)},
			[]api.Task{task("1", "web", cpu, gib), task("2", "web", cpu, gib), task("3", "web", cpu, gib)},
			Binpack, []string{"a", "a", "b"}},
		{"binpack picks the fullest node that fits", []NodeInfo{node("e", 4*cpu, 8*gib), half, full},
			[]api.Task{task("1", "web", cpu, gib), task("2", "web", cpu/2, 0)}, Binpack, []string{"h", "f"}},
		{"binpack packs tasks without reservations by count", []NodeInfo{node("a", cpu, gib), busy},
			[]api.Task{task("1", "web", 0, 0)}, Binpack, []string{"b"}},
		{"no reservation fits on a node without capacity", []NodeInfo{node("zero", 0, 0)},
			[]api.Task{task("1", "web", 0, 0)}, Spread, []string{"zero"}},
		{"CPU short", []NodeInfo{node("a", cpu, 8*gib), full},
			[]api.Task{task("1", "web", 2*cpu, gib)}, Spread, []string{"no node has 2 CPUs free"}},
		{"one CPU", []NodeInfo{full},
			[]api.Task{task("1", "web", cpu, 0)}, Spread, []string{"no node has 1 CPU free"}},
		{"memory short", []NodeInfo{node("a", 8*cpu, gib)},
			[]api.Task{task("1", "web", cpu, 1536*mib)}, Spread, []string{"no node has 1.5 GiB of memory free"}},
		{"both short", []NodeInfo{full},
			[]api.Task{task("1", "web", cpu/4*3, 512*mib*3)}, Spread, []string{"no node has 0.75 CPUs and 1.5 GiB of memory free"}},
		{"each fits somewhere but not together", []NodeInfo{node("cpu", 4*cpu, gib), node("mem", cpu, 8*gib)},
			[]api.Task{task("1", "web", 2*cpu, 512*mib*4)}, Spread, []string{"no node has 2 CPUs and 2 GiB of memory free"}},
		{"the last replica does not fit", []NodeInfo{node("a", 2*cpu, 8*gib)},
			[]api.Task{task("1", "web", cpu, 0), task("2", "web", cpu, 0), task("3", "web", cpu, 0)},
			Spread, []string{"a", "a", "no node has 1 CPU free"}},
		{"no nodes", nil, []api.Task{task("1", "web", 0, 0)}, Spread, []string{"no node is ready to run tasks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := clone(tt.nodes)
			ds, err := Place(tt.nodes, tt.tasks, tt.strategy)
			if err != nil {
				t.Fatal(err)
			}
			if got := where(ds); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("placed %q, want %q", got, tt.want)
			}
			for i, d := range ds {
				if d.TaskID != tt.tasks[i].ID {
					t.Errorf("decision %d is for task %s, want %s", i, d.TaskID, tt.tasks[i].ID)
				}
				var u *UnschedulableError
				if d.Err != nil && (!errors.Is(d.Err, errdefs.ErrUnavailable) || !errors.As(d.Err, &u)) {
					t.Errorf("unschedulable error %v is not an *UnschedulableError wrapping ErrUnavailable", d.Err)
				}
			}
			if !reflect.DeepEqual(clone(tt.nodes), before) {
				t.Errorf("Place changed its input nodes")
			}
		})
	}
}

func TestPlaceUnknownStrategy(t *testing.T) {
	if _, err := Place(nil, nil, "random"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unknown strategy: %v", err)
	}
}

func TestNodes(t *testing.T) {
	nodes := []api.Node{
		{ID: "n1", State: api.NodeReady, Capacity: api.Resources{NanoCPUs: 4 * cpu, MemoryBytes: 8 * gib}},
		{ID: "n2", State: api.NodeDown, Capacity: api.Resources{NanoCPUs: 4 * cpu}},
	}
	placed := func(id, node string, state api.TaskState) api.Task {
		t := task(id, "web", cpu, gib)
		t.NodeID, t.Status.State = node, state
		return t
	}
	infos := Nodes(nodes, []api.Task{
		placed("1", "n1", api.TaskRunning),
		placed("2", "n1", api.TaskLeaving),   // still holds its share
		placed("3", "n1", api.TaskFailed),    // ended
		placed("4", "", api.TaskPending),     // waiting for room
		placed("5", "n2", api.TaskRunning),   // on a node that is down
		placed("6", "gone", api.TaskRunning), // on a node no longer known
	})
	want := []NodeInfo{{ID: "n1", Capacity: nodes[0].Capacity, Reserved: api.Resources{NanoCPUs: 2 * cpu, MemoryBytes: 2 * gib},
		Tasks: 2, ServiceTasks: map[string]int{"web": 2}}}
	if !reflect.DeepEqual(infos, want) {
		t.Fatalf("Nodes = %+v, want %+v", infos, want)
	}
}
