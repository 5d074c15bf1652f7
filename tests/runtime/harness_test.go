package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var runtimeBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("skipping berth-runtime integration tests: they need root")
		os.Exit(0)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		fmt.Println("skipping berth-runtime integration tests: /bin/busybox missing (apt-get install busybox-static)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "berth-rt-test-")
	if err != nil {
		panic(err)
	}
	runtimeBin = filepath.Join(dir, "berth-runtime")
	build := exec.Command("go", "build", "-o", runtimeBin, "github.com/berth-dev/berth/cmd/berth-runtime")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Println("build berth-runtime:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's runtime root and bundle.
type env struct {
	t      *testing.T
	root   string
	bundle string
	spec   *specs.Spec
	suffix string // makes container ids (and so cgroup paths) unique
}

// id returns a container id unique to this test run, so that tests never
// meet each other's (or a user's) cgroups.
func (e *env) id(name string) string { return name + "-" + e.suffix }

// newEnv makes a busybox bundle with berth-runtime's default spec running
// args, and removes every container of its root when the test ends.
func newEnv(t *testing.T, args ...string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, root: filepath.Join(dir, "state"), bundle: filepath.Join(dir, "bundle"),
		suffix: fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)}
	rootfs := filepath.Join(e.bundle, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"sh", "cat", "echo", "hostname", "id", "ls", "sleep", "true", "false", "mkdir", "grep", "ps", "kill", "seq", "readlink", "wc", "head", "touch", "chown", "stat", "ip", "mount"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", app)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"), 0o644)
	out, err := exec.Command(runtimeBin, "spec", "--bundle", e.bundle).CombinedOutput()
	if err != nil {
		t.Fatalf("spec: %v: %s", err, out)
	}
	e.spec = e.loadSpec()
	e.spec.Process.Terminal = false
	e.spec.Process.Args = args
	e.spec.Root.Readonly = false
	e.saveSpec()
	t.Cleanup(func() {
		out, _ := exec.Command(runtimeBin, "--root", e.root, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			exec.Command(runtimeBin, "--root", e.root, "delete", "--force", id).Run()
		}
	})
	return e
}

func (e *env) loadSpec() *specs.Spec {
	data, err := os.ReadFile(filepath.Join(e.bundle, "config.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		e.t.Fatal(err)
	}
	return &s
}

// saveSpec writes e.spec as the bundle's config.json.
func (e *env) saveSpec() {
	data, err := json.MarshalIndent(e.spec, "", " ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// result is one command's outcome.
type result struct {
	stdout, stderr string
	code           int
}

// rt runs berth-runtime with this env's root. Output goes through files,
// not pipes: a created or detached container inherits them, and waiting for
// a pipe's EOF would wait for the container.
func (e *env) rt(args ...string) result {
	e.t.Helper()
	cmd := exec.Command(runtimeBin, append([]string{"--root", e.root}, args...)...)
	cmd.Dir = e.bundle
	stdout, err := os.CreateTemp(e.t.TempDir(), "stdout")
	if err != nil {
		e.t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.CreateTemp(e.t.TempDir(), "stderr")
	if err != nil {
		e.t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	out, _ := os.ReadFile(stdout.Name())
	errOut, _ := os.ReadFile(stderr.Name())
	r := result{stdout: string(out), stderr: string(errOut)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("berth-runtime %v: %v", args, err)
	}
	return r
}

// must runs berth-runtime and fails the test unless it exits 0.
func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.rt(args...)
	if r.code != 0 {
		e.t.Fatalf("berth-runtime %s: exit %d: %s%s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// run saves the spec and runs the container in the foreground.
func (e *env) run(id string) result {
	e.t.Helper()
	e.saveSpec()
	return e.rt("run", "--bundle", e.bundle, id)
}

func (e *env) state(id string) specs.State {
	e.t.Helper()
	var st specs.State
	if err := json.Unmarshal([]byte(e.must("state", id)), &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// waitStatus polls until container id reaches status.
func (e *env) waitStatus(id string, status specs.ContainerState) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := e.state(id)
		if st.Status == status {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s: status %s, want %s", id, st.Status, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
