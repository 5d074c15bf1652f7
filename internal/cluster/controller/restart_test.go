package controller

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

func TestRestartDecision(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ended := func(state api.TaskState, ran time.Duration, restarts int) *taskKV {
		return &taskKV{Task: api.Task{Slot: 1, Status: api.TaskStatus{State: state, RestartCount: restarts,
			StartedAt: now.Add(-ran), FinishedAt: now}}}
	}
	for _, tt := range []struct {
		name     string
		pol      api.RestartPolicy
		dead     *taskKV
		restarts int
		wait     time.Duration
		ok       bool
	}{
		{"first: at once", api.RestartPolicy{}, ended(api.TaskFailed, time.Second, 0), 0, 0, true},
		{"second: initial backoff", api.RestartPolicy{}, ended(api.TaskFailed, time.Second, 1), 1, 10 * time.Second, true},
		{"doubling", api.RestartPolicy{}, ended(api.TaskFailed, time.Second, 3), 3, 40 * time.Second, true},
		{"capped", api.RestartPolicy{}, ended(api.TaskFailed, time.Second, 20), 20, 5 * time.Minute, true},
		{"reset after good running", api.RestartPolicy{}, ended(api.TaskFailed, 11*time.Minute, 7), 0, 0, true},
		{"delay of the first", api.RestartPolicy{Delay: api.Duration(time.Second)}, ended(api.TaskFailed, time.Second, 0), 0, time.Second, true},
		{"condition none", api.RestartPolicy{Condition: api.RestartNone}, ended(api.TaskFailed, time.Second, 0), 0, 0, false},
		{"on-failure, exit 0", api.RestartPolicy{Condition: api.RestartOnFailure}, ended(api.TaskComplete, time.Second, 0), 0, 0, false},
		{"on-failure, failed", api.RestartPolicy{Condition: api.RestartOnFailure}, ended(api.TaskFailed, time.Second, 0), 0, 0, true},
		{"max attempts reached", api.RestartPolicy{MaxAttempts: 2}, ended(api.TaskFailed, time.Second, 2), 0, 0, false},
		{"max attempts left", api.RestartPolicy{MaxAttempts: 3}, ended(api.TaskFailed, time.Second, 2), 2, 20 * time.Second, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pol := tt.pol
			spec := api.ServiceSpec{Restart: pol}
			spec.SetDefaults()
			p := &pass{now: now, v: &view{spec: spec, tasks: []*taskKV{tt.dead}}}
			restarts, wait, ok := p.restart(1, tt.dead)
			if ok != tt.ok || ok && (restarts != tt.restarts || wait != tt.wait) {
				t.Errorf("restart = %d, %v, %v; want %d, %v, %v", restarts, wait, ok, tt.restarts, tt.wait, tt.ok)
			}
		})
	}
}

func TestMaxAttemptsWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	spec := api.ServiceSpec{Restart: api.RestartPolicy{MaxAttempts: 2, Window: api.Duration(time.Minute)}}
	spec.SetDefaults()
	task := func(age time.Duration, restarts int) *taskKV {
		return &taskKV{Task: api.Task{Slot: 1, CreatedAt: now.Add(-age), Status: api.TaskStatus{State: api.TaskFailed,
			RestartCount: restarts, FinishedAt: now}}}
	}
	old := []*taskKV{task(time.Hour, 1), task(30*time.Minute, 2), task(10*time.Second, 3)}
	p := &pass{now: now, v: &view{spec: spec, tasks: old}}
	if _, _, ok := p.restart(1, old[2]); !ok {
		t.Error("one restart within the window: want another")
	}
	recent := append(old, task(5*time.Second, 4))
	p.v.tasks = recent
	if _, _, ok := p.restart(1, recent[3]); ok {
		t.Error("two restarts within the window: want none")
	}
}
