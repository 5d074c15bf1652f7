package autoscale

import (
	"math"
	"time"
)

// tolerance is the HPA's: a usage ratio within 10 % of 1 changes nothing.
const tolerance = 0.1

// replica is one replica as a resource metric sees it.
type replica struct {
	// ready replicas count; the others (starting, not ready) are left
	// out as the HPA leaves them out.
	ready bool
	// measured replicas have a usage: a CPU rate needs two readings.
	measured bool
	usage    float64 // CPU in cores, memory in bytes
	request  float64 // the reservation, or the limit; same unit
}

// resourceReplicas is the HPA's replica count for one resource metric
// (Kubernetes' replica calculator): the ready, measured replicas' average
// utilization against target (percent of request) scales current. When
// some replicas are unmeasured or not ready, they are assumed to use
// nothing (scaling up) or all of their request (measured and ready ones
// scaling down; unmeasured only), and if that would reverse the direction
// or land within the tolerance, the count stays. It returns the count and
// the measured average utilization in percent; ok is false when no replica
// is ready and measured.
func resourceReplicas(current int, rs []replica, target float64) (desired int, utilization float64, ok bool) {
	var usage, request float64
	var measured, unready, missing int
	for _, r := range rs {
		switch {
		case !r.ready:
			unready++
		case !r.measured:
			missing++
		default:
			measured++
			usage += r.usage
			request += r.request
		}
	}
	if measured == 0 || request <= 0 {
		return current, 0, false
	}
	utilization = usage / request * 100
	ratio := utilization / target
	upWithUnready := unready > 0 && ratio > 1
	if !upWithUnready && missing == 0 {
		if math.Abs(1-ratio) <= tolerance {
			return current, utilization, true
		}
		return int(math.Ceil(ratio * float64(measured))), utilization, true
	}
	// Fill in the replicas without a reading, as the HPA does.
	n := measured
	for _, r := range rs {
		switch {
		case !r.ready && upWithUnready:
			request += r.request
			n++
		case r.ready && !r.measured && ratio != 1:
			if ratio < 1 {
				usage += r.request
			}
			request += r.request
			n++
		}
	}
	newRatio := usage / request * 100 / target
	if math.Abs(1-newRatio) <= tolerance || (ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1) {
		return current, utilization, true
	}
	desired = int(math.Ceil(newRatio * float64(n)))
	if (newRatio < 1 && desired > current) || (newRatio > 1 && desired < current) {
		return current, utilization, true
	}
	return desired, utilization, true
}

// recommendation is a count the metrics asked for at a time.
type recommendation struct {
	at    time.Time
	count int
}

// stabilize is the HPA's stabilization: the count may rise to the lowest
// recommendation of the up window and fall to the highest of the down
// window, never further. It records rec in *history and drops what both
// windows have left behind.
func stabilize(history *[]recommendation, now time.Time, current, rec int, up, down time.Duration) int {
	upRec, downRec := rec, rec
	keep := (*history)[:0]
	for _, h := range *history {
		if age := now.Sub(h.at); age < up {
			upRec = min(upRec, h.count)
		}
		if age := now.Sub(h.at); age < down {
			downRec = max(downRec, h.count)
		}
		if now.Sub(h.at) < max(up, down) {
			keep = append(keep, h)
		}
	}
	*history = append(keep, recommendation{now, rec})
	out := current
	if out < upRec {
		out = upRec
	}
	if out > downRec {
		out = downRec
	}
	return out
}

// ratePeriod and the limits below are the HPA's default scaling policies:
// within any 15 s, up by at most 100 % or 4 replicas (whichever is more),
// and down by at most 100 %.
const (
	ratePeriod      = 15 * time.Second
	rateUpPods      = 4
	rateUpPercent   = 100
	rateDownPercent = 100
)

// change is one change of the replicas, for the rate limits.
type change struct {
	at    time.Time
	delta int
}

// rateLimit bounds a move from current to want by what the changes of the
// last ratePeriod leave, and drops older changes.
func rateLimit(changes *[]change, now time.Time, current, want int) int {
	added, removed := 0, 0
	keep := (*changes)[:0]
	for _, c := range *changes {
		if now.Sub(c.at) >= ratePeriod {
			continue
		}
		keep = append(keep, c)
		if c.delta > 0 {
			added += c.delta
		} else {
			removed -= c.delta
		}
	}
	*changes = keep
	switch {
	case want > current:
		start := current - added
		limit := max(start+rateUpPods, start+start*rateUpPercent/100)
		return min(want, max(limit, current))
	case want < current:
		start := current + removed
		limit := start - start*rateDownPercent/100
		return max(want, min(limit, current))
	}
	return want
}
