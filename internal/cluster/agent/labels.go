package agent

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// Labels of a task's container. LabelTaskID marks a container as a task's;
// the reservation labels let Usage add up reservations after a restart.
const (
	LabelServiceName   = "berth.service.name"
	LabelServiceID     = "berth.service.id"
	LabelTaskID        = "berth.task.id"
	LabelTaskSlot      = "berth.task.slot"
	LabelRevision      = "berth.revision"
	LabelReserveCPU    = "berth.task.reserve.nanocpus"
	LabelReserveMemory = "berth.task.reserve.memory"
	// LabelProbes holds the template's probes (JSON), so that an agent
	// that adopts the container probes it as the one that started it.
	LabelProbes = "berth.task.probes"
)

// probes are a template's probes, as LabelProbes keeps them.
type probes struct {
	Startup   *api.Probe `json:"startup,omitempty"`
	Liveness  *api.Probe `json:"liveness,omitempty"`
	Readiness *api.Probe `json:"readiness,omitempty"`
}

func (p probes) none() bool { return p.Startup == nil && p.Liveness == nil && p.Readiness == nil }

// probesOf reads LabelProbes; a missing or unreadable label is no probes.
func probesOf(labels map[string]string) probes {
	var p probes
	if s := labels[LabelProbes]; s != "" {
		json.Unmarshal([]byte(s), &p)
	}
	return p
}

// ContainerName is the name of a task's container: SERVICE.SLOT.TASKID,
// as Swarm names its tasks' containers.
func ContainerName(t api.Task) string {
	return fmt.Sprintf("%s.%d.%s", t.ServiceName, t.Slot, t.ID)
}

// taskLabels returns the container labels of t: the template's, then the
// agent's own, which win.
func taskLabels(t api.Task) map[string]string {
	l := make(map[string]string, len(t.Template.Labels)+8)
	for k, v := range t.Template.Labels {
		l[k] = v
	}
	l[LabelServiceName] = t.ServiceName
	l[LabelServiceID] = t.ServiceID
	l[LabelTaskID] = t.ID
	l[LabelTaskSlot] = strconv.Itoa(t.Slot)
	l[LabelRevision] = strconv.FormatInt(t.Revision, 10)
	r := t.Template.Resources.Reservations
	if r.NanoCPUs != 0 {
		l[LabelReserveCPU] = strconv.FormatInt(r.NanoCPUs, 10)
	}
	if r.MemoryBytes != 0 {
		l[LabelReserveMemory] = strconv.FormatInt(r.MemoryBytes, 10)
	}
	tpl := withDefaults(t.Template)
	if p := (probes{tpl.StartupProbe, tpl.LivenessProbe, tpl.ReadinessProbe}); !p.none() {
		b, _ := json.Marshal(p)
		l[LabelProbes] = string(b)
	}
	return l
}

// reservation reads back what taskLabels stored.
func reservation(labels map[string]string) api.Resources {
	cpu, _ := strconv.ParseInt(labels[LabelReserveCPU], 10, 64)
	mem, _ := strconv.ParseInt(labels[LabelReserveMemory], 10, 64)
	return api.Resources{NanoCPUs: cpu, MemoryBytes: mem}
}

// exitStatus is the state and message of a task whose process ended.
func exitStatus(code int, oom bool) (api.TaskState, string) {
	switch {
	case oom:
		return api.TaskFailed, fmt.Sprintf("OOM killed (exited with status %d)", code)
	case code == 0:
		return api.TaskComplete, "exited with status 0"
	}
	return api.TaskFailed, fmt.Sprintf("exited with status %d", code)
}

// withDefaults returns tpl with its defaults, leaving the probes tpl
// points to as they were.
func withDefaults(tpl api.TaskTemplate) api.TaskTemplate {
	for _, p := range []**api.Probe{&tpl.StartupProbe, &tpl.LivenessProbe, &tpl.ReadinessProbe} {
		if *p != nil {
			c := **p
			*p = &c
		}
	}
	tpl.SetDefaults()
	return tpl
}
