package engine

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
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
	tw.Close()
	cmd := e.cmd("cp", "-", "box:/tmp")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cp - with a link through /tmp/abs: %v: %s", err, out)
	}
	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "up", Typeflag: tar.TypeLink, Linkname: "../../../../../../etc/passwd"})
	tw.Close()
	cmd = e.cmd("cp", "-", "box:/tmp")
	cmd.Stdin = &buf
	// This link's target is /tmp/etc/passwd, which is not there: one
	// line says so.
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

// TestCpArchiveLinks: a tar stream fed to cp - whose later entries would
// be written through a symbolic link it made that cannot be followed in
// the container (a /proc link, one to nothing, a loop) is refused in one
// line naming the entry and the link, and nothing it added is left; a
// stream cut short is refused the same way. Links that climb above the
// root stay inside it, as the kernel resolves them there.
func TestCpArchiveLinks(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "box", "--network", "none", img, "sleep", "1000")
	type entry struct{ name, link, data string }
	archive := func(entries ...entry) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, en := range entries {
			h := &tar.Header{Name: en.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(en.data))}
			if en.link != "" {
				h = &tar.Header{Name: en.name, Typeflag: tar.TypeSymlink, Linkname: en.link}
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(en.data))
		}
		tw.Close()
		return buf.Bytes()
	}
	cp := func(dir string, tarball []byte) (string, error) {
		t.Helper()
		e.must("exec", "box", "mkdir", "-p", dir)
		cmd := e.cmd("cp", "-", "box:"+dir)
		cmd.Stdin = bytes.NewReader(tarball)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	for _, c := range []struct {
		dir, link string
		want      string
	}{
		{"/d1", "/proc/1/root/tmp", `cp: the archive was not extracted: its entry "esc/pwned": /d1/esc is a symbolic link to /proc/1/root/tmp, which needs a link of /proc, never followed as it could lead outside container box`},
		{"/d2", "/proc/self/root", `its entry "esc/pwned": /d2/esc is a symbolic link to /proc/self/root, which is not in container box`},
		{"/d3", "/nowhere", `its entry "esc/pwned": /d3/esc is a symbolic link to /nowhere, which is not in container box`},
		{"/d4", "esc", `its entry "esc/pwned": /d4/esc is a symbolic link to esc, which loops through links`},
	} {
		out, err := cp(c.dir, archive(entry{name: "a", data: "first\n"}, entry{name: "esc", link: c.link}, entry{name: "esc/pwned", data: "x"}))
		if err == nil || strings.Count(out, "\n") > 0 || !strings.Contains(out, c.want) {
			t.Errorf("cp - with esc -> %s then esc/pwned: %v\n%s\nwant one line with: %s", c.link, err, out, c.want)
		}
		if got := e.must("exec", "box", "ls", "-A", c.dir); got != "" {
			t.Errorf("cp - with esc -> %s: %s holds %q after the refusal, want nothing", c.link, c.dir, got)
		}
	}
	if got := e.must("exec", "box", "sh", "-c", "ls /tmp; ls /"); strings.Contains(got, "pwned") {
		t.Errorf("cp - wrote pwned through a link: %q", got)
	}

	// Cut short in the middle of a file: that file is not left half
	// written, nor the entry before it.
	whole := archive(entry{name: "a", data: "first\n"}, entry{name: "b", data: strings.Repeat("b", 4096)})
	out, err := cp("/d5", whole[:512+512+512+1024])
	if want := `cp: the archive was not extracted: its entry "b": the archive ends in the middle of an entry`; err == nil || strings.Count(out, "\n") > 0 || !strings.Contains(out, want) {
		t.Errorf("cp - of a cut archive: %v\n%s\nwant one line with: %s", err, out, want)
	}
	if got := e.must("exec", "box", "ls", "-A", "/d5"); got != "" {
		t.Errorf("cp - of a cut archive left %q", got)
	}

	// A relative link that climbs above the root resolves inside it.
	if out, err := cp("/d6", archive(entry{name: "up", link: "../../../../../../tmp"}, entry{name: "up/inside", data: "in\n"})); err != nil {
		t.Fatalf("cp - with up -> ../../../../../../tmp: %v: %s", err, out)
	}
	if got := e.must("exec", "box", "cat", "/tmp/inside"); got != "in" {
		t.Fatalf("up/inside landed elsewhere than the container's /tmp/inside: %q", got)
	}
	if _, err := os.Stat("/tmp/inside"); err == nil {
		t.Fatalf("cp - wrote the host's /tmp/inside")
	}
}
