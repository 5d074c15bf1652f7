//go:build linux

package podman

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const image = "localhost/berth-busybox:test"

// runFlags go on every `podman run`. --network none keeps the test off the
// host's bridges and firewall. The ulimits are needed on these machines:
// Podman asks for nofile=1048576 by default, above the hard limit the test
// machines allow root, and both runc and berth-runtime then fail with EPERM.
var runFlags = []string{"--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

// needPodman skips the test unless it runs as root with podman and a
// static busybox (which the test images are made of).
func needPodman(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: podman with cgroupfs, berth-runtime's namespaces and cgroups, berth's snapshots")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skipf("needs podman (apt-get install podman): %v", err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("needs a static busybox to make the image (apt-get install busybox-static): %v", err)
	}
}

func TestPodmanDrivesBerthRuntime(t *testing.T) {
	needPodman(t)

	runtimeBin := buildRuntime(t)
	p := newPodman(t, runtimeBin)

	tarball := filepath.Join(p.dir, "busybox-rootfs.tar")
	writeBusyboxRootfs(t, tarball)
	p.must(t, "import", "--change", `CMD=["/bin/sh"]`, tarball, image)

	// Podman's containers.conf adds the sysctl net.ipv4.ping_group_range
	// to every container with its own network namespace, so this is what
	// every user's first `podman run` does.
	t.Run("default sysctls", func(t *testing.T) {
		// (berth-runtime once wrote sysctls after making /proc/sys
		// read-only, which broke exactly this.)
		r := p.run("run", "--rm", runFlags, image, "cat", "/proc/sys/net/ipv4/ping_group_range")
		r.expect(t, 0)
		if got := strings.Fields(r.stdout); len(got) != 2 || got[0] != "0" || got[1] != "0" {
			t.Errorf("net.ipv4.ping_group_range in the container = %q, want \"0 0\"", r.stdout)
		}
	})

	t.Run("run --rm", func(t *testing.T) {
		name := p.name("rm")
		p.run("run", "--rm", "--name", name, runFlags, image, "true").expect(t, 0)
		p.run("run", "--rm", runFlags, image, "sh", "-c", "exit 3").expect(t, 3)
		p.run("container", "exists", name).expect(t, 1) // 1: no such container
	})

	t.Run("run -d, exec, memory, stop, rm", func(t *testing.T) {
		name := p.name("detached")
		// The shell is PID 1, which ignores SIGTERM unless it traps it; the
		// trap makes `podman stop` a graceful stop with exit code 0.
		script := `trap "exit 0" TERM; echo ready; while :; do sleep 1 & wait; done`
		p.must(t, "run", "-d", "--name", name, "--memory", "64m", runFlags, image, "sh", "-c", script)

		var st struct {
			ID         string
			OCIRuntime string
			State      struct {
				Status   string
				Running  bool
				Pid      int
				ExitCode int
			}
		}
		p.inspect(t, name, &st)
		if st.State.Status != "running" || !st.State.Running || st.State.Pid <= 0 {
			t.Fatalf("after run -d: state %+v, want running with a pid", st.State)
		}
		if st.OCIRuntime != runtimeBin {
			t.Fatalf("podman used runtime %q, want %q", st.OCIRuntime, runtimeBin)
		}

		t.Run("exec", func(t *testing.T) {
			if got := p.must(t, "exec", name, "echo", "hello from exec"); got != "hello from exec" {
				t.Errorf("exec echo printed %q", got)
			}
			// exec joins the container's pid namespace: PID 1 is its shell.
			if got := p.must(t, "exec", name, "cat", "/proc/1/comm"); got != "sh" {
				t.Errorf("exec sees PID 1 as %q, want sh", got)
			}
			p.run("exec", name, "sh", "-c", "exit 7").expect(t, 7)
		})

		memCgroup := hostMemoryLimitFile(t, st.State.Pid)
		t.Run("memory", func(t *testing.T) {
			const want = "67108864" // --memory 64m
			got := p.must(t, "exec", name, "sh", "-c",
				"cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
			if got != want {
				t.Errorf("memory limit seen in the container = %q, want %s", got, want)
			}
			data, err := os.ReadFile(memCgroup)
			if err != nil {
				t.Fatalf("host side of the container's memory cgroup: %v", err)
			}
			if got := strings.TrimSpace(string(data)); got != want {
				t.Errorf("%s = %q, want %s", memCgroup, got, want)
			}
		})

		t.Run("stop", func(t *testing.T) {
			p.must(t, "stop", "-t", "20", name)
			p.inspect(t, name, &st)
			if st.State.Status != "exited" || st.State.Running {
				t.Fatalf("after stop: state %+v, want exited", st.State)
			}
			if st.State.ExitCode != 0 {
				t.Errorf("after stop: exit code %d, want 0 (the shell traps SIGTERM; 137 means it never got it)", st.State.ExitCode)
			}
		})

		t.Run("rm", func(t *testing.T) {
			p.must(t, "rm", name)
			p.run("container", "exists", name).expect(t, 1)
			// `berth-runtime delete` removes the container's cgroup.
			if _, err := os.Stat(filepath.Dir(memCgroup)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("container cgroup %s still there after rm (err=%v)", filepath.Dir(memCgroup), err)
			}
		})
	})
}

// buildRuntime builds ./cmd/berth-runtime from this module into a temporary
// directory, so the test never depends on `make build` having run.
func buildRuntime(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("go env GOMOD: not inside the berth module")
	}
	bin := filepath.Join(t.TempDir(), "berth-runtime")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/berth-runtime")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/berth-runtime: %v\n%s", err, out)
	}
	return bin
}

// writeBusyboxRootfs writes a tarball of a minimal root file system:
// /bin/busybox, a link for each of its applets, and root in /etc/passwd.
func writeBusyboxRootfs(t *testing.T, path string) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	add := func(h *tar.Header, body []byte) {
		h.ModTime = now
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "run", "sys", "tmp"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		add(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755}, bb)
	for _, app := range strings.Fields(string(out)) {
		if app != "busybox" && !strings.Contains(app, "/") {
			add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + app, Linkname: "busybox", Mode: 0o777}, nil)
		}
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/group", Mode: 0o644}, []byte("root:x:0:\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hostMemoryLimitFile returns the host path of the memory limit of the
// cgroup that pid is in (cgroup v1 memory controller, else cgroup v2).
func hostMemoryLimitFile(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatalf("container's cgroup: %v", err)
	}
	var unified string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return filepath.Join("/sys/fs/cgroup", parts[1], parts[2], "memory.limit_in_bytes")
			}
		}
	}
	if unified == "" {
		t.Fatalf("no memory cgroup in /proc/%d/cgroup:\n%s", pid, data)
	}
	return filepath.Join("/sys/fs/cgroup", unified, "memory.max")
}

// podman runs podman against a private store in dir with berth-runtime as
// its OCI runtime.
type podman struct {
	dir    string // everything Podman writes, removed by cleanup
	bin    string // berth-runtime
	global []string
	env    []string
	prefix string // of container names
}

func newPodman(t *testing.T, runtimeBin string) *podman {
	// Not t.TempDir: conmon's attach socket lives under the run root and
	// unix socket paths are short, so keep the prefix short.
	dir, err := os.MkdirTemp("", "berth-podman-")
	if err != nil {
		t.Fatal(err)
	}
	p := &podman{
		dir:    dir,
		bin:    runtimeBin,
		prefix: fmt.Sprintf("berth-podman-test-%d-", os.Getpid()),
		global: []string{
			"--root", filepath.Join(dir, "storage"),
			"--runroot", filepath.Join(dir, "run"),
			"--tmpdir", filepath.Join(dir, "tmp"),
			"--storage-driver", "vfs",
			// berth-runtime has no systemd cgroup driver, and no systemd runs here.
			"--cgroup-manager", "cgroupfs",
			"--events-backend", "file",
			"--runtime", runtimeBin,
		},
	}
	t.Cleanup(func() { p.cleanup(t) })
	storageConf := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "storage"), filepath.Join(dir, "run"))
	if err := os.WriteFile(filepath.Join(dir, "storage.conf"), []byte(storageConf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.writeContainersConf(t)
	// CONTAINERS_CONF and CONTAINERS_STORAGE_CONF replace the user's and the
	// system's files, so nothing of theirs leaks in and nothing of ours out.
	p.env = append(os.Environ(),
		"CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"))
	return p
}

// defaultSysctls is what Podman's own containers.conf
// (/usr/share/containers/containers.conf) sets for every container; the
// private file replaces it, so it repeats the setting.
const defaultSysctls = `default_sysctls = ["net.ipv4.ping_group_range=0 0"]`

// writeContainersConf writes the private containers.conf: Podman's default
// sysctls, file locks in the tmp dir instead of the shared
// /dev/shm/libpod_lock, and no host network definitions.
func (p *podman) writeContainersConf(t *testing.T) {
	t.Helper()
	var b strings.Builder
	b.WriteString("[containers]\n")
	b.WriteString(defaultSysctls + "\n")
	fmt.Fprintf(&b, "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nlock_type = \"file\"\n")
	fmt.Fprintf(&b, "[network]\nnetwork_config_dir = %q\n", filepath.Join(p.dir, "networks"))
	if err := os.WriteFile(filepath.Join(p.dir, "containers.conf"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (p *podman) name(s string) string { return p.prefix + s }

type result struct {
	args           []string
	stdout, stderr string
	code           int
}

// run runs podman with args; an element of args may be a []string.
func (p *podman) run(args ...any) result {
	var flat []string
	for _, a := range args {
		switch a := a.(type) {
		case string:
			flat = append(flat, a)
		case []string:
			flat = append(flat, a...)
		default:
			panic(fmt.Sprintf("podman arg %v (%T)", a, a))
		}
	}
	// A guard against a hung podman, not a timing threshold.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", append(append([]string{}, p.global...), flat...)...)
	cmd.Env = p.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: flat, stdout: strings.TrimSpace(stdout.String()), stderr: strings.TrimSpace(stderr.String())}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		r.code = -1
		r.stderr += "\n" + err.Error()
	}
	return r
}

func (r result) expect(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("podman %s: exit code %d, want %d\nstdout: %s\nstderr: %s",
			strings.Join(r.args, " "), r.code, code, r.stdout, r.stderr)
	}
}

// must runs podman, fails the test unless it exits 0, and returns stdout.
func (p *podman) must(t *testing.T, args ...any) string {
	t.Helper()
	r := p.run(args...)
	r.expect(t, 0)
	return r.stdout
}

func (p *podman) inspect(t *testing.T, name string, v any) {
	t.Helper()
	out := p.must(t, "container", "inspect", name)
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		t.Fatalf("podman container inspect %s: %v\n%s", name, err, out)
	}
	if err := json.Unmarshal(list[0], v); err != nil {
		t.Fatalf("podman container inspect %s: %v", name, err)
	}
}

// cleanup removes every container and image of the private store, any
// berth-runtime state left for them, mounts under dir, and dir itself.
func (p *podman) cleanup(t *testing.T) {
	for _, args := range [][]any{{"rm", "-af", "-t", "0"}, {"rmi", "-af"}} {
		if r := p.run(args...); r.code != 0 {
			t.Logf("cleanup: podman %s: exit %d: %s", strings.Join(r.args, " "), r.code, r.stderr)
		}
	}
	// Podman deletes its containers from berth-runtime's default root; if a
	// failure left one behind, delete it (only ours: bundle inside dir).
	if out, err := exec.Command(p.bin, "list", "--format", "json").Output(); err == nil {
		var states []struct{ ID, Bundle string }
		_ = json.Unmarshal(out, &states)
		for _, s := range states {
			if strings.HasPrefix(s.Bundle, p.dir+"/") {
				if out, err := exec.Command(p.bin, "delete", "--force", s.ID).CombinedOutput(); err != nil {
					t.Logf("cleanup: berth-runtime delete %s: %v: %s", s.ID, err, out)
				}
			}
		}
	}
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var mounts []string
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], p.dir+"/") {
				mounts = append(mounts, f[4])
			}
		}
		for i := len(mounts) - 1; i >= 0; i-- { // innermost first
			if err := syscall.Unmount(mounts[i], syscall.MNT_DETACH); err != nil {
				t.Logf("cleanup: unmount %s: %v", mounts[i], err)
			}
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}
