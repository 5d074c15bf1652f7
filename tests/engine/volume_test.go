package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVolumes(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	// A named volume outlives its container.
	e.must("run", "--rm", "--network", "none", "-v", "data:/data", img, "sh", "-c", "echo kept > /data/f")
	if got := e.must("run", "--rm", "--network", "none", "-v", "data:/data:ro", img, "cat", "/data/f"); got != "kept" {
		t.Fatalf("volume content: %q", got)
	}
	if _, _, code := e.run("run", "--rm", "--network", "none", "-v", "data:/data:ro", img, "touch", "/data/g"); code == 0 {
		t.Fatal("wrote to a read-only volume")
	}
	if got := e.must("volume", "ls", "-q"); got != "data" {
		t.Fatalf("volume ls: %q", got)
	}
	mp := e.must("volume", "inspect", "-f", "{{.Mountpoint}}", "data")
	if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || string(b) != "kept\n" {
		t.Fatalf("volume on the host: %q %v", b, err)
	}
	// A volume in use cannot be removed.
	e.must("create", "--name", "user", "-v", "data:/data", img)
	e.fails("in use", "volume", "rm", "data")
	e.must("rm", "user")
	e.must("volume", "rm", "data")
	e.fails("no such volume", "volume", "inspect", "data")

	// A new volume mounted over an image's directory starts with the
	// image's files there, as with Docker; a volume with content keeps it.
	if got := e.must("run", "--rm", "--network", "none", "-v", "etc:/etc", img, "cat", "/etc/group"); !strings.Contains(got, "root:x:0:") {
		t.Fatalf("new volume over /etc: %q", got)
	}
	e.must("run", "--rm", "--network", "none", "-v", "etc:/etc", img, "sh", "-c", "echo mine > /etc/group")
	if got := e.must("run", "--rm", "--network", "none", "-v", "etc:/etc", img, "cat", "/etc/group"); got != "mine" {
		t.Fatalf("volume content replaced: %q", got)
	}
	e.must("volume", "rm", "etc")

	// Bind mounts, read-only or not, and tmpfs.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in"), []byte("from host\n"), 0o644)
	got := e.must("run", "--rm", "--network", "none", "-v", dir+":/host", "--tmpfs", "/scratch:size=1m", img,
		"sh", "-c", "cat /host/in; echo back > /host/out; grep -c ' /scratch tmpfs ' /proc/mounts")
	if got != "from host\n1" {
		t.Fatalf("bind + tmpfs: %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out")); string(b) != "back\n" {
		t.Fatalf("bind mount write-back: %q", b)
	}
	// rm -v removes anonymous volumes, not named ones.
	e.must("create", "--name", "anon", "-v", "/anon", "-v", "named:/named", img)
	if n := len(strings.Fields(e.must("volume", "ls", "-q"))); n != 2 {
		t.Fatalf("want an anonymous and a named volume, got %d", n)
	}
	e.must("rm", "-v", "anon")
	if got := e.must("volume", "ls", "-q"); got != "named" {
		t.Fatalf("after rm -v: %q", got)
	}
	e.must("volume", "rm", "named")
}

func TestResourceLimits(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "lim", "--network", "none", "-m", "64m", "--cpus", "0.5", "--pids-limit", "50", "--cpu-shares", "512", img, "sleep", "60")
	id := e.must("inspect", "-f", "{{.Id}}", "lim")
	read := func(ctrl, file string) string {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, "berth", id, file))
		if err != nil {
			t.Skipf("cgroup v1 %s not available: %v", ctrl, err)
		}
		return strings.TrimSpace(string(b))
	}
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", "67108864"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.shares", "512"},
		{"pids", "pids.max", "50"},
	} {
		if got := read(c.ctrl, c.file); got != c.want {
			t.Errorf("%s: %s, want %s", c.file, got, c.want)
		}
	}
	// The container sees its own limit.
	if got := e.must("exec", "lim", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("limit inside: %s", got)
	}
	e.must("rm", "-f", "lim")
	// Out of memory: killed, and reported so.
	_, _, code := e.run("run", "--name", "oom", "--network", "none", "-m", "16m", "--memory-swap", "16m", img, "sh", "-c", "x=a; while true; do x=$x$x; done")
	if code != 137 {
		t.Fatalf("OOM exit %d, want 137", code)
	}
	if got := e.must("inspect", "-f", "{{.State.OOMKilled}}", "oom"); got != "true" {
		t.Fatalf("OOMKilled %s", got)
	}
}

func TestImageInUse(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("create", "--name", "user", "--network", "none", img, "echo", "still here")
	e.fails("used by container user", "rmi", img)
	e.fails("used by container user", "image", "rm", img)
	// -f untags it, but the image stays while the container needs it.
	e.must("rmi", "-f", img)
	e.must("image", "prune", "-a")
	if got := e.must("start", "-a", "user"); got != "still here" {
		t.Fatalf("container after rmi -f: %q", got)
	}
	e.must("rm", "user")
	e.must("image", "prune")
	if got := e.must("images", "-q"); got != "" {
		t.Fatalf("image left after its container went and prune: %q", got)
	}
}
