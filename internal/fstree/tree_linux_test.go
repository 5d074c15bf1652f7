package fstree

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// fileCaps is a version 2 security.capability value: cap_net_raw
// permitted and effective.
var fileCaps = []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// TestLinksAndXattrs: a copy from one tree to another keeps hard links
// (within what is copied) and the kept extended attributes, and leaves the
// others out.
func TestLinksAndXattrs(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write := func(rel, content string) string {
		p := filepath.Join(src, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("d/a", "linked\n")
	for _, l := range []string{"d/b", "d/sub/c"} {
		os.MkdirAll(filepath.Dir(filepath.Join(src, l)), 0o755)
		if err := os.Link(a, filepath.Join(src, l)); err != nil {
			t.Fatal(err)
		}
	}
	lone := write("d/lone", "alone\n")
	if err := os.Link(lone, filepath.Join(src, "outside")); err != nil { // a link outside d
		t.Fatal(err)
	}
	if err := unix.Setxattr(a, "user.origin", []byte("v\x00binary"), 0); errors.Is(err, unix.ENOTSUP) {
		t.Skip("the temporary directory's file system has no user extended attributes")
	} else if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(unix.Setxattr(filepath.Join(src, "d", "sub"), "user.dir", []byte("d"), 0))
	must(unix.Setxattr(lone, "user.overlay.opaque", []byte("y"), 0)) // overlayfs's, not the file's
	root := os.Geteuid() == 0
	if root {
		must(unix.Setxattr(lone, "security.capability", fileCaps, 0))
	}

	st, err := OpenDir(src, "source", true, false)
	must(err)
	defer st.Close()
	dt, err := OpenDir(dst, "destination", true, false)
	must(err)
	defer dt.Close()
	r := st.Stream("/d", "d", false)
	defer r.Close()
	_, err = dt.Extract(r, "/", nil)
	must(err)

	ino := func(rel string) (uint64, uint64) {
		var s unix.Stat_t
		must(unix.Lstat(filepath.Join(dst, rel), &s))
		return s.Ino, s.Nlink
	}
	ia, na := ino("d/a")
	for _, l := range []string{"d/b", "d/sub/c"} {
		if i, n := ino(l); i != ia || n != 3 || na != 3 {
			t.Errorf("%s: inode %d (%d links), d/a inode %d (%d links): want one file with 3 links", l, i, n, ia, na)
		}
	}
	if _, n := ino("d/lone"); n != 1 {
		t.Errorf("d/lone has %d links; its other name was not copied", n)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "d/sub/c")); string(b) != "linked\n" {
		t.Errorf("d/sub/c: %q", b)
	}
	get := func(rel, name string) (string, error) {
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(filepath.Join(dst, rel), name, buf)
		return string(buf[:max(n, 0)]), err
	}
	for _, c := range []struct{ rel, name, want string }{{"d/a", "user.origin", "v\x00binary"}, {"d/b", "user.origin", "v\x00binary"}, {"d/sub", "user.dir", "d"}} {
		if v, err := get(c.rel, c.name); err != nil || v != c.want {
			t.Errorf("%s %s = %q, %v; want %q", c.rel, c.name, v, err, c.want)
		}
	}
	if _, err := get("d/lone", "user.overlay.opaque"); !errors.Is(err, unix.ENODATA) {
		t.Errorf("user.overlay.opaque copied: %v", err)
	}
	if root {
		if v, err := get("d/lone", "security.capability"); err != nil || v != string(fileCaps) {
			t.Errorf("security.capability = %x, %v", v, err)
		}
	}

	// In the stream: the first name carries the content, the others link
	// to it by their names in the stream.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_, err = st.Archive(tw, "/d", "", false)
	must(err)
	tw.Close()
	tr := tar.NewReader(&buf)
	first, links := "", 0
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		switch {
		case h.Typeflag == tar.TypeLink:
			links++
			if h.Linkname != first || h.Size != 0 {
				t.Errorf("link %s -> %s (size %d), want -> %s", h.Name, h.Linkname, h.Size, first)
			}
		case h.Typeflag == tar.TypeReg && h.PAXRecords["SCHILY.xattr.user.origin"] != "":
			first = h.Name
		}
	}
	if links != 2 {
		t.Errorf("%d hard link entries, want 2", links)
	}
}
