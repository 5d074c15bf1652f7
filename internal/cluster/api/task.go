package api

import "time"

// Task is one replica of a service: the template of one revision placed in
// one slot on one node. The controllers create tasks and set their desired
// state; the node's agent runs them and reports their status.
type Task struct {
	ID          string `json:"id"`
	ServiceID   string `json:"serviceID"`
	ServiceName string `json:"serviceName"`
	// Slot numbers the replicas of a service from 1; a replacement takes
	// the slot of the task it replaces.
	Slot     int    `json:"slot"`
	Revision int64  `json:"revision"`
	NodeID   string `json:"nodeID,omitempty"`
	// DesiredState is running while the task is wanted and shutdown once
	// it is not (the agent then drains and stops it).
	DesiredState TaskState    `json:"desiredState"`
	Template     TaskTemplate `json:"template"`
	Status       TaskStatus   `json:"status"`
	CreatedAt    time.Time    `json:"createdAt"`
	UpdatedAt    time.Time    `json:"updatedAt"`
}

// TaskState is where a task is in its life, in this order:
//
//	new → pending → assigned → starting → running ⇄ ready
//	    → leaving → stopping → complete | failed | shutdown
//
// pending waits for a node with room, assigned has one; running has a live
// process and ready passes its readiness probe (or has none). A task that
// is to go is first leaving — out of load balancing and DNS, draining —
// then stopping, with its stop signal sent. rejected means it could not be
// started at all (a missing image, say).
type TaskState string

// Task states.
const (
	TaskNew      TaskState = "new"
	TaskPending  TaskState = "pending"
	TaskAssigned TaskState = "assigned"
	TaskStarting TaskState = "starting"
	TaskRunning  TaskState = "running"
	TaskReady    TaskState = "ready"
	TaskLeaving  TaskState = "leaving"
	TaskStopping TaskState = "stopping"
	TaskComplete TaskState = "complete"
	TaskFailed   TaskState = "failed"
	TaskShutdown TaskState = "shutdown"
	TaskRejected TaskState = "rejected"
)

var taskStates = []TaskState{TaskNew, TaskPending, TaskAssigned, TaskStarting, TaskRunning, TaskReady,
	TaskLeaving, TaskStopping, TaskComplete, TaskFailed, TaskShutdown, TaskRejected}

// Terminal reports whether s is an end: no process runs and none will.
func (s TaskState) Terminal() bool {
	switch s {
	case TaskComplete, TaskFailed, TaskShutdown, TaskRejected:
		return true
	}
	return false
}

// Placed reports whether a task in state s holds its node's resources:
// from assigned until it ended.
func (s TaskState) Placed() bool {
	switch s {
	case TaskAssigned, TaskStarting, TaskRunning, TaskReady, TaskLeaving, TaskStopping:
		return true
	}
	return false
}

// TaskStatus is what a node last saw of a task.
type TaskStatus struct {
	TaskID string    `json:"taskID"`
	State  TaskState `json:"state"`
	// Message says why the task is in State, for `service ps`:
	// "exited with status 1", "no node has 2 CPUs free".
	Message     string `json:"message,omitempty"`
	ExitCode    int    `json:"exitCode,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
	// RestartCount is how many times the task's slot was refilled since
	// its backoff was last reset.
	RestartCount int       `json:"restartCount,omitempty"`
	Timestamp    time.Time `json:"timestamp"` // when State was entered
	StartedAt    time.Time `json:"startedAt,omitzero"`
	FinishedAt   time.Time `json:"finishedAt,omitzero"`
}

// TaskEvent is one change a node saw in a task.
type TaskEvent struct {
	Action TaskAction `json:"action"`
	Status TaskStatus `json:"status"`
	Time   time.Time  `json:"time"`
}

// TaskAction is what happened to a task.
type TaskAction string

// Task actions.
const (
	ActionCreated   TaskAction = "created"
	ActionStarted   TaskAction = "started"
	ActionReady     TaskAction = "ready"
	ActionUnready   TaskAction = "unready"
	ActionUnhealthy TaskAction = "unhealthy" // liveness failed
	ActionLeaving   TaskAction = "leaving"
	ActionStopping  TaskAction = "stopping"
	ActionExited    TaskAction = "exited"
	ActionRemoved   TaskAction = "removed"
)
