package runtime

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The tests of this file each hold a defect runc's integration suite
// (v1.1.5, tests/integration) catches; the bats file is named in each.

// TestDeviceDenyRuleHolds gives the container a node of /dev/fuse under a
// deny-all device rule (dev.bats "device cgroup deny"): the node exists but
// cannot be opened, also after an update that changes another limit; an
// allow rule for it opens it.
func TestDeviceDenyRuleHolds(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse on this machine")
	}
	e := newEnv(t, "sleep", "300")
	e.spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	e.spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
	e.saveSpec()
	id := e.id("devdeny")
	e.must("run", "-d", "--bundle", e.bundle, id)
	open := func(id string) result { return e.rt("exec", id, "sh", "-c", ": < /dev/fuse && echo opened") }
	denied := func(when string) {
		t.Helper()
		r := open(id)
		if r.code == 0 || strings.Contains(r.stdout, "opened") || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Fatalf("%s: a device denied by linux.resources.devices opened: exit %d stdout %q stderr %q", when, r.code, r.stdout, r.stderr)
		}
	}
	denied("after run")
	e.must("update", "--pids-limit", "42", id)
	denied("after update")
	e.must("delete", "--force", id)

	major, minor := int64(10), int64(229)
	e.spec.Linux.Resources.Devices = append(e.spec.Linux.Resources.Devices,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rw"})
	e.saveSpec()
	id = e.id("devallow")
	e.must("run", "-d", "--bundle", e.bundle, id)
	if r := open(id); r.code != 0 || !strings.Contains(r.stdout, "opened") {
		t.Fatalf("an allowed device did not open: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestRecursiveReadonlyMount binds a directory holding a tmpfs with "rro"
// (mounts_recursive.bats): the bind and the tmpfs under it are both
// read-only; with plain "ro" only the bind is, as the kernel does.
func TestRecursiveReadonlyMount(t *testing.T) {
	src := t.TempDir()
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	e := newEnv(t, "sh", "-c", "touch /mnt/f || echo top-ro; touch /mnt/sub/f || echo sub-ro")
	base := e.spec.Mounts
	for _, c := range []struct {
		options []string
		want    string
	}{
		{[]string{"rbind", "rro"}, "top-ro\nsub-ro\n"},
		{[]string{"rbind", "ro", "rro"}, "top-ro\nsub-ro\n"},
		{[]string{"rbind", "ro"}, "top-ro\n"},
	} {
		e.spec.Mounts = append(base, specs.Mount{Destination: "/mnt", Type: "bind", Source: src, Options: c.options})
		r := e.run(e.id("rro"))
		if r.code != 0 || r.stdout != c.want {
			t.Errorf("options %v: exit %d stdout %q (want %q) stderr %q", c.options, r.code, r.stdout, c.want, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(sub); len(entries) != 1 {
		t.Errorf("the read-only tmpfs was written: %v", entries)
	}
}

// TestCwdEnteredWithRuntimePrivileges (cwd.bats): the working directory is
// entered before the process's user and capabilities take effect, as
// runc does, so a non-root process can start in a root-only directory and
// an exec as a root without CAP_DAC_OVERRIDE can start in a directory
// another user owns.
func TestCwdEnteredWithRuntimePrivileges(t *testing.T) {
	e := newEnv(t, "sh", "-c", "pwd; id -u")
	dir := filepath.Join(e.bundle, "rootfs", "root")
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	e.spec.Process.Cwd = "/root"
	e.spec.Process.User = specs.User{UID: 42, GID: 42}
	if r := e.run(e.id("cwd")); r.code != 0 || r.stdout != "/root\n42\n" {
		t.Fatalf("uid 42 in a root-only cwd: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	if err := os.Chown(dir, 42, 42); err != nil {
		t.Fatal(err)
	}
	e.spec.Process.Args = []string{"sleep", "300"}
	e.saveSpec()
	id := e.id("cwdexec")
	e.must("run", "-d", "--bundle", e.bundle, id)
	if r := e.rt("exec", "--user", "0", id, "sh", "-c", "pwd"); r.code != 0 || r.stdout != "/root\n" {
		t.Fatalf("exec --user 0 in a cwd owned by uid 42: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestKernelFSOnSymlinkRefused (mask.bats "prohibit symlink /proc" and
// "/sys"): an image whose /proc or /sys is a symlink is refused rather than
// given the mount at the symlink's target.
func TestKernelFSOnSymlinkRefused(t *testing.T) {
	for _, dir := range []string{"proc", "sys"} {
		e := newEnv(t, "true")
		rootfs := filepath.Join(e.bundle, "rootfs")
		if err := os.Symlink("/elsewhere", filepath.Join(rootfs, dir)); err != nil {
			t.Fatal(err)
		}
		r := e.run(e.id("symlink" + dir))
		if r.code == 0 || !strings.Contains(r.stderr, "must be mounted on ordinary directory") {
			t.Errorf("/%s -> /elsewhere: exit %d stderr %q", dir, r.code, r.stderr)
		}
		if _, err := os.Lstat(filepath.Join(rootfs, "elsewhere")); err == nil {
			t.Errorf("/%s -> /elsewhere: the symlink was followed", dir)
		}
	}
}

// TestMountInsideProcRefused (runc's checkProcMount): a bind mount over a
// file of /proc is refused, except over the files lxcfs emulates.
func TestMountInsideProcRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "fake")
	if err := os.WriteFile(file, []byte("fake\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "cat", "/proc/uptime")
	base := e.spec.Mounts
	e.spec.Mounts = append(base, specs.Mount{Destination: "/proc/cmdline", Type: "bind", Source: file, Options: []string{"bind"}})
	if r := e.run(e.id("procbind")); r.code == 0 || !strings.Contains(r.stderr, "inside /proc") {
		t.Errorf("bind over /proc/cmdline: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	e.spec.Mounts = append(base, specs.Mount{Destination: "/proc/uptime", Type: "bind", Source: file, Options: []string{"bind"}})
	if r := e.run(e.id("lxcfs")); r.code != 0 || r.stdout != "fake\n" {
		t.Errorf("bind over /proc/uptime (lxcfs): exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestNoPivotHidesHostProc (no_pivot.bats): in a --no-pivot container a
// user namespace cannot mount a new proc, which the kernel allows only
// while a fully visible proc is in the mount namespace: the host's must
// not be.
func TestNoPivotHidesHostProc(t *testing.T) {
	e := newEnv(t, "unshare", "-mrpf", "sh", "-c", "mount -t proc none /proc && echo mounted")
	if err := os.Symlink("busybox", filepath.Join(e.bundle, "rootfs/bin/unshare")); err != nil {
		t.Fatal(err)
	}
	c := e.spec.Process.Capabilities
	c.Bounding = append(c.Bounding, "CAP_SETFCAP")
	c.Permitted = append(c.Permitted, "CAP_SETFCAP")
	e.saveSpec()
	r := e.rt("run", "--no-pivot", "--bundle", e.bundle, e.id("nopivot"))
	if r.code == 0 || strings.Contains(r.stdout, "mounted") || !strings.Contains(r.stderr, "ermission denied") {
		t.Fatalf("proc mounted in a --no-pivot container: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestStartContainerHookUnderSeccomp: startContainer hooks run as part of
// the container's process, after its seccomp filter is in place, also with
// no_new_privs (runc's order).
func TestStartContainerHookUnderSeccomp(t *testing.T) {
	e := newEnv(t, "cat", "/tmp/hook")
	errno := uint(1)
	e.spec.Process.NoNewPrivileges = true
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"swapon"}, Action: specs.ActErrno, ErrnoRet: &errno}},
	}
	e.spec.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/sh",
		Args: []string{"sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status > /tmp/hook"}}}}
	r := e.run(e.id("hookseccomp"))
	if r.code != 0 || !strings.Contains(r.stdout, "NoNewPrivs:\t1") || !strings.Contains(r.stdout, "Seccomp:\t2") {
		t.Fatalf("startContainer hook ran without the container's seccomp filter: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestFrozenCgroupRefused (cgroups.bats "should refuse pre-existing frozen
// cgroup"): run and create refuse a cgroup that is already frozen, where
// the container's init would stop for good, instead of waiting for it.
func TestFrozenCgroupRefused(t *testing.T) {
	const hier = "/sys/fs/cgroup/freezer"
	if !dirExists(hier) {
		t.Skip("no cgroup v1 freezer hierarchy on this machine")
	}
	e := newEnv(t, "true")
	path := "/berth-test-frozen-" + e.suffix
	t.Cleanup(func() { removeCgroup(path) })
	if err := os.Mkdir(hier+path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hier+path+"/freezer.state", []byte("FROZEN"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.spec.Linux.CgroupsPath = path
	e.saveSpec()
	for _, args := range [][]string{{"run", "-d"}, {"create"}} {
		r := e.rtGuarded(append(args, "--bundle", e.bundle, e.id("frozen"))...)
		// 1, runc's status for a failure, which the suite checks.
		if r.code != 1 || !strings.Contains(r.stderr, "cgroup unexpectedly frozen") {
			t.Errorf("%s in a frozen cgroup: exit %d stderr %q", args[0], r.code, r.stderr)
		}
	}
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// removeCgroup thaws, empties and removes path in every v1 hierarchy.
func removeCgroup(path string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + path)
	for _, d := range dirs {
		os.WriteFile(d+"/freezer.state", []byte("THAWED"), 0o644)
		if data, err := os.ReadFile(d + "/cgroup.procs"); err == nil {
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					unix.Kill(pid, unix.SIGKILL)
				}
			}
		}
	}
	for _, d := range dirs {
		for i := 0; i < 100 && os.Remove(d) != nil && dirExists(d); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// rtGuarded runs berth-runtime like rt, but kills it and fails the test if
// it has not returned in a minute: for commands that hang when broken.
func (e *env) rtGuarded(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, runtimeBin, append([]string{"--root", e.root}, args...)...)
	cmd.Dir = e.bundle
	out, err := os.CreateTemp(e.t.TempDir(), "out")
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		e.t.Fatalf("berth-runtime %s hung", strings.Join(args, " "))
	}
	data, _ := os.ReadFile(out.Name())
	r := result{stderr: string(data)} // both streams
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("berth-runtime %v: %v", args, err)
	}
	return r
}
