package engine

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// fileCaps is a version 2 security.capability value: cap_net_raw
// permitted and effective (what `setcap cap_net_raw+ep` writes).
var fileCaps = []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// TestCpLinksXattrs: berth cp keeps hard links and extended attributes
// (user.*, security.capability) in both directions, as docker cp does
// through tar, for running and stopped containers; a hard link in a tar
// stream cannot reach outside the container.
func TestCpLinksXattrs(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "box", "--network", "none", img, "sleep", "1000")
	croot := "/proc/" + e.must("inspect", "-f", "{{.State.Pid}}", "box") + "/root"
	host := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// inode returns the inode number and link count of p.
	inode := func(p string) (uint64, uint64) {
		t.Helper()
		var st unix.Stat_t
		must(unix.Lstat(p, &st))
		return st.Ino, st.Nlink
	}
	xattr := func(p, name string) string {
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(p, name, buf)
		if err != nil {
			return "error: " + err.Error()
		}
		return string(buf[:n])
	}
	// sameFile fails unless the paths are one file with exactly that many
	// links and carry the attributes.
	sameFile := func(what string, paths []string, attrs map[string]string) {
		t.Helper()
		ino, n := inode(paths[0])
		for _, p := range paths {
			if i, m := inode(p); i != ino || m != uint64(len(paths)) || n != uint64(len(paths)) {
				t.Fatalf("%s: %s is inode %d with %d links, %s inode %d with %d; want one file with %d links", what, p, i, m, paths[0], ino, n, len(paths))
			}
			for k, v := range attrs {
				if got := xattr(p, k); got != v {
					t.Fatalf("%s: %s %s = %q, want %q", what, p, k, got, v)
				}
			}
		}
	}

	// Host to container.
	d := filepath.Join(host, "d")
	must(os.MkdirAll(filepath.Join(d, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(d, "a"), []byte("linked\n"), 0o755))
	must(os.Link(filepath.Join(d, "a"), filepath.Join(d, "b")))
	must(os.Link(filepath.Join(d, "a"), filepath.Join(d, "sub", "c")))
	must(unix.Setxattr(filepath.Join(d, "a"), "user.origin", []byte("host"), 0))
	must(unix.Setxattr(filepath.Join(d, "a"), "security.capability", fileCaps, 0))
	must(unix.Setxattr(filepath.Join(d, "sub"), "user.dir", []byte("sub"), 0))
	e.must("cp", d, "box:/tmp/d")
	in := filepath.Join(croot, "tmp", "d")
	attrs := map[string]string{"user.origin": "host", "security.capability": string(fileCaps)}
	sameFile("host to container", []string{filepath.Join(in, "a"), filepath.Join(in, "b"), filepath.Join(in, "sub", "c")}, attrs)
	if got := xattr(filepath.Join(in, "sub"), "user.dir"); got != "sub" {
		t.Fatalf("host to container: directory attribute %q", got)
	}
	// The container sees the same.
	if got := e.must("exec", "box", "sh", "-c", "stat -c %i:%h /tmp/d/a /tmp/d/b /tmp/d/sub/c | uniq | wc -l; stat -c %h /tmp/d/b"); got != "1\n3" {
		t.Fatalf("in the container: %q", got)
	}

	// Container to host.
	e.must("exec", "box", "sh", "-c", "mkdir -p /tmp/e/x && echo made > /tmp/e/f && ln /tmp/e/f /tmp/e/x/g")
	must(unix.Setxattr(filepath.Join(croot, "tmp", "e", "f"), "user.origin", []byte("container"), 0))
	must(unix.Setxattr(filepath.Join(croot, "tmp", "e", "f"), "security.capability", fileCaps, 0))
	back := filepath.Join(host, "back")
	e.must("cp", "box:/tmp/e", back)
	attrs = map[string]string{"user.origin": "container", "security.capability": string(fileCaps)}
	sameFile("container to host", []string{filepath.Join(back, "f"), filepath.Join(back, "x", "g")}, attrs)
	if b, _ := os.ReadFile(filepath.Join(back, "x", "g")); string(b) != "made\n" {
		t.Fatalf("container to host: content %q", b)
	}

	// A hard link in a tar stream, climbing out or through a symbolic
	// link to /etc, stays inside the container.
	e.must("exec", "box", "ln", "-s", "/etc", "/tmp/abs")
	var hostPasswd unix.Stat_t
	must(unix.Stat("/etc/passwd", &hostPasswd))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "through", Typeflag: tar.TypeLink, Linkname: "abs/passwd"})
	tw.WriteHeader(&tar.Header{Name: "up", Typeflag: tar.TypeLink, Linkname: "../../../../../../etc/passwd"})
	tw.Close()
	cmd := e.cmd("cp", "-", "box:/tmp")
	cmd.Stdin = &buf
	// The second link's target is /tmp/etc/passwd, which is not there:
	// one line says so.
	out, err := cmd.CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("has no /tmp/etc/passwd to make /tmp/up a hard link of")) || bytes.Count(bytes.TrimSpace(out), []byte("\n")) > 0 {
		t.Fatalf("cp - with a link to a missing file: %v: %s", err, out)
	}
	var after unix.Stat_t
	must(unix.Stat("/etc/passwd", &after))
	if after.Nlink != hostPasswd.Nlink {
		t.Fatalf("cp - linked the host's /etc/passwd (%d links, was %d): %s", after.Nlink, hostPasswd.Nlink, out)
	}
	if got := e.must("exec", "box", "sh", "-c", "stat -c %i /tmp/through /etc/passwd | uniq | wc -l; test -e /tmp/up || echo no up"); got != "1\nno up" {
		t.Fatalf("links through the container's /tmp/abs: %q", got)
	}

	// A stopped container: its copy of the host's files, and back.
	e.must("stop", "-t", "0", "box")
	stopped := filepath.Join(host, "stopped")
	e.must("cp", "box:/tmp/d", stopped)
	attrs = map[string]string{"user.origin": "host", "security.capability": string(fileCaps)}
	sameFile("out of a stopped container", []string{filepath.Join(stopped, "a"), filepath.Join(stopped, "b"), filepath.Join(stopped, "sub", "c")}, attrs)
	e.must("cp", back, "box:/tmp/back")
	e.must("start", "box")
	croot = "/proc/" + e.must("inspect", "-f", "{{.State.Pid}}", "box") + "/root"
	attrs = map[string]string{"user.origin": "container", "security.capability": string(fileCaps)}
	sameFile("into a stopped container", []string{filepath.Join(croot, "tmp", "back", "f"), filepath.Join(croot, "tmp", "back", "x", "g")}, attrs)
}
