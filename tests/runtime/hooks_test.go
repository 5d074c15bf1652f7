package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestHookOrder runs a hook of every kind, each appending its name and the
// status it was given on stdin to one file, and checks the order the
// runtime spec prescribes.
func TestHookOrder(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo process >> /log/order")
	logDir := t.TempDir()
	os.Chmod(logDir, 0o777)
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/log", Type: "bind", Source: logDir, Options: []string{"rbind", "rw"}})
	hook := func(name, file string) specs.Hook {
		// Runtime-namespace hooks run on the host's sh; startContainer runs
		// in the container, where the log is at /log.
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
			`read -r state; s=${state#*\"status\":\"}; echo "` + name + ` ${s%%\"*}" >> ` + file}}
	}
	hostLog := filepath.Join(logDir, "order")
	e.spec.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{hook("prestart", hostLog)},
		CreateRuntime:   []specs.Hook{hook("createRuntime", hostLog)},
		CreateContainer: []specs.Hook{hook("createContainer", hostLog)},
		StartContainer:  []specs.Hook{hook("startContainer", "/log/order")},
		Poststart:       []specs.Hook{hook("poststart", hostLog)},
		Poststop:        []specs.Hook{hook("poststop", hostLog)},
	}
	id := e.id("hooks")
	e.saveSpec()
	e.must("create", "--bundle", e.bundle, id)
	e.must("start", id)
	e.waitStatus(id, specs.StateStopped)
	e.must("delete", id)
	data, err := os.ReadFile(hostLog)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(data)), "\n")
	// The process and poststart race; everything else is ordered.
	want := []string{"prestart creating", "createRuntime creating", "createContainer creating", "startContainer created"}
	if len(got) != 7 || strings.Join(got[:4], "|") != strings.Join(want, "|") || got[6] != "poststop stopped" {
		t.Fatalf("hook order:\n%s", data)
	}
	rest := got[4] + "|" + got[5]
	if !strings.Contains(rest, "process") || !strings.Contains(rest, "poststart running") && !strings.Contains(rest, "poststart stopped") {
		t.Fatalf("hook order:\n%s", data)
	}
}

// TestHookFailure: a failing prestart hook fails create, names the hook,
// and leaves nothing behind.
func TestHookFailure(t *testing.T) {
	e := newEnv(t, "true")
	e.spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo nope >&2; exit 3"}}}}
	e.saveSpec()
	id := e.id("badhook")
	r := e.rt("create", "--bundle", e.bundle, id)
	if r.code == 0 || !strings.Contains(r.stderr, "prestart hook") || !strings.Contains(r.stderr, "nope") {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	if out := e.must("list", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("left behind: %q", out)
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids/berth/" + id); !os.IsNotExist(err) {
		t.Fatalf("cgroup left behind: %v", err)
	}
}
