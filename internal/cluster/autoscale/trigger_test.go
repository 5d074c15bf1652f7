package autoscale

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// testTrigger builds an api.Trigger from "key=value" pairs, and checks that
// it passes api.Trigger.Validate as newScaler's callers ensure.
func testTrigger(t *testing.T, typ string, kv ...string) api.Trigger {
	t.Helper()
	tr := api.Trigger{Type: typ, Metadata: map[string]string{}}
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		tr.Metadata[k] = v
	}
	if err := tr.Validate(); err != nil {
		t.Fatalf("test trigger does not validate: %v", err)
	}
	return tr
}

// mustScaler is newScaler that fails the test on error and closes the
// scaler at the end.
func mustScaler(t *testing.T, tr api.Trigger) scaler {
	t.Helper()
	s, err := newScaler(tr, nil)
	if err != nil {
		t.Fatalf("newScaler(%v): %v", tr, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mustRead is s.Read that fails the test on error.
func mustRead(t *testing.T, s scaler, now time.Time) reading {
	t.Helper()
	r, err := s.Read(context.Background(), now)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return r
}

// TestTriggerRPS: the http-rps trigger turns the count of requests into a
// rate between two readings, and takes a count that went down as a new
// start.
func TestTriggerRPS(t *testing.T) {
	var n uint64
	count := func(context.Context) (uint64, error) { return n, nil }
	s, err := newScaler(testTrigger(t, api.TriggerHTTPRPS, "target=10"), count)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	if r := mustRead(t, s, t0); r.Desired != -1 || r.Active {
		t.Errorf("first reading: %+v, want no ask", r)
	}
	n = 50
	if r := mustRead(t, s, t0.Add(time.Second)); r.Desired != 5 || !r.Active || r.Current != "50.0/s" || r.Target != "10/s per replica" {
		t.Errorf("50 requests in 1s: %+v, want 5 replicas, active", r)
	}
	if r := mustRead(t, s, t0.Add(2*time.Second)); r.Desired != 0 || r.Active {
		t.Errorf("no requests: %+v, want 0, inactive", r)
	}
	n = 3
	if r := mustRead(t, s, t0.Add(3*time.Second)); r.Desired != -1 {
		t.Errorf("after the count went down: %+v, want no ask", r)
	}
	if err := checkTrigger(context.Background(), testTrigger(t, api.TriggerHTTPRPS, "target=10")); err != nil {
		t.Errorf("checkTrigger http-rps: %v", err)
	}
	_, err = newScaler(api.Trigger{Type: "kafka"}, nil)
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unknown type: got %v, want ErrInvalidArgument", err)
	}
}

func TestTriggerReplicasFor(t *testing.T) {
	for _, c := range []struct {
		value, target float64
		want          int
	}{
		{0, 5, 0}, {-3, 5, 0}, {1, 5, 1}, {5, 5, 1}, {5.01, 5, 2}, {11, 5, 3},
		{3.5, 0.5, 7}, {1e300, 1, maxDesired},
	} {
		if got := replicasFor(c.value, c.target); got != c.want {
			t.Errorf("replicasFor(%v, %v) = %d, want %d", c.value, c.target, got, c.want)
		}
	}
}

func TestTriggerCheckNoNetwork(t *testing.T) {
	// Cron and metrics-api are checked without I/O: a url where nothing
	// listens passes.
	for _, tr := range []api.Trigger{
		testTrigger(t, api.TriggerCron, "start=0 8 * * *", "end=0 18 * * *", "replicas=2", "timezone=UTC"),
		testTrigger(t, api.TriggerMetricsAPI, "url=http://127.0.0.1:1/metrics", "path=a", "target=1"),
	} {
		if err := checkTrigger(context.Background(), tr); err != nil {
			t.Errorf("checkTrigger(%s): %v", tr.Type, err)
		}
	}
}
