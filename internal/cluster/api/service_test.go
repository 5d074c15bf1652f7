package api

import (
	"testing"
	"time"
)

func TestNextDelay(t *testing.T) {
	def := RestartPolicy{}
	custom := RestartPolicy{Delay: Duration(time.Second), Backoff: Backoff{Initial: Duration(time.Second), Max: Duration(5 * time.Second)}}
	tests := []struct {
		p        RestartPolicy
		restarts int
		want     time.Duration
	}{
		{def, 0, 0}, // the first replacement is immediate
		{def, 1, 10 * time.Second},
		{def, 2, 20 * time.Second},
		{def, 5, 160 * time.Second},
		{def, 6, 5 * time.Minute},
		{def, 1000, 5 * time.Minute},
		{custom, 0, time.Second},
		{custom, 3, 4 * time.Second},
		{custom, 4, 5 * time.Second},
	}
	for _, tt := range tests {
		if got := tt.p.NextDelay(tt.restarts); got != tt.want {
			t.Errorf("%+v NextDelay(%d) = %s, want %s", tt.p, tt.restarts, got, tt.want)
		}
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		name                   string
		u                      UpdateConfig
		replicas               int
		wantSurge, wantUnavail int
	}{
		{"default stop-first", UpdateConfig{}, 3, 0, 1},
		{"start-first", UpdateConfig{Parallelism: 2, Order: OrderStartFirst}, 3, 2, 0},
		{"stop-first", UpdateConfig{Parallelism: 2, Order: OrderStopFirst}, 3, 0, 2},
		{"surge only", UpdateConfig{MaxSurge: "1"}, 3, 1, 0},
		{"percentages round", UpdateConfig{MaxSurge: "25%", MaxUnavailable: "25%"}, 10, 3, 2},
		{"both zero", UpdateConfig{MaxSurge: "0", MaxUnavailable: "0%"}, 4, 0, 1},
		{"percentages win over parallelism", UpdateConfig{Parallelism: 5, MaxUnavailable: "50%"}, 4, 0, 2},
	}
	for _, tt := range tests {
		s, u := tt.u.Step(tt.replicas)
		if s != tt.wantSurge || u != tt.wantUnavail {
			t.Errorf("%s: Step(%d) = %d, %d; want %d, %d", tt.name, tt.replicas, s, u, tt.wantSurge, tt.wantUnavail)
		}
	}
}

func TestSetDefaults(t *testing.T) {
	var s ServiceSpec
	s.Template.ReadinessProbe = &Probe{HTTPGet: &HTTPGet{Port: 80}}
	s.SetDefaults()
	p := s.Template.ReadinessProbe
	switch {
	case s.DesiredReplicas() != 1, *s.RevisionHistoryLimit != 10:
		t.Errorf("replicas %d, history %d", s.DesiredReplicas(), *s.RevisionHistoryLimit)
	case s.Update.Order != OrderStopFirst, s.Update.FailureAction != FailurePause, s.Update.Parallelism != 1:
		t.Errorf("update %+v", s.Update)
	case s.Restart.Condition != RestartAny, s.Restart.Delay != 0, s.Restart.Backoff.Max.Std() != 5*time.Minute:
		t.Errorf("restart %+v", s.Restart)
	case p.Period.Std() != 10*time.Second, p.Timeout.Std() != time.Second, p.FailureThreshold != 3,
		p.SuccessThreshold != 1, p.HTTPGet.Path != "/", p.HTTPGet.Scheme != SchemeHTTP:
		t.Errorf("probe %+v %+v", p, p.HTTPGet)
	case s.Template.PullPolicy != PullMissing, s.Template.StopGracePeriod.Std() != 10*time.Second:
		t.Errorf("template %+v", s.Template)
	}
	if err := s.Validate(); err == nil {
		t.Errorf("a spec without image validated")
	}
}

func TestTemplateHash(t *testing.T) {
	base := TaskTemplate{Image: "nginx", Env: []string{"A=1"}, Labels: map[string]string{"a": "1", "b": "2"},
		LivenessProbe: &Probe{Exec: []string{"true"}}}
	same := base
	same.StopGracePeriod = Duration(DefaultStopGracePeriod) // spelled-out default
	same.LivenessProbe = &Probe{Exec: []string{"true"}, Period: Duration(10 * time.Second)}
	same.Labels = map[string]string{"b": "2", "a": "1"}
	if base.Hash() != same.Hash() {
		t.Errorf("templates differing only in spelled-out defaults hash differently")
	}
	if base.LivenessProbe.Period != 0 {
		t.Errorf("Hash wrote defaults into its receiver's probe")
	}
	changed := base
	changed.Env = []string{"A=2"}
	if base.Hash() == changed.Hash() {
		t.Errorf("templates with different env hash the same")
	}
}
