package cli

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
)

// specFrom parses args as `service create` flags into a service.
func specFrom(t *testing.T, base api.Service, args ...string) (api.Service, error) {
	t.Helper()
	var s serviceFlags
	cmd := &cobra.Command{Use: "x"}
	s.register(cmd.Flags())
	if err := cmd.Flags().Parse(args); err != nil {
		return base, err
	}
	err := s.apply(cmd, &base)
	return base, err
}

func TestServiceFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // the spec's JSON, as far as the flags set it
	}{
		{"nothing", nil, `{"template":{"image":"img","resources":{"limits":{},"reservations":{}}},"update":{},"rollback":{},"restart":{"backoff":{}}}`},
		{"replicas and ports", []string{"--replicas", "3", "-p", "8080:80", "-p", "53/udp"},
			`{"replicas":3,"template":{"image":"img","resources":{"limits":{},"reservations":{}}},"update":{},"rollback":{},"restart":{"backoff":{}},"ports":[{"protocol":"tcp","targetPort":80,"publishedPort":8080},{"protocol":"udp","targetPort":53}]}`},
		{"resources", []string{"--limit-cpu", "1.5", "--limit-memory", "256m", "--reserve-cpu", "0.5", "--reserve-memory", "64m"},
			`{"template":{"image":"img","resources":{"limits":{"nanoCPUs":1500000000,"memoryBytes":268435456},"reservations":{"nanoCPUs":500000000,"memoryBytes":67108864}}},"update":{},"rollback":{},"restart":{"backoff":{}}}`},
		{"progress deadline", []string{"--min-ready", "1s", "--progress-deadline", "30s"},
			`{"template":{"image":"img","resources":{"limits":{},"reservations":{}}},"update":{},"rollback":{},"restart":{"backoff":{}},"minReady":"1s","progressDeadline":"30s"}`},
		{"update and restart", []string{"--update-parallelism", "2", "--update-delay", "10s", "--update-order", "start-first", "--update-failure-action", "rollback", "--update-max-failure-ratio", "0.5", "--rollback-parallelism", "3", "--restart-condition", "on-failure", "--restart-delay", "1s", "--stop-grace-period", "30s"},
			`{"template":{"image":"img","resources":{"limits":{},"reservations":{}},"stopGracePeriod":"30s"},"update":{"parallelism":2,"delay":"10s","order":"start-first","failureAction":"rollback","maxFailureRatio":0.5},"rollback":{"parallelism":3},"restart":{"condition":"on-failure","delay":"1s","backoff":{}}}`},
		{"probes", []string{"--health-cmd", "true", "--health-interval", "2s", "--readiness-http", "80:/ready"},
			`{"template":{"image":"img","resources":{"limits":{},"reservations":{}},"livenessProbe":{"exec":["/bin/sh","-c","true"],"period":"2s"},"readinessProbe":{"httpGet":{"path":"/ready","port":80},"period":"2s"}},"update":{},"rollback":{},"restart":{"backoff":{}}}`},
		{"env, mounts, labels", []string{"-e", "A=1", "-v", "/srv:/data:ro", "--mount", "type=tmpfs,target=/tmp", "--container-label", "x=y", "--network", "front"},
			`{"template":{"image":"img","env":["A=1"],"mounts":[{"type":"bind","source":"/srv","target":"/data","readOnly":true},{"type":"tmpfs","target":"/tmp"}],"networks":["front"],"labels":{"x":"y"},"resources":{"limits":{},"reservations":{}}},"update":{},"rollback":{},"restart":{"backoff":{}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := specFrom(t, api.Service{Spec: api.ServiceSpec{Template: api.TaskTemplate{Image: "img"}}}, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(svc.Spec)
			if string(got) != tc.want {
				t.Fatalf("spec\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Bad values are one line of class invalid argument (exit status 2).
func TestServiceFlagsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"--replicas", "-1"},
		{"--limit-memory", "lots"},
		{"--limit-cpu", "-2"},
		{"-p", "http"},
		{"--readiness-http", "eighty"},
		{"--readiness-cmd", "true", "--readiness-http", "80"},
		{"-e", "=x"},
	} {
		if _, err := specFrom(t, api.Service{}, args...); errdefs.ExitCode(err) != 2 {
			t.Errorf("%q: %v, want invalid argument", args, err)
		}
	}
}

// An update changes what its flags name and keeps the rest.
func TestServiceFlagsUpdateKeeps(t *testing.T) {
	n := 4
	base := api.Service{Spec: api.ServiceSpec{Replicas: &n, Template: api.TaskTemplate{Image: "img", Env: []string{"A=1"}}}}
	svc, err := specFrom(t, base, "--limit-memory", "1g")
	if err != nil {
		t.Fatal(err)
	}
	if *svc.Spec.Replicas != 4 || svc.Spec.Template.Env[0] != "A=1" || svc.Spec.Template.Resources.Limits.MemoryBytes != 1<<30 {
		t.Fatalf("update changed more than --limit-memory: %+v", svc.Spec)
	}
	if got := editList([]string{"A=1", "B=2"}, []string{"B=3", "C=4"}, []string{"A"}); len(got) != 2 || got[0] != "B=3" || got[1] != "C=4" {
		t.Fatalf("editList = %q", got)
	}
	if got := editList([]string{"A=1", "B=2"}, []string{"A=1"}, nil); !slices.Equal(got, []string{"A=1", "B=2"}) {
		t.Fatalf("adding what is there: editList = %q, want the list as it was", got)
	}
}

// converge counts the ready replicas of the service's template but looks
// for rejected ones among those of the template the command wrote, which
// an automatic rollback replaced by the old one.
func TestTally(t *testing.T) {
	old, broken := api.TaskTemplate{Image: "img"}, api.TaskTemplate{Image: "nope"}
	task := func(tpl api.TaskTemplate, desired, state api.TaskState, msg string) api.Task {
		return api.Task{Template: tpl, DesiredState: desired, Status: api.TaskStatus{State: state, Message: msg}}
	}
	tasks := []api.Task{
		task(old, api.TaskRunning, api.TaskReady, ""),
		task(old, api.TaskRunning, api.TaskRunning, ""),
		task(old, api.TaskShutdown, api.TaskReady, ""),
		task(broken, api.TaskShutdown, api.TaskRejected, "no such image"),
	}
	if ready, stopping, rejected := tally(tasks, old.Hash(), broken.Hash()); ready != 1 || stopping != 1 || rejected != "no such image" {
		t.Errorf("after a rollback from the broken template: %d ready, %d stopping, rejected %q; want 1, 1 and its reason", ready, stopping, rejected)
	}
	if ready, stopping, rejected := tally(tasks, old.Hash(), old.Hash()); ready != 1 || stopping != 1 || rejected != "" {
		t.Errorf("of the old template: %d ready, %d stopping, rejected %q; want 1, 1 and none", ready, stopping, rejected)
	}
}
