package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// update writes a new image into a service's template.
func (e *env) update(name, image string) {
	e.change(name, func(s *api.Service) { s.Spec.Template.Image = image })
}

// updateState waits for the service's Update to be state.
func (e *env) updateState(name string, state api.UpdateState) api.Service {
	e.t.Helper()
	var s api.Service
	eventually(e.t, "update "+string(state), func() (bool, string) {
		s, _ = e.service(name)
		return s.Status.Update == state, fmt.Sprintf("%s (%s)", s.Status.Update, s.Status.Message)
	})
	return s
}

func TestRollingUpdate(t *testing.T) {
	for _, tt := range []struct {
		name              string
		cfg               api.UpdateConfig
		surge, unavailble int
	}{
		{"stop-first", api.UpdateConfig{}, 0, 1},
		{"stop-first parallelism 2", api.UpdateConfig{Parallelism: 2}, 0, 2},
		{"start-first", api.UpdateConfig{Order: api.OrderStartFirst}, 1, 0},
		{"start-first parallelism 2 with delay", api.UpdateConfig{Order: api.OrderStartFirst, Parallelism: 2, Delay: api.Duration(50 * time.Millisecond)}, 2, 0},
		{"max surge and unavailable", api.UpdateConfig{MaxSurge: "25%", MaxUnavailable: "1"}, 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const replicas = 4
			e := newEnv(t)
			e.start()
			e.create("web", replicas, "nginx:1", func(s *api.ServiceSpec) {
				s.Update = tt.cfg
				s.MinReady = api.Duration(30 * time.Millisecond)
			})
			eventually(t, "first revision", e.converged("web", replicas, "nginx:1"))
			e.run.record("web", replicas)
			e.update("web", "nginx:2")
			s := e.updateState("web", api.UpdateCompleted)
			eventually(t, "second revision", e.converged("web", replicas, "nginx:2"))
			maxLive, minReady := e.run.counts("web")
			if maxLive > replicas+tt.surge || minReady < replicas-tt.unavailble {
				t.Errorf("during the rollout: up to %d running, down to %d ready; bounds %d and %d",
					maxLive, minReady, replicas+tt.surge, replicas-tt.unavailble)
			}
			if s.Status.Revision != 2 || s.Status.UpdateEnd.Before(s.Status.UpdateStart) {
				t.Errorf("status %+v", s.Status)
			}
		})
	}
}

func TestUnchangedTemplateRollsNothing(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.create("web", 2, "nginx:1", nil)
	eventually(t, "converged", e.converged("web", 2, "nginx:1"))
	before := e.run.ensured
	// The same template written differently (a default made explicit)
	// and a label of the service's own.
	e.change("web", func(s *api.Service) {
		s.Spec.Template.PullPolicy = api.PullMissing
		s.Labels = map[string]string{"team": "a"}
	})
	eventually(t, "generation observed", e.converged("web", 2, "nginx:1"))
	s, _ := e.service("web")
	if s.Status.Revision != 1 || s.Status.Update != "" || e.run.ensured != before {
		t.Errorf("an unchanged template rolled: status %+v, %d containers started", s.Status, e.run.ensured-before)
	}
}

func TestBrokenRevision(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cfg    api.UpdateConfig
		image  string // the broken one
		unavl  int
		action api.FailureAction
	}{
		{"never ready, rollback, start-first", api.UpdateConfig{Order: api.OrderStartFirst}, "never-ready", 0, api.FailureRollback},
		{"never ready, rollback, stop-first", api.UpdateConfig{}, "never-ready", 1, api.FailureRollback},
		{"missing image, rollback", api.UpdateConfig{Order: api.OrderStartFirst}, "missing", 0, api.FailureRollback},
		{"never ready, pause", api.UpdateConfig{Parallelism: 2}, "never-ready", 2, api.FailurePause},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const replicas = 3
			e := newEnv(t)
			e.run.neverReady["never-ready"] = true
			e.start()
			e.create("web", replicas, "nginx:1", func(s *api.ServiceSpec) {
				s.Update = tt.cfg
				s.Update.FailureAction = tt.action
				s.ProgressDeadline = api.Duration(300 * time.Millisecond)
			})
			eventually(t, "first revision", e.converged("web", replicas, "nginx:1"))
			e.run.record("web", replicas)
			e.update("web", tt.image)
			if tt.action == api.FailurePause {
				s := e.updateState("web", api.UpdatePaused)
				if !strings.Contains(s.Status.Message, "progress deadline") {
					t.Errorf("message %q", s.Status.Message)
				}
				time.Sleep(300 * time.Millisecond) // a paused rollout goes no further
				n := 0
				for _, tk := range e.wanted("web") {
					if tk.Template.Image == "nginx:1" && tk.Status.State == api.TaskReady {
						n++
					}
				}
				if n != replicas-tt.unavl {
					t.Errorf("%d old replicas serve, want %d", n, replicas-tt.unavl)
				}
				// A new update resumes.
				e.update("web", "nginx:3")
				e.updateState("web", api.UpdateCompleted)
				eventually(t, "fixed revision", e.converged("web", replicas, "nginx:3"))
			} else {
				s := e.updateState("web", api.UpdateRollbackCompleted)
				eventually(t, "back on the first template", e.converged("web", replicas, "nginx:1"))
				if !strings.Contains(s.Status.Message, "rollback completed: update to revision 2 failed: ") || s.Spec.Template.Image != "nginx:1" {
					t.Errorf("status %+v, template %s", s.Status, s.Spec.Template.Image)
				}
			}
			if _, minReady := e.run.counts("web"); minReady < replicas-tt.unavl {
				t.Errorf("ready replicas dropped to %d, bound %d", minReady, replicas-tt.unavl)
			}
		})
	}
}

// A rollout (or rollback) that paused at its progress deadline, and whose
// last new replica becomes ready after that, is complete: it says so.
func TestPausedRolloutCompletes(t *testing.T) {
	for _, tt := range []struct {
		action       api.FailureAction
		slow         string // the image whose replica is ready late
		paused, done api.UpdateState
	}{
		{api.FailurePause, "slow", api.UpdatePaused, api.UpdateCompleted},
		{api.FailureRollback, "nginx:1", api.UpdateRollbackPaused, api.UpdateRollbackCompleted},
	} {
		t.Run(string(tt.action), func(t *testing.T) {
			e := newEnv(t)
			e.run.neverReady["slow"] = true
			e.start()
			e.create("web", 1, "nginx:1", func(s *api.ServiceSpec) {
				s.Update.FailureAction = tt.action
				s.ProgressDeadline = api.Duration(100 * time.Millisecond)
			})
			eventually(t, "first revision", e.converged("web", 1, "nginx:1"))
			e.run.mu.Lock()
			e.run.neverReady["nginx:1"] = true // from now on: the rollback's replica too
			e.run.mu.Unlock()
			e.update("web", "slow")
			e.updateState("web", tt.paused)
			for _, tk := range e.wanted("web") {
				if tk.Template.Image == tt.slow {
					e.run.setReady(tk.ID, true)
				}
			}
			e.updateState("web", tt.done)
			eventually(t, "converged", e.converged("web", 1, tt.slow))
		})
	}
}

func TestManualRollback(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.create("web", 2, "nginx:1", nil)
	eventually(t, "v1", e.converged("web", 2, "nginx:1"))
	e.update("web", "nginx:2")
	e.updateState("web", api.UpdateCompleted)
	eventually(t, "v2", e.converged("web", 2, "nginx:2"))
	e.rollback("web")
	s := e.updateState("web", api.UpdateRollbackCompleted)
	eventually(t, "back to v1", e.converged("web", 2, "nginx:1"))
	if s.Status.Revision != 3 {
		t.Errorf("rollback went to revision %d, want 3 (a copy of 1)", s.Status.Revision)
	}
}

func TestRevisionHistory(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.create("web", 1, "nginx:0", func(s *api.ServiceSpec) { limit := 2; s.RevisionHistoryLimit = &limit })
	eventually(t, "nginx:0", e.converged("web", 1, "nginx:0")) // revision 1
	for i := 1; i <= 5; i++ {
		image := fmt.Sprintf("nginx:%d", i)
		e.update("web", image)
		eventually(t, image, e.converged("web", 1, image))
	}
	eventually(t, "old revisions deleted", func() (bool, string) {
		var numbers []string
		kvs, _, _ := e.st.List(t.Context(), api.RevisionPrefix("id-web"))
		for _, kv := range kvs {
			numbers = append(numbers, strings.TrimPrefix(kv.Key, api.RevisionPrefix("id-web")))
		}
		s, _ := e.service("web")
		return len(numbers) == 3 && strings.HasSuffix(numbers[0], "4"), fmt.Sprintf("%s; status %+v, generation %d", strings.Join(numbers, " "), s.Status, s.Generation)
	})
}
