package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestNamespaces checks each namespace from inside the container.
func TestNamespaces(t *testing.T) {
	e := newEnv(t, "sh", "-c", `
		echo "uts=$(hostname)"
		echo "pid=$$"
		echo "links=$(ls /sys/class/net | tr '\n' ' ')"
		for ns in ipc mnt net pid uts cgroup user; do echo "ns.$ns=$(readlink /proc/self/ns/$ns)"; done
		echo "cgroup=$(grep memory /proc/self/cgroup)"
		echo "uidmap=$(cat /proc/self/uid_map | tr -s ' ')"
		echo "id=$(id -u)"`)
	e.spec.Hostname = "isolated"
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	// The bundle must be reachable, and the root file system owned, by the
	// mapped root.
	for d := e.bundle; d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil && d != "/tmp" {
			t.Fatal(err)
		}
		if d == "/tmp" {
			break
		}
	}
	if err := filepath.Walk(filepath.Join(e.bundle, "rootfs"), func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 100000, 100000)
	}); err != nil {
		t.Fatal(err)
	}
	r := e.run(e.id("ns"))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = strings.TrimSpace(v)
	}
	want := map[string]string{"uts": "isolated", "pid": "1", "links": "lo", "cgroup": "4:memory:/", "uidmap": "0 100000 65536", "id": "0"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, ns := range []string{"ipc", "mnt", "net", "pid", "uts", "cgroup", "user"} {
		host, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		if got["ns."+ns] == "" || got["ns."+ns] == host {
			t.Errorf("%s namespace %q is the host's %q", ns, got["ns."+ns], host)
		}
	}
}

// TestMountSymlinkEscape gives the image symlinks that point out of the
// root, absolutely and with "..", and mounts through them: the mounts must
// land inside the root and the host paths must stay untouched.
func TestMountSymlinkEscape(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo data > /abs/file && echo data > /rel/file && cat /abs/file /rel/file")
	hostDir := t.TempDir()
	rootfs := filepath.Join(e.bundle, "rootfs")
	if err := os.Symlink(hostDir, filepath.Join(rootfs, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../.."+hostDir, filepath.Join(rootfs, "rel")); err != nil {
		t.Fatal(err)
	}
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/abs", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/rel", Type: "tmpfs", Source: "tmpfs"},
	)
	r := e.run(e.id("escape"))
	if r.code != 0 || r.stdout != "data\ndata\n" {
		t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	entries, err := os.ReadDir(hostDir)
	if err != nil || len(entries) != 0 {
		t.Fatalf("the host directory behind the symlinks changed: %v %v", entries, err)
	}
	// The mounts went to the symlinks' targets inside the root.
	if _, err := os.Stat(filepath.Join(rootfs, hostDir)); err != nil {
		t.Fatalf("mount point not created inside the root: %v", err)
	}
	// A bind mount's destination is confined the same way.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "secret"), []byte("s"), 0o644)
	e.spec.Process.Args = []string{"cat", "/abs/secret"}
	e.spec.Mounts = append(e.spec.Mounts[:len(e.spec.Mounts)-2], specs.Mount{Destination: "/abs", Type: "bind", Source: src, Options: []string{"rbind", "ro"}})
	if r := e.run(e.id("bind")); r.code != 0 || r.stdout != "s" {
		t.Fatalf("bind through a symlink: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
		t.Fatalf("bind mount landed on the host: %v", entries)
	}
}

// TestCapabilities drops CAP_CHOWN and CAP_NET_RAW: chown fails and the
// effective set shows exactly what the spec asked for.
func TestCapabilities(t *testing.T) {
	e := newEnv(t, "sh", "-c", "grep CapEff /proc/self/status; touch /tmp/f; chown 65534 /tmp/f && echo chown-worked")
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL"}
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	r := e.run(e.id("caps"))
	// CAP_KILL is 5, CAP_AUDIT_WRITE 29.
	if want := fmt.Sprintf("CapEff:\t%016x", 1<<5|1<<29); !strings.Contains(r.stdout, want) {
		t.Errorf("effective capabilities: %q, want %q", r.stdout, want)
	}
	if strings.Contains(r.stdout, "chown-worked") || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Errorf("chown without CAP_CHOWN: stdout %q stderr %q", r.stdout, r.stderr)
	}
}

// TestSeccompBlocksSyscall denies mkdir/mkdirat with EPERM; everything
// else runs.
func TestSeccompBlocksSyscall(t *testing.T) {
	e := newEnv(t, "sh", "-c", "mkdir /tmp/d && echo made; echo still-running")
	errno := uint(1)
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno}},
	}
	r := e.run(e.id("seccomp"))
	if strings.Contains(r.stdout, "made") || !strings.Contains(r.stdout, "still-running") || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestReadonlyRootAndMaskedPaths checks root.readonly and the default
// masked and read-only paths.
func TestReadonlyRootAndMaskedPaths(t *testing.T) {
	e := newEnv(t, "sh", "-c", "touch /x; cat /proc/timer_list | wc -c; echo 1 > /proc/sys/kernel/domainname; echo done")
	e.spec.Root.Readonly = true
	r := e.run(e.id("ro"))
	if r.code != 0 || strings.Count(r.stderr, "Read-only file system") != 2 || r.stdout != "0\ndone\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestLoopbackUp: a new network namespace has lo up, as runc sets it up.
func TestLoopbackUp(t *testing.T) {
	e := newEnv(t, "ip", "-o", "link", "show", "lo")
	r := e.run(e.id("lo"))
	if r.code != 0 || !strings.Contains(r.stdout, "<LOOPBACK,UP,") {
		t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
}

// TestBindFlagsStayOnTheirMount: a read-only bind whose destination an
// image symlink routes through the bind's own content must make that bind
// read-only, not whatever its content's symlinks point to (here the root).
func TestBindFlagsStayOnTheirMount(t *testing.T) {
	e := newEnv(t, "sh", "-c", "touch /m/f 2>/dev/null && echo wrote-m; touch /f 2>/dev/null && echo wrote-root")
	rootfs := filepath.Join(e.bundle, "rootfs")
	if err := os.Symlink("/m/x/..", filepath.Join(rootfs, "vol")); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.Symlink("/", filepath.Join(src, "x")); err != nil {
		t.Fatal(err)
	}
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: src, Options: []string{"rbind", "ro", "nosuid"}})
	r := e.run(e.id("robind"))
	if r.code != 0 || r.stdout != "wrote-root\n" {
		t.Fatalf("want the bind read-only and the root writable: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if entries, _ := os.ReadDir(src); len(entries) != 1 {
		t.Fatalf("the bind source changed: %v", entries)
	}
}
