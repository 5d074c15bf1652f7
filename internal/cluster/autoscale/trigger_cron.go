package autoscale

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// cronScaler is KEDA's cron scaler: Replicas inside the window that opens
// at each Start and closes at the next End, nothing outside it.
type cronScaler struct {
	start, end cron.Schedule
	loc        *time.Location
	replicas   int
}

// newCronScaler parses t's start and end (five fields or a descriptor such
// as @daily), replicas and timezone (default the machine's zone).
func newCronScaler(t api.Trigger) (*cronScaler, error) {
	loc := time.Local
	if tz, ok := t.Metadata["timezone"]; ok {
		l, err := time.LoadLocation(tz)
		if err != nil || tz == "" {
			return nil, badTrigger(t.Type, "timezone %q: unknown time zone; use an IANA name such as Europe/Paris", tz)
		}
		loc = l
	}
	s := &cronScaler{loc: loc}
	for _, k := range []struct {
		key   string
		sched *cron.Schedule
	}{{"start", &s.start}, {"end", &s.end}} {
		expr := strings.TrimSpace(t.Metadata[k.key])
		if strings.HasPrefix(expr, "@every") {
			return nil, badTrigger(t.Type, "%s %q: @every has no fixed time; use five fields (minute hour day month weekday) or @daily, @weekly…", k.key, expr)
		}
		sched, err := cron.ParseStandard(expr)
		if err != nil {
			return nil, badTrigger(t.Type, "%s %q: %v", k.key, expr, err)
		}
		if sched.Next(time.Now().In(loc)).IsZero() {
			return nil, badTrigger(t.Type, "%s %q: never happens", k.key, expr)
		}
		*k.sched = sched
	}
	if strings.TrimSpace(t.Metadata["start"]) == strings.TrimSpace(t.Metadata["end"]) {
		return nil, badTrigger(t.Type, "start and end are both %q: the window would be empty", t.Metadata["start"])
	}
	n, err := strconv.Atoi(t.Metadata["replicas"])
	if err != nil || n < 0 {
		return nil, badTrigger(t.Type, "replicas=%s: must be a whole number, 0 or more", t.Metadata["replicas"])
	}
	s.replicas = n
	return s, nil
}

// Read says whether now is inside the window: it is when the window's
// next end comes before its next start.
func (s *cronScaler) Read(_ context.Context, now time.Time) (reading, error) {
	now = now.In(s.loc)
	start, end := s.start.Next(now), s.end.Next(now)
	r := reading{Target: strconv.Itoa(s.replicas) + " replicas"}
	switch {
	case start.IsZero() || end.IsZero():
		r.Desired, r.Current = -1, "outside window: the schedule no longer fires"
	case end.Before(start):
		r.Desired, r.Active = s.replicas, true
		r.Current = "in window until " + cronWhen(now, end) + s.zone()
	default:
		r.Desired = -1
		r.Current = "outside window, next at " + cronWhen(now, start) + s.zone()
	}
	return r, nil
}

// zone names the scaler's time zone for the status, after a space.
func (s *cronScaler) zone() string {
	if s.loc == time.Local {
		return ""
	}
	return " " + s.loc.String()
}

// cronWhen writes t as briefly as it can be told from now: "18:00" the same
// day, "Mon 08:00" within a week, "Jan 2 08:00" beyond.
func cronWhen(now, t time.Time) string {
	switch {
	case t.YearDay() == now.YearDay() && t.Year() == now.Year():
		return t.Format("15:04")
	case t.Sub(now) < 6*24*time.Hour:
		return t.Format("Mon 15:04")
	}
	return t.Format("Jan 2 15:04")
}

// Close does nothing: a schedule holds nothing open.
func (s *cronScaler) Close() error { return nil }
