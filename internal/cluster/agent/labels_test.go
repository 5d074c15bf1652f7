package agent

import (
	"testing"

	"github.com/berth-dev/berth/internal/cluster/api"
)

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		code  int
		oom   bool
		state api.TaskState
		msg   string
	}{
		{0, false, api.TaskComplete, "exited with status 0"},
		{1, false, api.TaskFailed, "exited with status 1"},
		{137, true, api.TaskFailed, "OOM killed (exited with status 137)"},
	} {
		state, msg := exitStatus(tc.code, tc.oom)
		if state != tc.state || msg != tc.msg {
			t.Errorf("exitStatus(%d, %v) = %s %q, want %s %q", tc.code, tc.oom, state, msg, tc.state, tc.msg)
		}
	}
}

func TestLabelsKeepReservationsAndProbes(t *testing.T) {
	live := &api.Probe{Exec: []string{"true"}}
	tk := api.Task{ID: "abc", ServiceID: "sid", ServiceName: "web", Slot: 3, Revision: 7,
		Template: api.TaskTemplate{
			Labels:        map[string]string{"tier": "front", LabelTaskID: "forged"},
			Resources:     api.ResourceRequirements{Reservations: api.Resources{NanoCPUs: 5e8, MemoryBytes: 1 << 20}},
			LivenessProbe: live,
		}}
	l := taskLabels(tk)
	for k, v := range map[string]string{LabelTaskID: "abc", LabelServiceID: "sid", LabelServiceName: "web",
		LabelTaskSlot: "3", LabelRevision: "7", "tier": "front"} {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	if r := reservation(l); r != tk.Template.Resources.Reservations {
		t.Errorf("reservation %+v, want %+v", r, tk.Template.Resources.Reservations)
	}
	p := probesOf(l)
	if p.Liveness == nil || p.Readiness != nil || p.Liveness.Period.Std() != api.DefaultProbePeriod {
		t.Errorf("probes %+v, want the liveness probe with its defaults", p)
	}
	if live.Period != 0 {
		t.Error("the task's own probe took the defaults")
	}
	if ContainerName(tk) != "web.3.abc" {
		t.Errorf("name %q", ContainerName(tk))
	}
}
