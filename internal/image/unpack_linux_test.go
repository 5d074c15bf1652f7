package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// unpackTestEntry is one entry of a tar built in a test.
type unpackTestEntry struct {
	tar.Header
	Body string
}

func unpackFile(name, body string) unpackTestEntry {
	return unpackTestEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, Body: body}
}

func unpackDir(name string) unpackTestEntry {
	return unpackTestEntry{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func unpackSymlink(name, target string) unpackTestEntry {
	return unpackTestEntry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func unpackHardlink(name, target string) unpackTestEntry {
	return unpackTestEntry{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

// unpackTestTar returns a tar stream of entries.
func unpackTestTar(t testing.TB, entries ...unpackTestEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		h.Size = int64(len(e.Body))
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.Body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func unpackNeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unpacking layers needs root: chown, mknod and trusted.* extended attributes")
	}
}

// unpackSandbox returns a layer directory and, beside it, a sentinel
// directory holding one file, "keep", that no layer may reach.
func unpackSandbox(t testing.TB) (base, layer, sentinel string) {
	t.Helper()
	base = t.TempDir()
	layer, sentinel = filepath.Join(base, "layer"), filepath.Join(base, "sentinel")
	for _, d := range []string{layer, sentinel} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sentinel, "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	return base, layer, sentinel
}

// unpackAssertConfined fails if anything beside or in the sentinel changed.
func unpackAssertConfined(t testing.TB, base, sentinel string) {
	t.Helper()
	names := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	if got := names(base); !slices.Equal(got, []string{"layer", "sentinel"}) {
		t.Errorf("outside the layer: %v", got)
	}
	if got := names(sentinel); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("sentinel holds %v", got)
	}
	var st unix.Stat_t
	keep := filepath.Join(sentinel, "keep")
	if err := unix.Lstat(keep, &st); err != nil || st.Nlink != 1 || st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Errorf("sentinel file changed: %+v, %v", st, err)
	}
	if b, _ := os.ReadFile(keep); string(b) != "keep" {
		t.Errorf("sentinel content %q", b)
	}
	for _, p := range []string{sentinel, keep} {
		if n, _ := unix.Llistxattr(p, make([]byte, 1024)); n > 0 {
			buf := make([]byte, n)
			unix.Llistxattr(p, buf)
			if strings.Contains(string(buf), "overlay") {
				t.Errorf("%s got extended attributes %q", p, buf)
			}
		}
	}
}

func TestApplyLayerHostile(t *testing.T) {
	unpackNeedRoot(t)
	ctx := context.Background()
	withXattr := unpackFile("x", "")
	withXattr.PAXRecords = map[string]string{"SCHILY.xattr.trusted.overlay.redirect": "/sentinel"}
	// Layers are built with the sentinel's absolute path, known per test.
	tests := []struct {
		name    string
		layer   func(sentinel string) []unpackTestEntry
		wantErr string // substring of the error, "" if the layer is fine
		check   func(t *testing.T, layer string)
	}{
		{"dot-dot", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackFile("../../etc/passwd", "root::0:0::/:/bin/sh\n")}
		}, `"../../etc/passwd": ".." in a name`, nil},
		{"dot-dot to sentinel", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackFile("../sentinel/keep", "owned")}
		}, `"../sentinel/keep"`, nil},
		{"dot-dot inside", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackDir("a/"), unpackFile("a/../../sentinel/x", "")}
		}, `"a/../../sentinel/x"`, nil},
		{"absolute dot-dot", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackFile("/../sentinel/x", "")}
		}, `"/../sentinel/x"`, nil},
		{"absolute is normalised into the layer", func(s string) []unpackTestEntry {
			return []unpackTestEntry{unpackFile("/abs", "in"), unpackFile(s+"/keep", "in")}
		}, "", func(t *testing.T, layer string) {
			if b, err := os.ReadFile(filepath.Join(layer, "abs")); err != nil || string(b) != "in" {
				t.Errorf("/abs: %q, %v", b, err)
			}
		}},
		{"write through absolute symlink", func(s string) []unpackTestEntry {
			return []unpackTestEntry{unpackSymlink("evil", s), unpackFile("evil/file", "owned")}
		}, `"evil/file": "evil" is a symbolic link`, nil},
		{"write through relative symlink", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackSymlink("evil", "../sentinel"), unpackFile("evil/file", "owned")}
		}, `"evil/file": "evil" is a symbolic link`, nil},
		{"overwrite through symlink", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackSymlink("evil", "../sentinel"), unpackFile("evil/keep", "owned")}
		}, `"evil/keep"`, nil},
		{"mkdir through symlink", func(s string) []unpackTestEntry {
			return []unpackTestEntry{unpackSymlink("evil", s), unpackDir("evil/sub/")}
		}, `"evil/sub/"`, nil},
		{"symlink to dot-dot chain", func(string) []unpackTestEntry {
			return []unpackTestEntry{
				unpackSymlink("up", ".."),
				unpackDir("d/"),
				unpackSymlink("d/up", "../up"),
				unpackFile("d/up/up/sentinel/x", "owned"),
			}
		}, `"d/up/up/sentinel/x": "d/up" is a symbolic link`, nil},
		{"symlink in a deeper component", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackDir("a/b/"), unpackSymlink("a/b/c", "../../../sentinel"), unpackFile("a/b/c/x", "")}
		}, `"a/b/c" is a symbolic link`, nil},
		{"directory replaced by symlink", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackDir("d/"), unpackSymlink("d", "../sentinel"), unpackFile("d/x", "owned")}
		}, `"d/x": "d" is a symbolic link`, nil},
		{"hard link to absolute outside file", func(s string) []unpackTestEntry {
			return []unpackTestEntry{unpackHardlink("shadow", "/etc/shadow"), unpackHardlink("keep", s+"/keep")}
		}, `"shadow": hard link target "/etc/shadow" is not in the layer`, nil},
		{"hard link with dot-dot", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackHardlink("keep", "../sentinel/keep")}
		}, `"keep": hard link target "../sentinel/keep"`, nil},
		{"hard link through symlink", func(s string) []unpackTestEntry {
			return []unpackTestEntry{unpackSymlink("evil", s), unpackHardlink("keep", "evil/keep")}
		}, `"keep": hard link target "evil/keep": "evil" is a symbolic link`, nil},
		{"hard link to a symlink pointing out links the symlink", func(s string) []unpackTestEntry {
			return []unpackTestEntry{unpackSymlink("evil", s+"/keep"), unpackHardlink("alias", "evil"), unpackFile("alias", "x")}
		}, "", func(t *testing.T, layer string) {
			if target, err := os.Readlink(filepath.Join(layer, "evil")); err != nil || !strings.HasSuffix(target, "sentinel/keep") {
				t.Errorf("evil: %q, %v", target, err)
			}
		}},
		{"replace symlink by file", func(s string) []unpackTestEntry {
			return []unpackTestEntry{unpackSymlink("evil", s+"/keep"), unpackFile("evil", "mine")}
		}, "", func(t *testing.T, layer string) {
			if b, err := os.ReadFile(filepath.Join(layer, "evil")); err != nil || string(b) != "mine" {
				t.Errorf("evil: %q, %v", b, err)
			}
		}},
		{"whiteout through symlink", func(s string) []unpackTestEntry {
			return []unpackTestEntry{unpackSymlink("evil", s), unpackFile("evil/.wh.keep", "")}
		}, `"evil/.wh.keep": "evil" is a symbolic link`, nil},
		{"opaque through symlink", func(s string) []unpackTestEntry {
			return []unpackTestEntry{unpackSymlink("evil", s), unpackFile("evil/.wh..wh..opq", "")}
		}, `"evil/.wh..wh..opq": "evil" is a symbolic link`, nil},
		{"whiteout of dot-dot", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackFile(".wh...", "")}
		}, `".wh...": whiteout of an invalid name`, nil},
		{"root as a file", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackFile(".", "x")}
		}, `".": the layer's root must be a directory`, nil},
		{"overlay-private xattr", func(string) []unpackTestEntry {
			return []unpackTestEntry{withXattr}
		}, `"x": extended attribute trusted.overlay.redirect is private to overlayfs`, nil},
		{"device nodes are data", func(string) []unpackTestEntry {
			return []unpackTestEntry{{Header: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Devmajor: 8, Mode: 0o600}}}
		}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, layer, sentinel := unpackSandbox(t)
			_, err := ApplyLayer(ctx, layer, bytes.NewReader(unpackTestTar(t, tt.layer(sentinel)...)))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ApplyLayer: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("ApplyLayer succeeded, want %s", tt.wantErr)
			case err != nil:
				t.Logf("error: %v", err)
				if !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error = %v, want one line with %s", err, tt.wantErr)
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("error %v is not an invalid argument", err)
				}
			}
			if tt.check != nil {
				tt.check(t, layer)
			}
			unpackAssertConfined(t, base, sentinel)
		})
	}
}

func TestApplyLayerRoundTrip(t *testing.T) {
	unpackNeedRoot(t)
	t0 := time.Date(2020, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	at := func(e unpackTestEntry, uid, gid int, mode int64, mtime time.Time) unpackTestEntry {
		e.Uid, e.Gid, e.Mode, e.ModTime, e.Format = uid, gid, mode, mtime, tar.FormatPAX
		return e
	}
	xattrFile := at(unpackFile("etc/attrs", "x"), 0, 0, 0o600, t0)
	xattrFile.PAXRecords = map[string]string{
		"SCHILY.xattr.user.berth":    "user value",
		"SCHILY.xattr.trusted.berth": "trusted\x00value",
	}
	chr := at(unpackTestEntry{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Devmajor: 1, Devminor: 3}}, 0, 0, 0o666, t0)
	blk := at(unpackTestEntry{Header: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop7", Devmajor: 7, Devminor: 7}}, 0, 6, 0o660, t0)
	fifo := at(unpackTestEntry{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo"}}, 12, 34, 0o620, t0)
	data := unpackTestTar(t,
		at(unpackDir("./"), 0, 0, 0o755, t0.Add(-time.Hour)),
		at(unpackDir("etc/"), 0, 0, 0o755, t0.Add(time.Minute)),
		at(unpackFile("etc/hostname", "berth\n"), 0, 0, 0o644, t0),
		xattrFile,
		at(unpackDir("tmp/"), 0, 0, 0o1777, t0),
		at(unpackDir("home/u/"), 1000, 1000, 0o700, t0.Add(2*time.Minute)),
		at(unpackFile("home/u/.profile", "export A=1\n"), 1000, 1000, 0o600, t0),
		at(unpackFile("bin/su", "su"), 0, 0, 0o4755, t0),
		at(unpackFile("bin/wall", "wall"), 0, 5, 0o2755, t0),
		at(unpackSymlink("bin/sh", "/bin/busybox"), 0, 0, 0o777, t0.Add(3*time.Minute)),
		unpackHardlink("bin/hostname-link", "etc/hostname"),
		chr, blk, fifo,
		at(unpackDir("emptydir/"), 4242, 4343, 0o750, t0.Add(4*time.Minute)),
	)
	layer := t.TempDir()
	st, err := ApplyLayer(context.Background(), layer, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// Usage: hostname (6, hard-linked), attrs (1), .profile (11), su (2), wall (4).
	if want := (LayerStats{DiffID: digest.FromBytes(data), TarSize: int64(len(data)), Usage: 24}); st != want {
		t.Errorf("ApplyLayer = %+v; want %+v", st, want)
	}

	type want struct {
		typ      uint32
		perm     uint32
		uid, gid uint32
		mtime    time.Time
		rdev     [2]uint32
		content  string
	}
	cases := map[string]want{
		".":                 {unix.S_IFDIR, 0o755, 0, 0, t0.Add(-time.Hour), [2]uint32{}, ""},
		"etc":               {unix.S_IFDIR, 0o755, 0, 0, t0.Add(time.Minute), [2]uint32{}, ""},
		"etc/hostname":      {unix.S_IFREG, 0o644, 0, 0, t0, [2]uint32{}, "berth\n"},
		"etc/attrs":         {unix.S_IFREG, 0o600, 0, 0, t0, [2]uint32{}, "x"},
		"tmp":               {unix.S_IFDIR, 0o1777, 0, 0, t0, [2]uint32{}, ""},
		"home/u":            {unix.S_IFDIR, 0o700, 1000, 1000, t0.Add(2 * time.Minute), [2]uint32{}, ""},
		"home/u/.profile":   {unix.S_IFREG, 0o600, 1000, 1000, t0, [2]uint32{}, "export A=1\n"},
		"bin/su":            {unix.S_IFREG, 0o4755, 0, 0, t0, [2]uint32{}, "su"},
		"bin/wall":          {unix.S_IFREG, 0o2755, 0, 5, t0, [2]uint32{}, "wall"},
		"bin/sh":            {unix.S_IFLNK, 0o777, 0, 0, t0.Add(3 * time.Minute), [2]uint32{}, ""},
		"bin/hostname-link": {unix.S_IFREG, 0o644, 0, 0, t0, [2]uint32{}, "berth\n"},
		"dev/null":          {unix.S_IFCHR, 0o666, 0, 0, t0, [2]uint32{1, 3}, ""},
		"dev/loop7":         {unix.S_IFBLK, 0o660, 0, 6, t0, [2]uint32{7, 7}, ""},
		"run/fifo":          {unix.S_IFIFO, 0o620, 12, 34, t0, [2]uint32{}, ""},
		"emptydir":          {unix.S_IFDIR, 0o750, 4242, 4343, t0.Add(4 * time.Minute), [2]uint32{}, ""},
		"bin":               {unix.S_IFDIR, 0o755, 0, 0, time.Time{}, [2]uint32{}, ""}, // implicit
	}
	for name, w := range cases {
		p := filepath.Join(layer, name)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st.Mode&unix.S_IFMT != w.typ || st.Mode&0o7777 != w.perm {
			t.Errorf("%s: mode %o, want type %o perm %o", name, st.Mode, w.typ, w.perm)
		}
		if st.Uid != w.uid || st.Gid != w.gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", name, st.Uid, st.Gid, w.uid, w.gid)
		}
		if mt := time.Unix(st.Mtim.Unix()); !w.mtime.IsZero() && !mt.Equal(w.mtime) {
			t.Errorf("%s: mtime %v, want %v", name, mt.UTC(), w.mtime)
		}
		if w.rdev != [2]uint32{} && (unix.Major(st.Rdev) != w.rdev[0] || unix.Minor(st.Rdev) != w.rdev[1]) {
			t.Errorf("%s: device %d:%d, want %d:%d", name, unix.Major(st.Rdev), unix.Minor(st.Rdev), w.rdev[0], w.rdev[1])
		}
		if w.typ == unix.S_IFREG {
			if b, err := os.ReadFile(p); err != nil || string(b) != w.content {
				t.Errorf("%s: content %q, %v", name, b, err)
			}
		}
	}
	if target, err := os.Readlink(filepath.Join(layer, "bin/sh")); err != nil || target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
	var a, b unix.Stat_t
	unix.Lstat(filepath.Join(layer, "etc/hostname"), &a)
	unix.Lstat(filepath.Join(layer, "bin/hostname-link"), &b)
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link: inodes %d, %d, nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	for name, value := range map[string]string{"user.berth": "user value", "trusted.berth": "trusted\x00value"} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(layer, "etc/attrs"), name, buf)
		if err != nil || string(buf[:n]) != value {
			t.Errorf("xattr %s = %q, %v; want %q", name, buf[:max(n, 0)], err, value)
		}
	}
}

func TestApplyLayerCompression(t *testing.T) {
	unpackNeedRoot(t)
	data := unpackTestTar(t, unpackDir("a/"), unpackFile("a/b", strings.Repeat("berth ", 1000)), unpackSymlink("c", "a/b"))
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(data)
	gw.Close()
	zw, err := zstd.NewWriter(&zs)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(data)
	zw.Close()
	for name, in := range map[string][]byte{"plain": data, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		t.Run(name, func(t *testing.T) {
			layer := t.TempDir()
			st, err := ApplyLayer(context.Background(), layer, bytes.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			if want := (LayerStats{DiffID: digest.FromBytes(data), TarSize: int64(len(data)), Usage: 6000}); st != want {
				t.Errorf("= %+v; want %+v", st, want)
			}
			if b, err := os.ReadFile(filepath.Join(layer, "a/b")); err != nil || len(b) != 6000 {
				t.Errorf("a/b: %d bytes, %v", len(b), err)
			}
		})
	}
	// A broken stream is an error, not a short layer.
	if _, err := ApplyLayer(context.Background(), t.TempDir(), bytes.NewReader(gz.Bytes()[:gz.Len()/2])); err == nil {
		t.Error("truncated gzip layer applied")
	}
}

// unpackChainID is the OCI chain ID of a layer on top of parent.
func unpackChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// unpackCommit unpacks data into store as a snapshot on top of parent and
// returns its chain ID.
func unpackCommit(t *testing.T, store *snapshot.Store, parent digest.Digest, data []byte) digest.Digest {
	t.Helper()
	id := unpackChainID(parent, digest.FromBytes(data))
	err := store.Commit(context.Background(), id, parent, func(dir string) error {
		_, err := ApplyLayer(context.Background(), dir, bytes.NewReader(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestApplyLayerOverlay(t *testing.T) {
	unpackNeedRoot(t)
	store, err := snapshot.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lower := unpackCommit(t, store, "", unpackTestTar(t,
		unpackFile("gone", "1"), unpackFile("stays", "2"),
		unpackDir("opaque/"), unpackFile("opaque/old", "3"), unpackDir("opaque/olddir/"),
		unpackDir("merged/"), unpackFile("merged/old", "4"), unpackFile("merged/gone", "5"),
		unpackDir("gonedir/"), unpackFile("gonedir/x", "6"),
	))
	upper := unpackCommit(t, store, lower, unpackTestTar(t,
		unpackFile(".wh.gone", ""),
		unpackFile(".wh.gonedir", ""),
		unpackDir("opaque/"), unpackFile("opaque/.wh..wh..opq", ""), unpackFile("opaque/new", "7"),
		unpackFile("merged/.wh.gone", ""), unpackFile("merged/new", "8"),
		unpackFile("added", "9"),
	))
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(store.Path(upper), "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout is %+v, %v; want a 0/0 character device", st, err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(store.Path(upper), "opaque"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr = %q, %v", buf[:max(n, 0)], err)
	}

	dirs, err := store.Lowerdirs(upper)
	if err != nil {
		t.Fatal(err)
	}
	merged := t.TempDir()
	if err := unix.Mount("overlay", merged, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(dirs, ":")); err != nil {
		t.Skipf("cannot mount overlay here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	list := func(dir string) []string {
		entries, err := os.ReadDir(filepath.Join(merged, dir))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	for dir, want := range map[string][]string{
		".":      {"added", "merged", "opaque", "stays"},
		"opaque": {"new"},
		"merged": {"new", "old"},
	} {
		if got := list(dir); !slices.Equal(got, want) {
			t.Errorf("merged %s = %v, want %v", dir, got, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(merged, "stays")); err != nil || string(b) != "2" {
		t.Errorf("stays = %q, %v", b, err)
	}
}

// TestApplyLayerUsage checks that the content size ApplyLayer counts is what
// the snapshot store measures by walking the tree (Commit without
// snapshot.WithSize), when later entries replace, link and remove earlier
// ones.
func TestApplyLayerUsage(t *testing.T) {
	unpackNeedRoot(t)
	store, err := snapshot.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, entries := range map[string][]unpackTestEntry{
		"plain":                {unpackDir("d/"), unpackFile("d/a", "12345"), unpackFile("b", ""), unpackSymlink("c", "d/a")},
		"links":                {unpackFile("a", "12345"), unpackHardlink("b", "a"), unpackHardlink("c", "b"), unpackHardlink("b", "a")},
		"replaced":             {unpackFile("a", "12345"), unpackFile("a", "12"), unpackDir("d/"), unpackFile("d", "123")},
		"linked then replaced": {unpackFile("a", "12345"), unpackHardlink("b", "a"), unpackFile("a", "1")},
		"linked then removed": {
			unpackFile("a", "12345"), unpackHardlink("b", "a"), unpackFile(".wh.a", ""), unpackFile(".wh.b", ""),
		},
		"directory replaced": {
			unpackDir("d/"), unpackFile("d/a", "12345"), unpackFile("d/b", "123"), unpackDir("d/e/"),
			unpackFile("d/e/c", "1234567"), unpackHardlink("keep", "d/a"), unpackFile("d", "12"),
		},
		"directory made opaque": {
			unpackDir("d/"), unpackFile("d/a", "12345"), unpackFile("d/.wh..wh..opq", ""), unpackFile("d/b", "1"),
		},
		"file replaced by a directory": {unpackFile("d", "12345"), unpackDir("d/"), unpackFile("d/a", "1")},
		"link to a symlink":            {unpackSymlink("s", "target"), unpackHardlink("l", "s")},
	} {
		t.Run(name, func(t *testing.T) {
			data := unpackTestTar(t, entries...)
			var counted int64
			id := digest.FromBytes(data)
			err := store.Commit(context.Background(), id, "", func(dir string) error {
				st, err := ApplyLayer(context.Background(), dir, bytes.NewReader(data))
				counted = st.Usage
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			info, err := store.Info(id)
			if err != nil {
				t.Fatal(err)
			}
			if counted != info.Size {
				t.Errorf("ApplyLayer counted %d bytes, the tree holds %d", counted, info.Size)
			}
		})
	}
}

// TestApplyLayerConcurrentCommit unpacks one layer from two goroutines into
// the same snapshot: both succeed and the layer is unpacked once.
func TestApplyLayerConcurrentCommit(t *testing.T) {
	unpackNeedRoot(t)
	store, err := snapshot.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := unpackTestTar(t, unpackDir("d/"), unpackFile("d/f", "x"))
	id := digest.FromBytes(data)
	var mu sync.Mutex
	applied := 0
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			err := store.Commit(context.Background(), id, "", func(dir string) error {
				mu.Lock()
				applied++
				mu.Unlock()
				_, err := ApplyLayer(context.Background(), dir, bytes.NewReader(data))
				return err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if applied != 1 || !store.Has(id) {
		t.Errorf("applied %d times, Has = %v", applied, store.Has(id))
	}
}

func TestApplyLayerCancelled(t *testing.T) {
	unpackNeedRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ApplyLayer(ctx, t.TempDir(), bytes.NewReader(unpackTestTar(t, unpackFile("a", "b"))))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ApplyLayer = %v, want cancelled", err)
	}
}

// unpackStat returns the type and permission bits, owner and content of
// name in layer.
func unpackStat(t *testing.T, layer, name string) (mode, uid, gid uint32, content string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(layer, name), &st); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		b, err := os.ReadFile(filepath.Join(layer, name))
		if err != nil {
			t.Fatal(err)
		}
		content = string(b)
	}
	return st.Mode, st.Uid, st.Gid, content
}

// TestApplyLayerReplace checks entries that replace an earlier entry of
// the same layer, and entries in directories that an earlier entry
// replaced or removed while they were open.
func TestApplyLayerReplace(t *testing.T) {
	unpackNeedRoot(t)
	owned := func(e unpackTestEntry, uid, gid int, mode int64) unpackTestEntry {
		e.Uid, e.Gid, e.Mode = uid, gid, mode
		return e
	}
	type want struct {
		name           string
		mode, uid, gid uint32
		content        string
	}
	tests := []struct {
		name    string
		entries []unpackTestEntry
		want    []want
		absent  []string
	}{
		{"file over a file of another owner", []unpackTestEntry{
			owned(unpackFile("f", "old"), 1000, 1000, 0o4755),
			owned(unpackFile("f", "new"), 0, 0, 0o644),
		}, []want{{"f", unix.S_IFREG | 0o644, 0, 0, "new"}}, nil},
		{"directory over a directory of another owner", []unpackTestEntry{
			owned(unpackDir("d/"), 1000, 1000, 0o700),
			unpackFile("d/x", "x"),
			owned(unpackDir("d/"), 0, 0, 0o755),
		}, []want{{"d", unix.S_IFDIR | 0o755, 0, 0, ""}, {"d/x", unix.S_IFREG | 0o644, 0, 0, "x"}}, nil},
		{"directory over a file", []unpackTestEntry{
			owned(unpackFile("d", "x"), 5, 5, 0o600),
			unpackDir("d/"),
		}, []want{{"d", unix.S_IFDIR | 0o755, 0, 0, ""}}, nil},
		{"file over an open directory", []unpackTestEntry{
			unpackDir("d/"), unpackDir("d/sub/"), unpackFile("d/sub/f", "x"),
			unpackFile("d", "file"),
		}, []want{{"d", unix.S_IFREG | 0o644, 0, 0, "file"}}, nil},
		{"symlink over a symlink", []unpackTestEntry{
			owned(unpackSymlink("l", "a"), 7, 7, 0o777),
			unpackSymlink("l", "b"),
		}, []want{{"l", unix.S_IFLNK | 0o777, 0, 0, ""}}, nil},
		{"hard link over a file", []unpackTestEntry{
			unpackFile("a", "a"), owned(unpackFile("b", "b"), 3, 3, 0o600),
			unpackHardlink("b", "a"),
		}, []want{{"b", unix.S_IFREG | 0o644, 0, 0, "a"}}, nil},
		{"whiteout of an open directory, made again", []unpackTestEntry{
			unpackFile("a/b/f", "old"), unpackFile(".wh.a", ""),
			unpackDir("a/"), unpackFile("a/b/g", "new"),
		}, []want{{"a/b/g", unix.S_IFREG | 0o644, 0, 0, "new"}}, []string{"a/b/f"}},
		{"file over an open directory, made again", []unpackTestEntry{
			unpackFile("a/b/f", "old"), unpackFile("a", "file"),
			unpackDir("a/"), unpackFile("a/b/g", "new"),
		}, []want{{"a", unix.S_IFDIR | 0o755, 0, 0, ""}, {"a/b/g", unix.S_IFREG | 0o644, 0, 0, "new"}}, []string{"a/b/f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layer := t.TempDir()
			if _, err := ApplyLayer(context.Background(), layer, bytes.NewReader(unpackTestTar(t, tt.entries...))); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				mode, uid, gid, content := unpackStat(t, layer, w.name)
				if mode != w.mode || uid != w.uid || gid != w.gid || content != w.content {
					t.Errorf("%s: mode %o, owner %d:%d, content %q; want %o, %d:%d, %q",
						w.name, mode, uid, gid, content, w.mode, w.uid, w.gid, w.content)
				}
			}
			for _, name := range tt.absent {
				if _, err := os.Lstat(filepath.Join(layer, name)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s: %v, want it gone", name, err)
				}
			}
		})
	}
}

// TestApplyLayerOpenDirReplaced checks that a directory that was open for
// earlier entries and is then removed or replaced by a symlink is never
// written through.
func TestApplyLayerOpenDirReplaced(t *testing.T) {
	unpackNeedRoot(t)
	tests := []struct {
		name    string
		layer   func(sentinel string) []unpackTestEntry
		wantErr string
	}{
		{"by a symlink", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackFile("d/f", ""), unpackSymlink("d", "../sentinel"), unpackFile("d/x", "owned")}
		}, `"d/x": "d" is a symbolic link`},
		{"an ancestor by a symlink", func(s string) []unpackTestEntry {
			return []unpackTestEntry{unpackFile("d/sub/f", ""), unpackFile("d/g", ""), unpackSymlink("d", s), unpackFile("d/sub/x", "owned")}
		}, `"d/sub/x": "d" is a symbolic link`},
		{"by a whiteout", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackFile("d/f", ""), unpackFile(".wh.d", ""), unpackFile("d/x", "")}
		}, `"d/x": "d" is not a directory`},
		{"an ancestor by a file", func(string) []unpackTestEntry {
			return []unpackTestEntry{unpackFile("d/sub/f", ""), unpackFile("d", ""), unpackHardlink("d/sub/x", "d")}
		}, `"d/sub/x": "d" is not a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, layer, sentinel := unpackSandbox(t)
			_, err := ApplyLayer(context.Background(), layer, bytes.NewReader(unpackTestTar(t, tt.layer(sentinel)...)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ApplyLayer = %v, want an invalid argument with %s", err, tt.wantErr)
			}
			unpackAssertConfined(t, base, sentinel)
		})
	}
}

// TestApplyLayerModes checks that entries get their header's owner and
// mode whatever creating them gave them: under several umasks, in a
// set-group-ID directory (whose group and bit new entries inherit) and in
// a directory with a default ACL (which replaces the umask).
func TestApplyLayerModes(t *testing.T) {
	unpackNeedRoot(t)
	entry := func(e unpackTestEntry, uid, gid int, mode int64) unpackTestEntry {
		e.Uid, e.Gid, e.Mode = uid, gid, mode
		return e
	}
	// A default ACL of user::rwx group::--- other::--- (the xattr's
	// binary form: version 2, then tag, permissions and id per entry).
	acl := entry(unpackDir("acl/"), 0, 0, 0o755)
	acl.Format = tar.FormatPAX
	acl.PAXRecords = map[string]string{"SCHILY.xattr.system.posix_acl_default": "\x02\x00\x00\x00" +
		"\x01\x00\x07\x00\xff\xff\xff\xff" + "\x04\x00\x00\x00\xff\xff\xff\xff" + "\x20\x00\x00\x00\xff\xff\xff\xff"}
	entries := []unpackTestEntry{
		entry(unpackFile("plain", "x"), 0, 0, 0o644),
		entry(unpackFile("exec", "x"), 0, 0, 0o755),
		entry(unpackFile("shared", "x"), 0, 0, 0o666),
		entry(unpackFile("none", "x"), 0, 0, 0),
		entry(unpackFile("setuid", "x"), 0, 0, 0o4755),
		entry(unpackFile("setgid", "x"), 0, 0, 0o2711),
		entry(unpackFile("setuid-user", "x"), 1000, 1000, 0o4750),
		entry(unpackDir("sticky/"), 0, 0, 0o1777),
		entry(unpackDir("sg/"), 0, 50, 0o2775),
		entry(unpackFile("sg/f", "x"), 0, 0, 0o644),
		entry(unpackDir("sg/sub/"), 0, 0, 0o755),
		entry(unpackSymlink("sg/l", "f"), 0, 0, 0o777),
		// A directory open for an entry, then made set-group-ID.
		entry(unpackFile("late/a", "x"), 0, 0, 0o644),
		entry(unpackDir("late/"), 0, 50, 0o2775),
		entry(unpackFile("late/b", "x"), 0, 0, 0o644),
		entry(unpackTestEntry{Header: tar.Header{Typeflag: tar.TypeChar, Name: "sg/null", Devmajor: 1, Devminor: 3}}, 0, 0, 0o666),
		entry(unpackTestEntry{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "fifo"}}, 0, 0, 0o622),
		acl,
		entry(unpackFile("acl/f", "x"), 0, 0, 0o644),
		entry(unpackDir("acl/sub/"), 0, 0, 0o755),
	}
	want := map[string][3]uint32{ // mode, uid, gid
		"plain":       {unix.S_IFREG | 0o644, 0, 0},
		"exec":        {unix.S_IFREG | 0o755, 0, 0},
		"shared":      {unix.S_IFREG | 0o666, 0, 0},
		"none":        {unix.S_IFREG, 0, 0},
		"setuid":      {unix.S_IFREG | 0o4755, 0, 0},
		"setgid":      {unix.S_IFREG | 0o2711, 0, 0},
		"setuid-user": {unix.S_IFREG | 0o4750, 1000, 1000},
		"sticky":      {unix.S_IFDIR | 0o1777, 0, 0},
		"sg":          {unix.S_IFDIR | 0o2775, 0, 50},
		"sg/f":        {unix.S_IFREG | 0o644, 0, 0},
		"sg/sub":      {unix.S_IFDIR | 0o755, 0, 0},
		"sg/l":        {unix.S_IFLNK | 0o777, 0, 0},
		"sg/null":     {unix.S_IFCHR | 0o666, 0, 0},
		"late/b":      {unix.S_IFREG | 0o644, 0, 0},
		"fifo":        {unix.S_IFIFO | 0o622, 0, 0},
		"acl/f":       {unix.S_IFREG | 0o644, 0, 0},
		"acl/sub":     {unix.S_IFDIR | 0o755, 0, 0},
	}
	data := unpackTestTar(t, entries...)
	for _, umask := range []int{0, 0o022, 0o077} {
		t.Run(strconv.FormatInt(int64(umask), 8), func(t *testing.T) {
			old := unix.Umask(umask)
			defer unix.Umask(old)
			layer := t.TempDir()
			if _, err := ApplyLayer(context.Background(), layer, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			for name, w := range want {
				mode, uid, gid, _ := unpackStat(t, layer, name)
				if mode != w[0] || uid != w[1] || gid != w[2] {
					t.Errorf("%s: mode %o, owner %d:%d; want %o, %d:%d", name, mode, uid, gid, w[0], w[1], w[2])
				}
			}
		})
	}
}

// TestApplyLayerManyDirs writes into more directories than stay open, in
// an order that comes back to each.
func TestApplyLayerManyDirs(t *testing.T) {
	unpackNeedRoot(t)
	var entries []unpackTestEntry
	for pass := range 2 {
		for i := range 3 * unpackParentCache {
			entries = append(entries, unpackFile(fmt.Sprintf("d%d/e/f%d", i%(unpackParentCache+3), pass*100+i), "x"))
		}
	}
	layer := t.TempDir()
	if _, err := ApplyLayer(context.Background(), layer, bytes.NewReader(unpackTestTar(t, entries...))); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, _, _, content := unpackStat(t, layer, e.Name); content != "x" {
			t.Errorf("%s: content %q", e.Name, content)
		}
	}
}
