package autoscale

import (
	"testing"
	"time"
)

func ready(usage, request float64) replica {
	return replica{ready: true, measured: true, usage: usage, request: request}
}

func TestResourceReplicas(t *testing.T) {
	unready := replica{request: 1}
	missing := replica{ready: true, request: 1}
	for _, c := range []struct {
		name    string
		current int
		rs      []replica
		target  float64
		want    int
		util    float64
		ok      bool
	}{
		{"double", 2, []replica{ready(1, 1), ready(1, 1)}, 50, 4, 100, true},
		{"within tolerance", 3, []replica{ready(0.52, 1), ready(0.52, 1), ready(0.52, 1)}, 50, 3, 52, true},
		{"just past tolerance", 3, []replica{ready(0.56, 1), ready(0.56, 1), ready(0.56, 1)}, 50, 4, 56, true},
		{"down", 4, []replica{ready(0.1, 1), ready(0.1, 1), ready(0.1, 1), ready(0.1, 1)}, 50, 1, 10, true},
		{"reservation", 1, []replica{ready(0.25, 0.25)}, 50, 2, 100, true},
		// Scaling up, a replica that is not ready counts as using nothing.
		{"unready up", 3, []replica{ready(1, 1), ready(1, 1), unready}, 50, 4, 100, true},
		// Scaling down, a replica not ready is left out.
		{"unready down", 3, []replica{ready(0.1, 1), ready(0.1, 1), unready}, 50, 1, 10, true},
		// Scaling down, one without a reading counts as using all of its
		// request: 40% of 50%, 3 → ceil(0.8 × 3) = 3.
		{"missing down", 3, []replica{ready(0.1, 1), ready(0.1, 1), missing}, 50, 3, 10, true},
		// Scaling up, it counts as using nothing: 200% → 133%, ceil(1.33 × 3) = 4.
		{"missing up", 3, []replica{ready(1, 1), ready(1, 1), missing}, 50, 4, 100, true},
		// Filling in reverses the direction: the count stays.
		{"missing reverses", 2, []replica{ready(0.6, 1), missing}, 50, 2, 60, true},
		{"nothing measured", 2, []replica{missing, unready}, 50, 2, 0, false},
	} {
		got, util, ok := resourceReplicas(c.current, c.rs, c.target)
		if got != c.want || ok != c.ok || (ok && int(util+0.5) != int(c.util)) {
			t.Errorf("%s: %d, %.1f%%, %v; want %d, %.0f%%, %v", c.name, got, util, ok, c.want, c.util, c.ok)
		}
	}
}

func TestStabilize(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var h []recommendation
	up, down := time.Duration(0), 300*time.Second
	if got := stabilize(&h, t0, 5, 5, up, down); got != 5 {
		t.Fatalf("steady: %d", got)
	}
	// A lower recommendation within the down window does not lower it.
	if got := stabilize(&h, t0.Add(10*time.Second), 5, 2, up, down); got != 5 {
		t.Errorf("10s after a recommendation of 5: %d, want 5", got)
	}
	// A higher one raises it at once (no up window).
	if got := stabilize(&h, t0.Add(20*time.Second), 5, 8, up, down); got != 8 {
		t.Errorf("scale up: %d, want 8", got)
	}
	// Once the window left the higher ones behind, it goes down.
	if got := stabilize(&h, t0.Add(321*time.Second), 8, 2, up, down); got != 2 {
		t.Errorf("after the window: %d, want 2", got)
	}
	if len(h) != 1 {
		t.Errorf("history keeps %d recommendations, want 1", len(h))
	}
	// An up window: a spike shorter than it does not scale up.
	h = nil
	up = 30 * time.Second
	stabilize(&h, t0, 2, 2, up, 0)
	if got := stabilize(&h, t0.Add(5*time.Second), 2, 6, up, 0); got != 2 {
		t.Errorf("spike within the up window: %d, want 2", got)
	}
}

func TestRateLimit(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var cs []change
	if got := rateLimit(&cs, t0, 1, 20); got != 5 {
		t.Fatalf("1 → 20: %d, want 5 (4 more)", got)
	}
	cs = append(cs, change{t0, 4})
	if got := rateLimit(&cs, t0.Add(5*time.Second), 5, 20); got != 5 {
		t.Errorf("5s later: %d, want 5", got)
	}
	if got := rateLimit(&cs, t0.Add(16*time.Second), 5, 20); got != 10 {
		t.Errorf("16s later: %d, want 10 (doubled)", got)
	}
	if got := rateLimit(&cs, t0, 10, 1); got != 1 {
		t.Errorf("down: %d, want 1 (100%% may go)", got)
	}
}
