package autoscale

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// reading is what one trigger says now.
type reading struct {
	// Desired is the replicas this trigger alone asks for; -1 when it asks
	// for none (a schedule outside its window).
	Desired int
	// Active says whether it counts as activity (KEDA's IsActive): it
	// keeps a service at MinReplicas 0 awake and restarts the cooldown.
	Active bool
	// Current is its value in its own unit, for the status ("12 items").
	Current string
	// Target is what one replica should carry ("5 per replica").
	Target string
}

// scaler reads one trigger's source.
type scaler interface {
	// Read asks the source now; now is the autoscaler's clock (tests
	// inject one). An error means the source could not be read and the
	// caller holds the count.
	Read(ctx context.Context, now time.Time) (reading, error)
	// Close releases the scaler's connections; Read must not be called
	// after it.
	Close() error
}

// newScaler returns t's scaler; an http-rps one reads requests (nil when
// it is only checked). It fails, wrapping errdefs.ErrInvalidArgument,
// when t's values make no sense (a cron expression that does not parse, an
// unknown time zone, a url that is not absolute http or https), without
// any network I/O. t has passed api.Trigger.Validate.
func newScaler(t api.Trigger, requests requestCounter) (scaler, error) {
	switch t.Type {
	case api.TriggerCron:
		return newCronScaler(t)
	case api.TriggerRedisList:
		return newRedisScaler(t)
	case api.TriggerMetricsAPI:
		return newMetricsScaler(t)
	case api.TriggerHTTPRPS:
		return newRPSScaler(t, requests)
	}
	return nil, badTrigger(t.Type, "unknown trigger type")
}

// checkTrigger is newScaler plus, for redis-list, a PING that must be
// answered within 2 s; it closes what it opened.
func checkTrigger(ctx context.Context, t api.Trigger) error {
	s, err := newScaler(t, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	if r, ok := s.(*redisScaler); ok {
		return r.ping(ctx)
	}
	return nil
}

// badTrigger returns an ErrInvalidArgument error that names the trigger
// type and says what is wrong.
func badTrigger(typ, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", typ, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// triggerNumber returns t's number key k, or def if it is not set; a value that
// does not parse (which Validate rejects) is an ErrInvalidArgument.
func triggerNumber(t api.Trigger, k string, def float64) (float64, error) {
	v, ok := t.Metadata[k]
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, badTrigger(t.Type, "%s=%s: must be a number, 0 or more", k, v)
	}
	return f, nil
}

// maxDesired caps what a trigger asks for, so that a huge queue does not
// overflow an int; the autoscaler clamps to MaxReplicas anyway.
const maxDesired = 1 << 30

// replicasFor is KEDA's AverageValue target: ceil(value / target) replicas, 0
// for a value of 0 or less.
func replicasFor(value, target float64) int {
	if value <= 0 || target <= 0 {
		return 0
	}
	d := math.Ceil(value / target)
	if d > maxDesired {
		return maxDesired
	}
	return int(d)
}

// formatNumber writes f the shortest way ("5", "0.5").
func formatNumber(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// perReplica is the Target of a trigger with target t.
func perReplica(t float64) string { return formatNumber(t) + " per replica" }
