package autoscale

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// result is one metric's or trigger's reading, as the status shows it and
// as a decision names it.
type result struct {
	api.MetricStatus
	trigger bool
}

// reason names what r asks for: "cpu 182% of 50% target",
// "redis-list/0 12 items, 5 per replica".
func (r result) reason() string {
	if r.trigger && r.Target == "" {
		return r.Name + " " + r.Current
	}
	if r.trigger {
		return fmt.Sprintf("%s %s, %s", r.Name, r.Current, r.Target)
	}
	return fmt.Sprintf("%s %s of %s target", r.Name, r.Current, r.Target)
}

// memory is what an autoscaler remembers between readings.
type memory struct {
	history    []recommendation // for the stabilization windows
	changes    []change         // for the rate limits
	lastActive time.Time        // a trigger's, for the cooldown
}

// decide returns the replicas the service should have given what its
// metrics and triggers read now, and why; the count is current when
// nothing is to change. It follows the HPA and KEDA:
//   - each reading asks for a count, the largest wins (KEDA's rule);
//     one that failed asks for current, holding the count where it is;
//   - at 0 replicas (MinReplicas 0) an active trigger wakes the service
//     at once, and with no trigger active for Cooldown it goes back to 0;
//   - otherwise the count, between max(MinReplicas, 1) and MaxReplicas,
//     goes through the stabilization windows and the rate limits.
//
// A service scaled to 0 by hand with MinReplicas above 0 is left alone,
// as the HPA leaves it.
func decide(spec api.AutoscalerSpec, now time.Time, current int, rs []result, m *memory) (int, string) {
	want, why := -1, ""
	// A trigger that failed holds the count: it keeps the service from
	// cooling down to zero, but does not wake it from zero.
	active, failed := false, false
	for _, r := range rs {
		d := r.Desired
		if r.Error != "" {
			d = current
		}
		active = active || r.trigger && r.Active
		failed = failed || r.trigger && r.Error != ""
		if d > want {
			want, why = d, r.reason()
		}
	}
	if active || failed {
		m.lastActive = now
	}
	if current == 0 {
		if spec.MinReplicas > 0 || !active {
			return 0, ""
		}
		for _, r := range rs {
			if r.trigger && r.Active {
				why = r.reason()
				break
			}
		}
		return clamp(max(want, 1), 1, spec.MaxReplicas), why
	}
	if spec.MinReplicas == 0 && !active && !failed {
		if idle := now.Sub(m.lastActive); idle >= spec.Cooldown.Std() {
			m.history, m.changes = nil, nil
			return 0, fmt.Sprintf("no trigger active for %s (cooldown %s)", idle.Round(time.Second), spec.Cooldown)
		}
	}
	floor := max(spec.MinReplicas, 1)
	if want < 0 {
		want, why = floor, "no metric asks for more"
	}
	rec := clamp(want, floor, spec.MaxReplicas)
	switch {
	case rec < want:
		why += fmt.Sprintf(" (at most %d)", spec.MaxReplicas)
	case rec > want:
		why += fmt.Sprintf(" (at least %d)", floor)
	}
	out := stabilize(&m.history, now, current, rec, spec.ScaleUpStabilization.Std(), spec.ScaleDownStabilization.Std())
	if limited := rateLimit(&m.changes, now, current, out); limited != out {
		why += fmt.Sprintf(" (%+d at most within %s)", limited-current, ratePeriod)
		out = limited
	}
	out = clamp(out, floor, spec.MaxReplicas)
	if out != current {
		m.changes = append(m.changes, change{now, out - current})
	}
	return out, why
}

func clamp(n, lo, hi int) int { return max(lo, min(n, hi)) }
