package services

import (
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// tasks returns the IDs of service name's tasks that `service ps` shows,
// by desired state ("Running", "Shutdown").
func (e *env) tasks(name string) map[string]string {
	e.t.Helper()
	out := e.ok("service", "ps", "--no-trunc", "--format", "{{.ID}} {{.DesiredState}}", name)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// running lists the running containers of service name as replicas
// does, but skips those that go while it reads them, for polling while
// replicas come and go.
func (e *env) running(name string) []replica {
	e.t.Helper()
	out := e.ok("ps", "--no-trunc", "--filter", "label=berth.service.name="+name, "--format",
		`{{.ID}} {{.Names}} {{.Label "berth.task.id"}} {{.Label "berth.task.slot"}} {{.Label "berth.revision"}}`)
	var rs []replica
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 5 {
			continue
		}
		r := replica{ID: f[0], Name: f[1], Task: f[2], Slot: f[3], Revision: f[4]}
		pid, _, code := e.run("inspect", "-f", "{{.State.Pid}}", r.ID)
		if r.Pid, _ = strconv.Atoi(pid); code != 0 || r.Pid == 0 {
			continue
		}
		rs = append(rs, r)
	}
	return rs
}

// containers returns the IDs of every container of service name, running
// or not, as `berth ps -a` shows them.
func (e *env) containers(name string) []string {
	e.t.Helper()
	return strings.Fields(e.ok("ps", "-aq", "--no-trunc", "--filter", "label=berth.service.name="+name))
}

// converged waits until service name runs exactly want replicas, one per
// slot 1…want, each of a task `service ps` shows as wanted running, with no
// other container of the service (running or not), and returns them.
// It fails the test with what it saw last.
func (e *env) converged(name string, want int, d time.Duration) []replica {
	e.t.Helper()
	var last string
	var rs []replica
	deadline := time.Now().Add(d)
	for {
		last = e.exactly(name, want)
		if last == "" {
			rs = e.running(name)
			if e.exactly(name, want) == "" { // still, after reading the PIDs
				return rs
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("service %s: after %v: %s\n%s", name, d, last, e.ok("service", "ps", name))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// exactly says what is wrong with service name's replicas when they are
// not exactly want running containers, one per slot, each of a wanted
// task, and no other container; "" when nothing is.
func (e *env) exactly(name string, want int) string {
	rs := e.running(name)
	tasks := e.tasks(name)
	all := e.containers(name)
	slots := map[string][]string{}
	for _, r := range rs {
		slots[r.Slot] = append(slots[r.Slot], r.Name)
		if tasks[r.Task] != "Running" {
			return fmt.Sprintf("orphan: container %s belongs to no wanted task (%q)", r.Name, tasks[r.Task])
		}
	}
	for s, names := range slots {
		if len(names) > 1 {
			sort.Strings(names)
			return fmt.Sprintf("duplicate: slot %s has %s", s, strings.Join(names, ", "))
		}
	}
	if len(rs) != want || len(slots) != want {
		return fmt.Sprintf("want %d running replicas, one per slot, got %d in %d slots", want, len(rs), len(slots))
	}
	if len(all) != len(rs) {
		return fmt.Sprintf("%d containers of the service are not running", len(all)-len(rs))
	}
	return ""
}

// start runs berth on the test's root in the background; wait returns its
// exit status, stdout and stderr.
func (e *env) start(args ...string) (wait func() (code int, stdout, stderr string)) {
	cmd := exec.Command(e.berth, append([]string{"--root", e.dir}, args...)...)
	var o, er strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &er
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return func() (int, string, string) {
		cmd.Wait()
		return cmd.ProcessState.ExitCode(), strings.TrimSpace(o.String()), strings.TrimSpace(er.String())
	}
}
