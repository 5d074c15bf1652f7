package agent

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// TaskUsage returns what each running task container of the node uses
// now, by task ID: its CPU time so far and its memory (Docker's count:
// usage less inactive file cache), read from its cgroups.
func (a *Agent) TaskUsage(ctx context.Context) (map[string]api.TaskUsage, error) {
	ts, err := a.tasks(ctx)
	if err != nil {
		return nil, fmt.Errorf("task usage: %w", err)
	}
	out := map[string]api.TaskUsage{}
	for _, t := range ts {
		if !t.st.Running() {
			continue
		}
		s, err := a.e.Stats(ctx, t.c.ID)
		if err != nil || !s.Running {
			continue // gone since the list: it has no usage
		}
		out[t.id()] = api.TaskUsage{CPUTime: s.CPUTime, MemoryBytes: int64(s.MemoryUsage), Time: s.Read}
	}
	return out, nil
}

// RecordScale writes a change of a service's replicas to the engine's
// event log, where `berth events` shows it: type service, action scale,
// with the service's name, the counts and the reason.
func (a *Agent) RecordScale(serviceID, name string, d api.ScaleDecision) {
	a.e.EmitService("scale", serviceID, map[string]string{
		"name": name, "replicas.old": fmt.Sprint(d.From), "replicas.new": fmt.Sprint(d.To), "reason": d.Reason,
	})
}

// ServiceRequests returns the requests counted for the service on this
// node (network.ServiceCounts, summed over its networks); 0 without
// networks (WithNetworks).
func (a *Agent) ServiceRequests(ctx context.Context, service string) (uint64, error) {
	if a.o.nets == nil {
		return 0, nil
	}
	counts, err := a.o.nets.ServiceCounts(ctx)
	if err != nil {
		return 0, fmt.Errorf("requests of service %s: %w", service, err)
	}
	var n uint64
	for _, c := range counts {
		if c.Name == service {
			n += c.Requests
		}
	}
	return n, nil
}
