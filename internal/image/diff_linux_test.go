package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	gzip "github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// diffCap is a security.capability value (revision 2, effective) granting
// CAP_NET_BIND_SERVICE.
var diffCap = []byte{1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// diffTree makes in dir what a container's upper directory could hold:
// owners, set-user-ID, a hard link pair, a symlink out of the tree, a fifo,
// two whiteouts sharing an inode (as overlayfs makes them), an opaque
// directory with an overlayfs attribute that is no layer content, extended
// attributes and, if withSocket, a socket. Every time is a whole second.
func diffTree(t *testing.T, dir string, withSocket bool) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	file := func(name, body string, mode os.FileMode, uid, gid int) {
		t.Helper()
		p := filepath.Join(dir, name)
		must(os.WriteFile(p, []byte(body), 0o600))
		must(os.Lchown(p, uid, gid))
		must(os.Chmod(p, mode))
	}
	for _, d := range []string{"a", "bin", "opq", "x"} {
		must(os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	must(os.Chown(filepath.Join(dir, "a"), 1000, 1000))
	must(os.Chmod(filepath.Join(dir, "a"), 0o750))
	file("bin/su", "su", 0o755|os.ModeSetuid, 0, 0)
	must(unix.Chmod(filepath.Join(dir, "bin/su"), 0o4755))
	file("a/file", "hello", 0o640, 1000, 1001)
	file("a/hard1", "linked", 0o644, 0, 0)
	must(os.Link(filepath.Join(dir, "a/hard1"), filepath.Join(dir, "a/hard2")))
	must(os.Symlink("/etc/passwd", filepath.Join(dir, "link")))
	must(os.Lchown(filepath.Join(dir, "link"), 7, 8))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(unix.Mknod(filepath.Join(dir, "gone"), unix.S_IFCHR, 0))
	must(os.Link(filepath.Join(dir, "gone"), filepath.Join(dir, "a/gone2")))
	must(unix.Setxattr(filepath.Join(dir, "opq"), "trusted.overlay.opaque", []byte("y"), 0))
	must(unix.Setxattr(filepath.Join(dir, "opq"), "trusted.overlay.impure", []byte("y"), 0))
	file("opq/new", "n", 0o644, 0, 0)
	file("x/user", "u", 0o644, 0, 0)
	must(unix.Setxattr(filepath.Join(dir, "x/user"), "user.test", []byte("value"), 0))
	file("x/cap", "c", 0o755, 0, 0)
	if err := unix.Setxattr(filepath.Join(dir, "x/cap"), "security.capability", diffCap, 0); err != nil {
		t.Logf("security.capability not settable here: %v", err)
	}
	if withSocket {
		l, err := net.Listen("unix", filepath.Join(dir, "sock"))
		if err != nil {
			t.Fatalf("socket (path too long?): %v", err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()
	}
	// Times last, deepest first, so that no later change moves them.
	var paths []string
	filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	for i, p := range slices.Backward(paths) {
		ts := unix.NsecToTimespec(time.Unix(1700000000+int64(i)*1000, 0).UnixNano())
		must(unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// treeOf describes every entry under dir: type, mode, owner, mtime, size,
// content, link target, device, extended attributes and, for hard links,
// the first path of the inode. Sockets are left out if noSockets.
func treeOf(t *testing.T, dir string, noSockets bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		typ := st.Mode & unix.S_IFMT
		if typ == unix.S_IFSOCK && noSockets {
			return nil
		}
		if typ == unix.S_IFCHR && st.Rdev == 0 {
			out[rel] = "whiteout" // its owner, mode and times mean nothing
			return nil
		}
		desc := fmt.Sprintf("%o %d:%d mtime=%d rdev=%d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Rdev)
		if typ != unix.S_IFDIR { // a directory's size depends on the file system
			desc += fmt.Sprintf(" size=%d", st.Size)
		}
		if typ != unix.S_IFDIR && st.Nlink > 1 {
			if first, ok := inodes[st.Ino]; ok {
				desc += " link=" + first
			} else {
				inodes[st.Ino] = rel
			}
		}
		switch typ {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " content=" + string(b)
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " target=" + target
		}
		buf := make([]byte, 4096)
		n, _ := unix.Llistxattr(p, buf)
		names := splitNul(buf[:max(n, 0)])
		slices.Sort(names)
		for _, name := range names {
			v := make([]byte, 4096)
			m, _ := unix.Lgetxattr(p, name, v)
			desc += fmt.Sprintf(" %s=%q", name, v[:max(m, 0)])
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffDir makes an empty directory on the store's file system.
func diffDir(t *testing.T, s *Store) string {
	t.Helper()
	dir, err := os.MkdirTemp(s.root, "upper-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// diffTreeDiff reports how two trees differ.
func diffTreeDiff(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			t.Errorf("%s %s:\n got %s\nwant %s", what, k, got[k], want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s %s: unexpected %s", what, k, got[k])
		}
	}
}

func TestCommitDiffRoundTrip(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	ctx := context.Background()
	dir := diffDir(t, s)
	diffTree(t, dir, true)
	want := treeOf(t, dir, false)
	// overlayfs' own attributes are no layer content.
	want["opq"] = string(bytes.Replace([]byte(want["opq"]), []byte(` trusted.overlay.impure="y"`), nil, 1))

	l, err := s.CommitDiff(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("dir after CommitDiff: %v, %v; want it empty", entries, err)
	}
	if l.ChainID != l.DiffID || l.MediaType != LayerMediaType || !s.snaps.Has(l.ChainID) {
		t.Fatalf("layer %+v, snapshot there: %v", l, s.snaps.Has(l.ChainID))
	}
	diffTreeDiff(t, "snapshot", treeOf(t, s.snaps.Path(l.ChainID), false), want)

	blob, err := os.ReadFile(s.blobs.path(l.Digest))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(blob) != l.Digest || int64(len(blob)) != l.Size || digest.FromBytes(data) != l.DiffID {
		t.Errorf("layer %+v; blob is %s (%d bytes), tar %s", l, digest.FromBytes(blob), len(blob), digest.FromBytes(data))
	}
	headers := map[string]*tar.Header{}
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		headers[hdr.Name] = hdr
		names = append(names, hdr.Name)
		for k := range hdr.PAXRecords {
			if bytes.HasPrefix([]byte(k), []byte("SCHILY.xattr.trusted.overlay.")) {
				t.Errorf("%s: overlayfs attribute %s in the layer", hdr.Name, k)
			}
		}
	}
	for name, typ := range map[string]byte{
		"./": tar.TypeDir, ".wh.gone": tar.TypeReg, "a/.wh.gone2": tar.TypeReg, "opq/.wh..wh..opq": tar.TypeReg,
		"a/hard1": tar.TypeReg, "a/hard2": tar.TypeLink, "link": tar.TypeSymlink, "fifo": tar.TypeFifo, "bin/su": tar.TypeReg,
	} {
		if h := headers[name]; h == nil || h.Typeflag != typ {
			t.Errorf("tar entry %s = %+v, want type %c", name, h, typ)
		}
	}
	if h := headers["a/hard2"]; h != nil && h.Linkname != "a/hard1" {
		t.Errorf("a/hard2 links to %q", h.Linkname)
	}
	if h := headers["link"]; h != nil && (h.Linkname != "/etc/passwd" || h.Uid != 7 || h.Gid != 8) {
		t.Errorf("link = %+v", h)
	}
	if h := headers["bin/su"]; h != nil && h.Mode != 0o4755 {
		t.Errorf("bin/su mode %o", h.Mode)
	}
	if h := headers["x/user"]; h == nil || h.PAXRecords["SCHILY.xattr.user.test"] != "value" {
		t.Errorf("x/user = %+v", h)
	}
	if _, ok := headers["sock"]; ok {
		t.Error("a socket is in the layer")
	}

	// The tar unpacks to the same tree, and the same DiffID.
	again := t.TempDir()
	st, err := ApplyLayer(ctx, again, bytes.NewReader(blob))
	if err != nil || st.DiffID != l.DiffID {
		t.Fatalf("ApplyLayer = %s, %v; want %s", st.DiffID, err, l.DiffID)
	}
	delete(want, "sock")
	diffTreeDiff(t, "unpacked", treeOf(t, again, false), want)
}

func TestCommitDiffTwice(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	ctx := context.Background()
	first, second := diffDir(t, s), diffDir(t, s)
	diffTree(t, first, false)
	diffTree(t, second, false)
	want := treeOf(t, second, false)
	l1, err := s.CommitDiff(ctx, first, "")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := s.CommitDiff(ctx, second, "")
	if err != nil || l2 != l1 {
		t.Fatalf("second CommitDiff = %+v, %v; want %+v", l2, err, l1)
	}
	diffTreeDiff(t, "second dir", treeOf(t, second, false), want)

	// On top of a parent: another chain ID, with the parent recorded.
	third := diffDir(t, s)
	os.WriteFile(filepath.Join(third, "f"), []byte("x"), 0o644)
	l3, err := s.CommitDiff(ctx, third, l1.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.snaps.Parent(l3.ChainID); err != nil || p != l1.ChainID || l3.ChainID == l3.DiffID {
		t.Errorf("layer %+v has parent %s, %v", l3, p, err)
	}
	if _, err := s.CommitDiff(ctx, diffDir(t, s), digest.FromString("no such layer")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("CommitDiff on a missing parent = %v", err)
	}
}

func TestCommitDiffEmpty(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	l, err := s.CommitDiff(context.Background(), diffDir(t, s), "")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(s.blobs.path(l.Digest))
	defer f.Close()
	if st, err := ApplyLayer(context.Background(), t.TempDir(), f); err != nil || st.DiffID != l.DiffID || st.Usage != 0 {
		t.Errorf("ApplyLayer of the empty layer = %+v, %v", st, err)
	}
}

// TestCommitDiffOtherFileSystem commits a directory that cannot be moved
// into the store: the snapshot is unpacked from the blob, dir stays.
func TestCommitDiffOtherFileSystem(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	diffTree(t, dir, false)
	want := treeOf(t, dir, false)
	l, err := s.CommitDiff(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	diffTreeDiff(t, "dir", treeOf(t, dir, false), want)
	want["opq"] = string(bytes.Replace([]byte(want["opq"]), []byte(` trusted.overlay.impure="y"`), nil, 1))
	diffTreeDiff(t, "snapshot", treeOf(t, s.snaps.Path(l.ChainID), false), want)
}

func TestCommitDiffRefuses(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	for name, tc := range map[string]struct {
		make func(dir string) error
		want error
	}{
		"whiteout-like name": {func(dir string) error {
			return os.WriteFile(filepath.Join(dir, ".wh.x"), nil, 0o644)
		}, errdefs.ErrInvalidArgument},
		"redirected directory": {func(dir string) error {
			os.Mkdir(filepath.Join(dir, "d"), 0o755)
			return unix.Setxattr(filepath.Join(dir, "d"), "trusted.overlay.redirect", []byte("/old"), 0)
		}, errdefs.ErrNotImplemented},
	} {
		t.Run(name, func(t *testing.T) {
			dir := diffDir(t, s)
			if err := tc.make(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CommitDiff(context.Background(), dir, ""); !errors.Is(err, tc.want) {
				t.Errorf("CommitDiff = %v, want %v", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("dir holds %v after a refusal", entries)
			}
		})
	}
}

// TestDiffWalkerSwapped replaces a file between its stat and its open: the
// walker notices instead of storing another file's content.
func TestDiffWalkerSwapped(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("mine"), 0o644)
	os.WriteFile(filepath.Join(dir, "other"), []byte("secret"), 0o644)
	w, err := newDiffWalker(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	var st unix.Stat_t
	unix.Fstatat(int(w.root.Fd()), "f", &st, unix.AT_SYMLINK_NOFOLLOW)
	os.Rename(filepath.Join(dir, "other"), filepath.Join(dir, "f"))
	if _, err := w.open(int(w.root.Fd()), "f", "f", &st, 0); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("open of a swapped file = %v", err)
	}
	os.Symlink("/etc/passwd", filepath.Join(dir, "l"))
	unix.Fstatat(int(w.root.Fd()), "l", &st, unix.AT_SYMLINK_NOFOLLOW)
	if _, err := w.open(int(w.root.Fd()), "l", "l", &st, 0); err == nil {
		t.Error("open followed a symlink")
	}
}

// TestCommitDiffOverlayUpper commits what a real overlay mount wrote into
// its upper directory, and mounts the result on its parent.
func TestCommitDiffOverlayUpper(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	ctx := context.Background()
	base := diffDir(t, s)
	for _, p := range []string{"a/x", "a/y", "d/old", "f"} {
		os.MkdirAll(filepath.Join(base, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(base, p), []byte(p), 0o644)
	}
	lower, err := s.CommitDiff(ctx, base, "")
	if err != nil {
		t.Fatal(err)
	}
	mount := func(opts string) string {
		t.Helper()
		merged := t.TempDir()
		if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
			t.Skipf("cannot mount overlay here: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
		return merged
	}
	upper, work := diffDir(t, s), diffDir(t, s)
	merged := mount("lowerdir=" + s.snaps.Path(lower.ChainID) + ",upperdir=" + upper + ",workdir=" + work)
	for _, err := range []error{
		os.Remove(filepath.Join(merged, "a/x")),
		os.RemoveAll(filepath.Join(merged, "d")),
		os.Mkdir(filepath.Join(merged, "d"), 0o755),
		os.WriteFile(filepath.Join(merged, "d/new"), []byte("new"), 0o644),
		os.Chmod(filepath.Join(merged, "f"), 0o600),
		os.WriteFile(filepath.Join(merged, "g"), []byte("g"), 0o644),
		os.Link(filepath.Join(merged, "g"), filepath.Join(merged, "g2")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Unmount(merged, 0); err != nil {
		t.Fatal(err)
	}
	top, err := s.CommitDiff(ctx, upper, lower.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(s.snaps.Path(top.ChainID), func(p string, _ fs.DirEntry, err error) error {
		buf := make([]byte, 4096)
		n, _ := unix.Llistxattr(p, buf)
		for _, name := range splitNul(buf[:max(n, 0)]) {
			if name != "trusted.overlay.opaque" {
				t.Errorf("%s keeps %s", p, name)
			}
		}
		return err
	})
	view := mount("lowerdir=" + s.snaps.Path(top.ChainID) + ":" + s.snaps.Path(lower.ChainID))
	want := map[string][]string{".": {"a", "d", "f", "g", "g2"}, "a": {"y"}, "d": {"new"}}
	for dir, names := range want {
		entries, err := os.ReadDir(filepath.Join(view, dir))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if !slices.Equal(got, names) {
			t.Errorf("%s = %v, want %v", dir, got, names)
		}
	}
	var f, g, g2 unix.Stat_t
	unix.Stat(filepath.Join(view, "f"), &f)
	unix.Stat(filepath.Join(view, "g"), &g)
	unix.Stat(filepath.Join(view, "g2"), &g2)
	if f.Mode&0o777 != 0o600 || g.Ino != g2.Ino {
		t.Errorf("f mode %o; g and g2 inodes %d %d", f.Mode&0o777, g.Ino, g2.Ino)
	}
}
