package autoscale

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

func TestCronWindow(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	// 2024-06-03 is a Monday; Paris is UTC+2 then.
	at := func(day, h, m, s int) time.Time { return time.Date(2024, 6, day, h, m, s, 0, paris) }
	office := testTrigger(t, api.TriggerCron, "start=0 8 * * 1-5", "end=0 18 * * 1-5", "replicas=4", "timezone=Europe/Paris")
	night := testTrigger(t, api.TriggerCron, "start=0 22 * * *", "end=0 6 * * *", "replicas=2", "timezone=Europe/Paris")
	daily := testTrigger(t, api.TriggerCron, "start=@daily", "end=0 1 * * *", "replicas=1", "timezone=Europe/Paris")
	for _, c := range []struct {
		name    string
		tr      api.Trigger
		now     time.Time
		in      bool
		current string
	}{
		{"monday 10:00", office, at(3, 10, 0, 0), true, "in window until 18:00 Europe/Paris"},
		{"monday 19:00", office, at(3, 19, 0, 0), false, "outside window, next at Tue 08:00 Europe/Paris"},
		{"exactly 08:00", office, at(3, 8, 0, 0), true, "in window until 18:00 Europe/Paris"},
		{"just before 08:00", office, at(3, 7, 59, 59), false, "outside window, next at 08:00 Europe/Paris"},
		{"exactly 18:00", office, at(3, 18, 0, 0), false, "outside window, next at Tue 08:00 Europe/Paris"},
		{"just before 18:00", office, at(3, 17, 59, 59), true, "in window until 18:00 Europe/Paris"},
		{"friday 19:00", office, at(7, 19, 0, 0), false, "outside window, next at Mon 08:00 Europe/Paris"},
		{"saturday 10:00", office, at(8, 10, 0, 0), false, "outside window, next at Mon 08:00 Europe/Paris"},
		{"sunday 23:59", office, at(9, 23, 59, 0), false, "outside window, next at Mon 08:00 Europe/Paris"},
		// now in another zone is read in the trigger's: 07:30 UTC is 09:30 in Paris.
		{"utc clock", office, time.Date(2024, 6, 3, 7, 30, 0, 0, time.UTC), true, "in window until 18:00 Europe/Paris"},
		{"night 23:00", night, at(3, 23, 0, 0), true, "in window until Tue 06:00 Europe/Paris"},
		{"night 03:00", night, at(4, 3, 0, 0), true, "in window until 06:00 Europe/Paris"},
		{"night exactly 22:00", night, at(3, 22, 0, 0), true, "in window until Tue 06:00 Europe/Paris"},
		{"night exactly 06:00", night, at(4, 6, 0, 0), false, "outside window, next at 22:00 Europe/Paris"},
		{"night noon", night, at(4, 12, 0, 0), false, "outside window, next at 22:00 Europe/Paris"},
		{"@daily 00:30", daily, at(4, 0, 30, 0), true, "in window until 01:00 Europe/Paris"},
		{"@daily 02:00", daily, at(4, 2, 0, 0), false, "outside window, next at Wed 00:00 Europe/Paris"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := mustScaler(t, c.tr)
			r := mustRead(t, s, c.now)
			want := reading{Desired: -1, Current: c.current, Target: c.tr.Metadata["replicas"] + " replicas"}
			if c.in {
				want.Desired, want.Active = s.(*cronScaler).replicas, true
			}
			if r != want {
				t.Errorf("Read(%s) = %+v, want %+v", c.now, r, want)
			}
		})
	}
}

func TestCronDefaultZone(t *testing.T) {
	s := mustScaler(t, testTrigger(t, api.TriggerCron, "start=0 8 * * *", "end=0 18 * * *", "replicas=3"))
	if r := mustRead(t, s, time.Date(2024, 6, 3, 12, 0, 0, 0, time.Local)); r.Desired != 3 || !r.Active || r.Current != "in window until 18:00" {
		t.Errorf("noon local: %+v", r)
	}
	if r := mustRead(t, s, time.Date(2024, 6, 3, 20, 0, 0, 0, time.Local)); r.Desired != -1 || r.Active {
		t.Errorf("20:00 local: %+v", r)
	}
}

func TestCronInvalid(t *testing.T) {
	for _, c := range []struct {
		kv   []string
		want string
	}{
		{[]string{"start=61 * * * *", "end=0 18 * * *"}, `cron: start "61 * * * *": `},
		{[]string{"start=0 8 * * *", "end=soon"}, `cron: end "soon": `},
		{[]string{"start=0 8 * *", "end=0 18 * * *"}, `cron: start "0 8 * *": `},
		{[]string{"start=0 0 8 * * *", "end=0 18 * * *"}, `cron: start "0 0 8 * * *": `},
		{[]string{"start=@every 1h", "end=0 18 * * *"}, `cron: start "@every 1h": @every has no fixed time`},
		{[]string{"start=0 0 30 2 *", "end=0 18 * * *"}, `cron: start "0 0 30 2 *": never happens`},
		{[]string{"start=0 8 * * *", "end=0 8 * * *"}, `cron: start and end are both "0 8 * * *"`},
		{[]string{"start=0 8 * * *", "end=0 18 * * *", "timezone=Mars/Olympus_Mons"}, `cron: timezone "Mars/Olympus_Mons": unknown time zone`},
	} {
		tr := testTrigger(t, api.TriggerCron, append([]string{"replicas=2"}, c.kv...)...)
		start := time.Now()
		_, err := newScaler(tr, nil)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("newScaler(%v) = %v, want ErrInvalidArgument starting %q", c.kv, err, c.want)
		}
		if err := checkTrigger(t.Context(), tr); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("checkTrigger(%v) = %v, want ErrInvalidArgument", c.kv, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%v: took %s", c.kv, d)
		}
	}
}
