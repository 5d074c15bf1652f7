package services

import (
	"strings"
	"testing"
)

// TestAutoscaleCLI sets, shows, changes and removes a service's
// autoscaler with `berth service autoscale`: bad input is one line with
// exit status 2 and leaves the autoscaler as it was; `service inspect`
// shows it; `service scale` of an autoscaled service warns. It does not
// wait for the autoscaler to scale.
func TestAutoscaleCLI(t *testing.T) {
	e := newEnv(t)
	e.ok(e.sleeper("web", 2, "--reserve-cpu", "0.1")...)
	e.ok(e.sleeper("plain", 1)...)

	if msg := e.fails(2, "service", "autoscale", "web"); !strings.Contains(msg, "service web has no autoscaler") {
		t.Errorf("show without an autoscaler: %q", msg)
	}
	if msg := e.fails(2, "service", "autoscale", "web", "--cpu-percent", "50"); !strings.Contains(msg, "--max") {
		t.Errorf("create without --max: %q, want it to ask for --max", msg)
	}
	// Polled once an hour: the autoscaler reads the idle replicas once and
	// leaves the manual scaling below alone.
	if out := e.ok("service", "autoscale", "web", "--min", "2", "--max", "10", "--cpu-percent", "50", "--polling-interval", "1h"); out != "web" {
		t.Errorf("set: %q, want web", out)
	}
	show := e.ok("service", "autoscale", "web")
	t.Logf("service autoscale web:\n%s", show)
	for _, want := range []string{"Service:      web (2–10 replicas)", "Targets:      cpu 50%", "polling 1h0m0s, cooldown 5m0s", "Last decisions:"} {
		if !strings.Contains(show, want) {
			t.Errorf("show: %q lacks %q", show, want)
		}
	}
	spec := func() string { return e.ok("service", "autoscale", "-f", "{{json .spec}}", "web") }
	before := spec()

	for _, c := range []struct {
		args []string
		want string // in the message
	}{
		{[]string{"--min", "3", "--max", "2"}, "--min 3 is above --max 2"},
		{[]string{"--min", "11"}, "--min 11 is above --max 10"},
		{[]string{"--min", "-1"}, "--min -1: must be 0 or more"},
		{[]string{"--max", "0"}, "--max 0: must be 1 or more"},
		{[]string{"--min", "x"}, "--min"},
		{[]string{"--cpu-percent", "0"}, "--cpu-percent 0: must be above 0"},
		{[]string{"--cpu-percent", "-5"}, "--cpu-percent -5: must be above 0"},
		{[]string{"--memory-percent", "0"}, "--memory-percent 0: must be above 0"},
		{[]string{"--cooldown=-1s"}, "--cooldown -1s"},
		{[]string{"--polling-interval", "1ms"}, "pollingInterval"},
		{[]string{"--trigger", "kafka,topic=jobs"}, `unknown kind "kafka"`},
		{[]string{"--trigger", "redis-list,address=localhost:6379,list=jobs,target=5,color=red"}, `unknown key "color"`},
		{[]string{"--trigger", "redis-list,address=localhost:6379,target=5"}, "list is missing"},
		{[]string{"--trigger", "cron,start=0 8 * * 1-5,end=0 18 * * 1-5,five"}, `"five" is not KEY=VALUE`},
		{[]string{"--trigger", "metrics-api,url=http://x/,path=a,target=0"}, "target=0"},
		{[]string{"--off", "--max", "3"}, "--off"},
	} {
		args := append([]string{"service", "autoscale", "web"}, c.args...)
		msg := e.fails(2, args...)
		t.Logf("berth %s: %s", strings.Join(args, " "), msg)
		if !strings.Contains(msg, c.want) {
			t.Errorf("berth %s: %q does not say %q", strings.Join(args, " "), msg, c.want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "autoscale", "plain", "--max", "3", "--cpu-percent", "50"}, "--cpu-percent needs a CPU reservation or limit on the service (berth service update --reserve-cpu 0.5 plain)"},
		{[]string{"service", "autoscale", "plain", "--max", "3", "--memory-percent", "50"}, "--memory-percent needs a memory reservation or limit"},
		{[]string{"service", "autoscale", "nope", "--max", "3", "--cpu-percent", "50"}, "nope"},
		{[]string{"service", "autoscale", "nope"}, "nope"},
		{[]string{"service", "autoscale", "nope", "--off"}, "nope"},
		{[]string{"service", "autoscale", "plain", "--off"}, "service plain has no autoscaler"},
	} {
		msg := e.fails(2, c.args...)
		t.Logf("berth %s: %s", strings.Join(c.args, " "), msg)
		if !strings.Contains(msg, c.want) {
			t.Errorf("berth %s: %q does not say %q", strings.Join(c.args, " "), msg, c.want)
		}
	}
	if after := spec(); after != before {
		t.Errorf("bad input changed the autoscaler:\n%s\n%s", before, after)
	}
	if a := e.service("plain").Autoscaler; a != nil {
		t.Errorf("plain got an autoscaler: %+v", a)
	}

	// One flag changes what it names and nothing else.
	e.ok("service", "autoscale", "web", "--max", "6")
	if a := e.service("web").Autoscaler; a == nil || a.Spec.MinReplicas != 2 || a.Spec.MaxReplicas != 6 || a.Spec.CPUPercent != 50 {
		t.Fatalf("after --max 6: %+v, want 2-6 at cpu 50%%", a)
	}
	if got := e.ok("service", "inspect", "-f", "{{.autoscaler.spec.maxReplicas}} {{.autoscaler.spec.cpuPercent}}", "web"); got != "6 50" {
		t.Errorf("service inspect .autoscaler: %q, want 6 50", got)
	}

	// Scaling an autoscaled service scales it, with a warning.
	_, stderr, code := e.run("service", "scale", "-d", "web=3")
	if code != 0 || !strings.Contains(stderr, "web is autoscaled (2–6 replicas)") || strings.Contains(stderr, "\n") {
		t.Errorf("scale of an autoscaled service: exit %d, stderr %q; want 0 and one warning line", code, stderr)
	}
	if got := e.service("web").Spec.DesiredReplicas(); got != 3 {
		t.Errorf("after scale web=3: %d replicas wanted", got)
	}
	_, stderr, code = e.run("service", "update", "-d", "--replicas", "4", "web")
	if code != 0 || !strings.Contains(stderr, "web is autoscaled (2–6 replicas)") || strings.Contains(stderr, "\n") {
		t.Errorf("update --replicas of an autoscaled service: exit %d, stderr %q; want 0 and one warning line", code, stderr)
	}
	if got := e.service("web").Spec.DesiredReplicas(); got != 4 {
		t.Errorf("after update --replicas 4: %d replicas wanted", got)
	}
	if _, stderr, _ := e.run("service", "scale", "-d", "plain=2"); stderr != "" {
		t.Errorf("scale of plain: stderr %q, want none", stderr)
	}

	if out := e.ok("service", "autoscale", "web", "--off"); out != "web" {
		t.Errorf("--off: %q, want web", out)
	}
	if a := e.service("web").Autoscaler; a != nil {
		t.Errorf("after --off: service inspect shows %+v", a)
	}
	if got := e.service("web").Spec.DesiredReplicas(); got != 4 {
		t.Errorf("after --off: %d replicas wanted, want 4 kept", got)
	}
	e.fails(2, "service", "autoscale", "web")
	e.fails(2, "service", "autoscale", "web", "--off")
}
