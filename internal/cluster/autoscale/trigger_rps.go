package autoscale

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// requestCounter returns how many requests reached a service so far, on
// every node; a count that goes down started again from 0.
type requestCounter func(ctx context.Context) (uint64, error)

// rpsScaler is the http-rps trigger: requests per second where the
// service's traffic enters (its virtual IP and published ports, counted
// by the nodes' kernels), one replica per Target of them.
type rpsScaler struct {
	count              requestCounter
	target, activation float64
	last               uint64
	at                 time.Time
}

// newRPSScaler checks t's numbers; count may be nil when it is only
// checked.
func newRPSScaler(t api.Trigger, count requestCounter) (*rpsScaler, error) {
	s := &rpsScaler{count: count}
	var err error
	if s.target, err = triggerNumber(t, "target", 0); err != nil {
		return nil, err
	}
	if s.target == 0 {
		return nil, badTrigger(t.Type, "target=0: must be a number above 0")
	}
	if s.activation, err = triggerNumber(t, "activation", 0); err != nil {
		return nil, err
	}
	return s, nil
}

// Read turns the count since the last Read into a rate; the first Read,
// and one after the count started again, ask for nothing.
func (s *rpsScaler) Read(ctx context.Context, now time.Time) (reading, error) {
	n, err := s.count(ctx)
	if err != nil {
		return reading{}, err
	}
	last, at := s.last, s.at
	s.last, s.at = n, now
	r := reading{Desired: -1, Current: "unknown", Target: formatNumber(s.target) + "/s per replica"}
	if at.IsZero() || n < last || !now.After(at) {
		return r, nil
	}
	rate := float64(n-last) / now.Sub(at).Seconds()
	r.Desired, r.Active, r.Current = replicasFor(rate, s.target), rate > s.activation, fmt.Sprintf("%.1f/s", rate)
	return r, nil
}

func (s *rpsScaler) Close() error { return nil }
