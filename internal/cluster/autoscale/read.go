package autoscale

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// read takes every reading spec asks for: CPU and memory of svc's
// replicas, then each trigger.
func (w *worker) read(ctx context.Context, now time.Time, spec api.AutoscalerSpec, svc api.Service) []result {
	var rs []result
	if spec.CPUPercent > 0 || spec.MemoryPercent > 0 {
		rs = w.resources(ctx, spec, svc)
	}
	return append(rs, w.triggers(ctx, now, spec)...)
}

// resources reads the CPU and memory utilization of the service's
// replicas (tasks wanted running and not ending) against their
// reservations, or their limits.
func (w *worker) resources(ctx context.Context, spec api.AutoscalerSpec, svc api.Service) []result {
	current := svc.Spec.DesiredReplicas()
	fail := func(err error) []result {
		var rs []result
		if spec.CPUPercent > 0 {
			rs = append(rs, result{MetricStatus: api.MetricStatus{Name: "cpu", Target: percent(float64(spec.CPUPercent)), Desired: current, Error: err.Error()}})
		}
		if spec.MemoryPercent > 0 {
			rs = append(rs, result{MetricStatus: api.MetricStatus{Name: "memory", Target: percent(float64(spec.MemoryPercent)), Desired: current, Error: err.Error()}})
		}
		return rs
	}
	kvs, _, err := w.c.st.List(ctx, api.TaskPrefix(svc.ID))
	if err != nil {
		return fail(err)
	}
	usage := map[string]api.TaskUsage{}
	for _, n := range w.c.nodes {
		u, err := n.TaskUsage(ctx)
		if err != nil {
			return fail(err)
		}
		for id, tu := range u {
			usage[id] = tu
		}
	}
	res := svc.Spec.Template.Resources
	cpuReq := float64(cmp.Or(res.Reservations.NanoCPUs, res.Limits.NanoCPUs)) / 1e9
	memReq := float64(cmp.Or(res.Reservations.MemoryBytes, res.Limits.MemoryBytes))
	var cpu, mem []replica
	next := map[string]api.TaskUsage{}
	for _, kv := range kvs {
		var t api.Task
		if json.Unmarshal(kv.Value, &t) != nil || t.DesiredState != api.TaskRunning || t.Status.State.Terminal() ||
			t.Status.State == api.TaskLeaving || t.Status.State == api.TaskStopping {
			continue
		}
		ready := t.Status.State == api.TaskReady
		u, ok := usage[t.ID]
		c := replica{ready: ready, request: cpuReq}
		if ok {
			next[t.ID] = u
			if p, had := w.cpu[t.ID]; had && u.Time.After(p.Time) && u.CPUTime >= p.CPUTime {
				c.measured, c.usage = true, float64(u.CPUTime-p.CPUTime)/float64(u.Time.Sub(p.Time))
			}
		}
		cpu = append(cpu, c)
		mem = append(mem, replica{ready: ready, measured: ok, usage: float64(u.MemoryBytes), request: memReq})
	}
	w.cpu = next
	var rs []result
	for _, m := range []struct {
		name   string
		target int
		rs     []replica
	}{{"cpu", spec.CPUPercent, cpu}, {"memory", spec.MemoryPercent, mem}} {
		if m.target <= 0 {
			continue
		}
		r := result{MetricStatus: api.MetricStatus{Name: m.name, Target: percent(float64(m.target)), Current: "unknown"}}
		d, util, ok := resourceReplicas(current, m.rs, float64(m.target))
		r.Desired = d
		if ok {
			r.Current = percent(util)
		}
		rs = append(rs, r)
	}
	return rs
}

// triggers asks each trigger; a scaler is made once per trigger and kept
// while the trigger stays the same.
func (w *worker) triggers(ctx context.Context, now time.Time, spec api.AutoscalerSpec) []result {
	var rs []result
	used := map[string]bool{}
	for i, t := range spec.Triggers {
		key := triggerKey(i, t)
		used[key] = true
		r := result{trigger: true, MetricStatus: api.MetricStatus{Name: fmt.Sprintf("%s/%d", t.Type, i), Desired: -1}}
		s, ok := w.scalers[key]
		if !ok {
			var err error
			if s, err = newScaler(t, w.requests); err != nil {
				r.Error = err.Error()
				rs = append(rs, r)
				continue
			}
			w.scalers[key] = s
		}
		rd, err := s.Read(ctx, now)
		if err != nil {
			r.Error = err.Error()
		} else {
			r.Desired, r.Active, r.Current, r.Target = rd.Desired, rd.Active, rd.Current, rd.Target
		}
		rs = append(rs, r)
	}
	for key, s := range w.scalers {
		if !used[key] {
			s.Close()
			delete(w.scalers, key)
		}
	}
	return rs
}

// requests sums the service's requests over the nodes.
func (w *worker) requests(ctx context.Context) (uint64, error) {
	var n uint64
	for _, m := range w.c.nodes {
		c, err := m.ServiceRequests(ctx, w.name)
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

// triggerKey tells triggers apart: by place and content.
func triggerKey(i int, t api.Trigger) string {
	b, _ := json.Marshal(t) // maps encode in key order
	return fmt.Sprintf("%d %s", i, b)
}
