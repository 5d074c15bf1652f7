package engine

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFullDisk: with berth's root on a disk full to the last block, stop
// and rm -f still work — removing containers is how a user gives space
// back. The containers' processes end and their mounts, network links and
// rules go (the cleanup's sweep checks), no temporary file is left, and
// nothing stored is lost: another container and the image stay intact.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the full-disk test needs root (a tmpfs for berth's root)")
	}
	disk := t.TempDir()
	if err := unix.Mount("tmpfs", disk, "tmpfs", 0, "size=32m,mode=0700"); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	// Cleanups run last first: the tmpfs goes last, after the
	// containers (whose removal needs the space the filler files give
	// back, were removal broken).
	t.Cleanup(func() {
		if err := unix.Unmount(disk, 0); err != nil {
			unix.Unmount(disk, unix.MNT_DETACH)
		}
	})
	e := newEnv(t)
	conf, err := os.ReadFile(filepath.Join(e.root, "berth.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The root is a directory of the tmpfs: the sweep looks for mounts
	// under it.
	dir := filepath.Join(disk, "root")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	e.root = dir
	if err := os.WriteFile(filepath.Join(dir, "berth.toml"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unfill(disk) })

	img := e.busybox()
	e.must("create", "--name", "keep", "--network", "none", img, "true")
	keepState, err := os.ReadFile(filepath.Join(dir, "containers", e.must("inspect", "-f", "{{.Id}}", "keep"), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.must("run", "-d", "--name", "always", "--restart", "always", img, "sleep", "1000")
	e.must("run", "-d", "--name", "web", "-p", "127.0.0.1::80", img, "sleep", "1000")
	e.must("run", "-d", "--name", "again", "--restart", "always", img, "sleep", "1000")
	pids := map[string]string{}
	for _, name := range []string{"always", "web", "again"} {
		pids[name] = e.must("inspect", "-f", "{{.State.Pid}}", name)
	}

	// Each command finds the disk full, whatever the last one gave back.
	fill(t, disk)
	e.must("stop", "-t", "1", "always")
	// Unrecorded, the stop would be undone by the restart policy.
	time.Sleep(300 * time.Millisecond)
	if got := e.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "always"); got != "exited 137" {
		t.Errorf("after stop on a full disk: %q, want exited 137", got)
	}
	for _, name := range []string{"web", "again", "always"} {
		fill(t, disk)
		e.must("rm", "-f", name)
	}
	for name, pid := range pids {
		if _, err := os.Stat("/proc/" + pid); err == nil {
			t.Errorf("the process of %s (%s) still runs", name, pid)
		}
	}
	if got := e.must("ps", "-a", "--format", "{{.Names}}"); got != "keep" {
		t.Errorf("ps -a after rm -f on a full disk: %q, want only keep", got)
	}
	filepath.WalkDir(filepath.Join(dir, "containers"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	after, err := os.ReadFile(filepath.Join(dir, "containers", e.must("inspect", "-f", "{{.Id}}", "keep"), "state.json"))
	if err != nil || !bytes.Equal(after, keepState) {
		t.Errorf("the state of the untouched container changed: %v\n%s\nwas\n%s", err, after, keepState)
	}
	if got := e.must("images", "--format", "{{.Repository}}:{{.Tag}}"); got != img {
		t.Errorf("images after the full disk: %q, want %s", got, img)
	}
}

// fill fills the file system at dir to the last block: a megabyte at a
// time, then a page at a time, until not one more fits.
func fill(t *testing.T, dir string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for _, chunk := range [][]byte{buf, buf[:4096]} {
		for {
			f, err := os.CreateTemp(dir, "fill-*")
			if err != nil {
				t.Fatalf("fill: %v", err)
			}
			for err == nil {
				_, err = f.Write(chunk)
			}
			f.Close()
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			if fi, _ := os.Stat(f.Name()); fi == nil || fi.Size() == 0 {
				break
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "probe"), []byte{1}, 0o600); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("the disk is not full: a 1-byte write gives %v", err)
	}
	os.Remove(filepath.Join(dir, "probe"))
}

// unfill removes what fill wrote.
func unfill(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, "fill*"))
	for _, n := range names {
		os.Remove(n)
	}
}

// TestRemovingIsNeverStarted: a container that a killed `rm -f` left
// marked for removal is not started again, not even by `start --all`,
// which starts what restart policies want running after a reboot; ps
// shows it as Docker does, and a new `rm -f` finishes the removal. The
// state a killed removal leaves is written here as it would have been.
func TestRemovingIsNeverStarted(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	id := e.must("create", "--name", "doomed", "--network", "none", "--restart", "always", img, "true")
	path := filepath.Join(e.root, "containers", id, "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	marked := strings.Replace(string(b), `"status": "created"`, `"status": "removing"`, 1)
	if marked == string(b) {
		t.Fatalf("state.json has no created status: %s", b)
	}
	if err := os.WriteFile(path, []byte(marked), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := e.run("start", "--all"); code != 0 || strings.TrimSpace(out+errOut) != "" {
		t.Errorf("start --all with a container being removed: exit %d, %q %q; want 0 and nothing started", code, out, errOut)
	}
	e.fails("being removed", "restart", "doomed")
	if got := e.must("ps", "-a", "--format", "{{.Names}}: {{.Status}}"); got != "doomed: Removal In Progress" {
		t.Errorf("ps -a: %q, want doomed: Removal In Progress", got)
	}
	e.must("rm", "-f", "doomed")
	if ids := e.must("ps", "-aq"); ids != "" {
		t.Fatalf("rm -f left %s", ids)
	}
}
