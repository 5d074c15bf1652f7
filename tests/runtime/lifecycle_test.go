package runtime

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestLifecycle(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	c1 := e.id("c1")
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.must("create", "--bundle", e.bundle, "--pid-file", pidFile, c1)

	st := e.state(c1)
	if st.Status != specs.StateCreated || st.Pid <= 0 {
		t.Fatalf("after create: %+v, want created with a pid", st)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q, state pid %d (%v)", data, st.Pid, err)
	}
	if r := e.rt("create", "--bundle", e.bundle, c1); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("duplicate create: exit %d %q, want an 'already exists' error", r.code, r.stderr)
	}

	e.must("start", c1)
	if st := e.state(c1); st.Status != specs.StateRunning {
		t.Fatalf("after start: %s", st.Status)
	}
	if r := e.rt("start", c1); r.code == 0 || !strings.Contains(r.stderr, "not created") {
		t.Fatalf("start of a running container: exit %d %q", r.code, r.stderr)
	}
	if r := e.rt("delete", c1); r.code == 0 || !strings.Contains(r.stderr, "running") {
		t.Fatalf("delete of a running container: exit %d %q", r.code, r.stderr)
	}
	e.must("pause", c1)
	if st := e.state(c1); st.Status != "paused" {
		t.Fatalf("after pause: %s", st.Status)
	}
	e.must("resume", c1)

	e.must("kill", c1, "KILL")
	e.waitStatus(c1, specs.StateStopped)
	if r := e.rt("kill", c1, "TERM"); r.code == 0 {
		t.Fatal("kill of a stopped container succeeded")
	}
	e.must("delete", c1)
	if r := e.rt("state", c1); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("state after delete: exit %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids/berth/" + c1); !os.IsNotExist(err) {
		t.Fatalf("cgroup left behind: %v", err)
	}
}

func TestUnknownContainer(t *testing.T) {
	e := newEnv(t, "true")
	for _, cmd := range [][]string{{"start", "nope"}, {"state", "nope"}, {"kill", "nope"}, {"delete", "nope"}, {"exec", "nope", "true"}} {
		if r := e.rt(cmd...); r.code == 0 || !strings.Contains(r.stderr, `"nope"`) || !strings.Contains(r.stderr, "not found") {
			t.Errorf("%v: exit %d %q, want a not-found error naming the id", cmd, r.code, r.stderr)
		}
	}
}

func TestRunExitStatus(t *testing.T) {
	e := newEnv(t, "sh", "-c", "exit 7")
	if r := e.run(e.id("exit7")); r.code != 7 {
		t.Fatalf("exit status %d, want 7 (%s)", r.code, r.stderr)
	}
	// A container killed by a signal exits 128+N.
	e.spec.Process.Args = []string{"sleep", "30"}
	sig9 := e.id("sig9")
	done := make(chan result, 1)
	go func() { done <- e.run(sig9) }()
	deadline := time.Now().Add(10 * time.Second)
	for e.rt("state", sig9).code != 0 || e.state(sig9).Status != specs.StateRunning {
		if time.Now().After(deadline) {
			t.Fatal("container never ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.must("kill", sig9, "9")
	if r := <-done; r.code != 137 {
		t.Fatalf("killed by SIGKILL: exit status %d, want 137 (%s)", r.code, r.stderr)
	}
	// run removes the container after it exits.
	if out := e.must("list", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("containers left after run: %q", out)
	}
}

func TestBrokenConfigNamesField(t *testing.T) {
	e := newEnv(t, "true")
	cases := map[string]string{
		`{"ociVersion":"1.0.2","process":{"args":"true","cwd":"/"},"root":{"path":"rootfs"}}`:                                             "process.args",
		`{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"rel"},"root":{"path":"rootfs"}}`:                                         "process.cwd",
		`{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/"}}`:                                                                    "root.path",
		`{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/"},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"bogus"}]}}`: "linux.namespaces[0].type",
		`{"ociVersion":"1.0.2", "process": {`:                                                                                             "malformed JSON",
	}
	for cfg, field := range cases {
		if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.rt("create", "--bundle", e.bundle, "broken")
		if r.code == 0 || !strings.Contains(r.stderr, field) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("config %s: exit %d, stderr %q; want one line naming %s", cfg, r.code, r.stderr, field)
		}
	}
	if out := e.must("list", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("a failed create left state: %q", out)
	}
}

func TestExec(t *testing.T) {
	e := newEnv(t, "sleep", "60")
	e.spec.Hostname = "exec-host"
	e.saveSpec()
	ex := e.id("ex")
	e.must("run", "--detach", "--bundle", e.bundle, ex)
	if out := e.must("exec", ex, "hostname"); strings.TrimSpace(out) != "exec-host" {
		t.Fatalf("exec hostname: %q", out)
	}
	if r := e.rt("exec", ex, "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("exec exit status %d, want 3", r.code)
	}
	out := e.must("exec", "--env", "FOO=bar", "--cwd", "/tmp", "--user", "65534:65534", ex, "sh", "-c", `echo "$FOO $(pwd) $(id -u):$(id -g)"`)
	if strings.TrimSpace(out) != "bar /tmp 65534:65534" {
		t.Fatalf("exec with env/cwd/user: %q", out)
	}
	// The exec'd process is in the container's pid namespace and cgroup.
	out = e.must("exec", ex, "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '")
	if !strings.Contains(out, "sleep 60") {
		t.Fatalf("exec does not see the container's pid 1: %q", out)
	}
	pids := e.must("ps", "--format", "json", ex)
	if !strings.HasPrefix(pids, "[") {
		t.Fatalf("ps json: %q", pids)
	}
}

// TestMinimalConfig runs a config with no linux section at all: no
// namespaces, so the runtime only changes the root (and says so).
func TestMinimalConfig(t *testing.T) {
	e := newEnv(t, "true")
	cfg := `{"ociVersion":"1.0.2","process":{"args":["/bin/sh","-c","echo minimal"],"cwd":"/"},"root":{"path":"rootfs"}}`
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.rt("run", "--bundle", e.bundle, e.id("minimal"))
	if r.code != 0 || r.stdout != "minimal\n" || !strings.Contains(r.stderr, "no mount namespace") {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestBadInputLeavesNothing: bad flags and process files get one line, and
// a state directory a killed create left behind can be deleted.
func TestBadInputLeavesNothing(t *testing.T) {
	e := newEnv(t, "sleep", "30")
	id := e.id("bad")
	if r := e.rt("create", "--preserve-fds", "-1", "--bundle", e.bundle, id); r.code == 0 || strings.Contains(r.stderr, "panic") || !strings.Contains(r.stderr, "--preserve-fds") {
		t.Fatalf("negative --preserve-fds: exit %d %q", r.code, r.stderr)
	}
	if out := e.must("list", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("left behind: %q", out)
	}
	e.must("run", "--detach", "--bundle", e.bundle, id)
	proc := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(proc, []byte(`{"args":["true"],"cwd":"/","rlimits":[{"type":"RLIMIT_NOFIEL","hard":7,"soft":7}]}`), 0o644)
	if r := e.rt("exec", "--process", proc, id); r.code == 0 || !strings.Contains(r.stderr, "RLIMIT_NOFIEL") {
		t.Fatalf("exec with a bad rlimit: exit %d %q", r.code, r.stderr)
	}
	e.must("delete", "--force", id)
	// A create killed before it wrote its state leaves only a directory.
	stale := e.id("stale")
	if err := os.MkdirAll(filepath.Join(e.root, stale), 0o711); err != nil {
		t.Fatal(err)
	}
	e.must("delete", stale)
	if _, err := os.Stat(filepath.Join(e.root, stale)); !os.IsNotExist(err) {
		t.Fatalf("stale state directory left: %v", err)
	}
}
