package autoscale

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

func spec(min, max int) api.AutoscalerSpec {
	s := api.AutoscalerSpec{MinReplicas: min, MaxReplicas: max}
	s.SetDefaults()
	return s
}

func cpuAt(current string, desired int) result {
	return result{MetricStatus: api.MetricStatus{Name: "cpu", Current: current, Target: "50%", Desired: desired}}
}

func trig(name string, desired int, active bool) result {
	return result{trigger: true, MetricStatus: api.MetricStatus{Name: name, Current: "x", Target: "y", Desired: desired, Active: active}}
}

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	failed := trig("redis-list/0", -1, false)
	failed.Error = "dial tcp 127.0.0.1:1: connection refused"
	for _, c := range []struct {
		name    string
		spec    api.AutoscalerSpec
		current int
		rs      []result
		idle    time.Duration // since a trigger was last active
		want    int
		why     string
	}{
		{"cpu up", spec(1, 10), 4, []result{cpuAt("182%", 8)}, 0, 8, "cpu 182% of 50% target"},
		{"capped at max", spec(1, 5), 2, []result{cpuAt("400%", 16)}, 0, 5, "(at most 5)"},
		{"rate limited", spec(1, 50), 2, []result{cpuAt("900%", 36)}, 0, 6, "(+4 at most within 15s)"},
		{"largest wins", spec(1, 10), 2, []result{cpuAt("20%", 1), trig("cron/0", 4, true)}, 0, 4, "cron/0 x, y"},
		{"down stabilized", spec(1, 10), 4, []result{cpuAt("10%", 1)}, 0, 4, ""},
		{"inactive schedule", spec(2, 10), 2, []result{trig("cron/0", -1, false)}, 0, 2, ""},
		{"failure holds", spec(1, 10), 3, []result{cpuAt("10%", 1), failed}, 0, 3, ""},
		{"wakes from zero", spec(0, 10), 0, []result{trig("redis-list/0", 3, true)}, time.Hour, 3, "redis-list/0 x, y"},
		{"stays at zero", spec(0, 10), 0, []result{trig("redis-list/0", 0, false)}, time.Hour, 0, ""},
		{"cools down to zero", spec(0, 10), 2, []result{trig("redis-list/0", 0, false)}, 301 * time.Second, 0, "no trigger active for 5m1s"},
		{"not yet cool", spec(0, 10), 2, []result{trig("redis-list/0", 0, false)}, 200 * time.Second, 2, ""},
		{"failure keeps awake", spec(0, 10), 2, []result{failed}, time.Hour, 2, ""},
		{"failure does not wake", spec(0, 10), 0, []result{failed}, time.Hour, 0, ""},
		{"scaled to zero by hand", spec(1, 10), 0, []result{cpuAt("unknown", 0)}, 0, 0, ""},
		{"below min", spec(3, 10), 1, []result{cpuAt("50%", 1)}, 0, 3, ""},
	} {
		m := &memory{lastActive: t0.Add(-c.idle)}
		// The down window remembers the current count as recommended.
		m.history = []recommendation{{t0.Add(-time.Minute), c.current}}
		got, why := decide(c.spec, t0, c.current, c.rs, m)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: %d (%q), want %d (%q)", c.name, got, why, c.want, c.why)
		}
	}
}

// TestDecideSchedule runs a weekday peak-hour schedule through a day on an
// injected clock: at least 5 replicas from 08:00 to 18:00, the minimum
// otherwise, once the down window (1m here) has passed the last
// recommendation of 5 (17:59:30).
func TestDecideSchedule(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	tr := api.Trigger{Type: api.TriggerCron, Metadata: map[string]string{"start": "0 8 * * 1-5", "end": "0 18 * * 1-5", "replicas": "5", "timezone": "Europe/Paris"}}
	s, err := newScaler(tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sp := spec(1, 10)
	down := api.Duration(time.Minute)
	sp.ScaleDownStabilization = &down
	m := &memory{}
	current := 1
	var log []string
	for at := time.Date(2026, 12, 7, 7, 0, 0, 0, loc); at.Before(time.Date(2026, 12, 7, 20, 0, 0, 0, loc)); at = at.Add(30 * time.Second) {
		rd, err := s.Read(t.Context(), at)
		if err != nil {
			t.Fatal(err)
		}
		r := trig("cron/0", rd.Desired, rd.Active)
		if n, _ := decide(sp, at, current, []result{r}, m); n != current {
			log = append(log, fmt.Sprintf("%s %d→%d", at.Format("15:04:05"), current, n))
			current = n
		}
	}
	if got := strings.Join(log, ", "); got != "08:00:00 1→5, 18:00:30 5→1" {
		t.Errorf("changes on Monday 7 December: %s", got)
	}
}
