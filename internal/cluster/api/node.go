package api

import "time"

// Node is a machine that runs tasks, as its agent registered it.
type Node struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	// Capacity is what the node offers to tasks' reservations.
	Capacity Resources         `json:"capacity"`
	Labels   map[string]string `json:"labels,omitempty"`
	State    NodeState         `json:"state"`
	// Heartbeat is when the node's agent last reported.
	Heartbeat time.Time `json:"heartbeat"`
	CreatedAt time.Time `json:"createdAt"`
}

// NodeState is whether a node takes tasks.
type NodeState string

// Node states.
const (
	NodeUnknown NodeState = "unknown"
	NodeReady   NodeState = "ready"
	NodeDown    NodeState = "down"
)

// TaskUsage is what one running task uses, read from its cgroups at Time.
type TaskUsage struct {
	// CPUTime is the CPU time it has used since it started, in ns: two
	// readings make a rate.
	CPUTime     uint64    `json:"cpuTime"`
	MemoryBytes int64     `json:"memoryBytes"`
	Time        time.Time `json:"time"`
}

// NodeUsage is what a node's resources are taken by.
type NodeUsage struct {
	NodeID   string    `json:"nodeID"`
	Capacity Resources `json:"capacity"`
	// Reserved is the sum of the reservations of the tasks placed there.
	Reserved Resources `json:"reserved"`
	// Used is what the node's tasks use now (CPU averaged over the last
	// sampling interval).
	Used  Resources `json:"used"`
	Tasks int       `json:"tasks"`
	Time  time.Time `json:"time"`
}
