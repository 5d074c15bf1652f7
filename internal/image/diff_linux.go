package image

// Layers made from directories: the reverse of ApplyLayer. The directory is
// an overlay upper directory that a container wrote, so it is read the way
// ApplyLayer writes: every entry reached from a descriptor of its parent by
// one name component, never through a symbolic link, and every file
// checked, once opened, to be the one that was stat'ed.

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	gzip "github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// LayerMediaType is the media type of the layers CommitDiff makes.
const LayerMediaType = "application/vnd.oci.image.layer.v1.tar+gzip"

// diffPathMax bounds a layer path: ApplyLayer reaches entries by their
// whole path, which the kernel takes up to PATH_MAX bytes, so a deeper tree
// would make a layer that nobody can unpack.
const diffPathMax = unix.PathMax - 1

// xattrMax is Linux's bound on both an xattr name list and one value.
const xattrMax = 64 << 10

// CommitDiff makes a layer from dir, a directory in overlayfs diff form (an
// overlay upper directory of a stopped container: a whiteout is a 0/0
// character device, an opaque directory carries trusted.overlay.opaque=y),
// on top of the snapshot parent ("" for a base layer).
//
// The layer's tar stream has OCI whiteouts, PAX xattr records for every
// extended attribute but overlayfs' own, hard links within dir as tar hard
// links, numeric owners, and mtimes to the second; sockets are skipped, and
// entries are sorted by name, so the same tree gives the same tar. It is
// stored gzip-compressed as a blob, hashed (DiffID and blob digest) in the
// same single pass. The snapshot chain(parent, DiffID) is then committed by
// moving dir's entries into it, which leaves dir empty; if dir is on another
// file system than the store (rename fails with EXDEV), the snapshot is
// unpacked from the new blob instead and dir is left as it is, as it is
// when the snapshot exists already.
//
// dir's content is hostile: symbolic links are stored, never followed, and
// nothing outside dir is read. A name starting with ".wh." (it would read
// as a whiteout), a path longer than PATH_MAX and a mount point inside dir
// are refused with an error matching errdefs.ErrInvalidArgument; a
// directory renamed or a file copied up metadata-only by overlayfs
// (redirect_dir, metacopy) with errdefs.ErrNotImplemented. On such errors
// dir is left as it is; only when the snapshot's last steps fail (sync,
// rename) after the move are dir's entries lost with it.
//
// dir must not be an overlay's upper directory while it is mounted.
func (s *Store) CommitDiff(ctx context.Context, dir string, parent digest.Digest) (Layer, error) {
	unlock, err := s.lock(false) // gc must not take the blob before the snapshot is in
	if err != nil {
		return Layer{}, err
	}
	defer unlock()
	if parent != "" && !s.snaps.Has(parent) {
		return Layer{}, fmt.Errorf("parent snapshot %s: %w", parent, errdefs.ErrNotFound)
	}
	w, err := newDiffWalker(dir)
	if err != nil {
		return Layer{}, err
	}
	defer w.close()
	l, err := s.writeDiff(ctx, w)
	if err != nil {
		return Layer{}, fmt.Errorf("layer from %s: %w", dir, err)
	}
	l.ChainID = l.DiffID
	if parent != "" {
		l.ChainID = digest.FromString(parent.String() + " " + l.DiffID.String())
	}
	err = s.snaps.Commit(ctx, l.ChainID, parent, func(diff string) error {
		return w.moveInto(diff, func(diff string) error { return s.unpackBlob(ctx, diff, l) })
	})
	if err != nil {
		return Layer{}, fmt.Errorf("layer from %s: %w", dir, err)
	}
	return l, nil
}

// writeDiff writes w's tree as a gzip-compressed layer blob.
func (s *Store) writeDiff(ctx context.Context, w *diffWalker) (Layer, error) {
	blobDir := filepath.Join(s.blobs.root, digest.SHA256.String())
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return Layer{}, err
	}
	// The .tmp- prefix is what a sweep clears after a killed writer.
	tmp, err := os.CreateTemp(blobDir, ".tmp-layer-")
	if err != nil {
		return Layer{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	// tar → DiffID hash and gzip → blob hash, byte count and file: one pass.
	blobHash, diffHash := digest.SHA256.Digester(), digest.SHA256.Digester()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, blobHash.Hash()), 1<<20)
	gz, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return Layer{}, err
	}
	tw := tar.NewWriter(io.MultiWriter(gz, diffHash.Hash()))
	if err := w.walk(ctx, tw); err != nil {
		return Layer{}, err
	}
	for _, c := range []func() error{tw.Close, gz.Close, bw.Flush, tmp.Close} {
		if err := c(); err != nil {
			return Layer{}, fmt.Errorf("writing layer: %w", err)
		}
	}
	fi, err := os.Stat(tmp.Name())
	if err != nil {
		return Layer{}, err
	}
	l := Layer{Digest: blobHash.Digest(), MediaType: LayerMediaType, Size: fi.Size(), DiffID: diffHash.Digest()}
	if err := os.Rename(tmp.Name(), s.blobs.path(l.Digest)); err != nil {
		return Layer{}, fmt.Errorf("blob %s: %w", l.Digest, err)
	}
	return l, nil
}

// unpackBlob unpacks the layer l from its blob into diff, for a dir that
// cannot be moved.
func (s *Store) unpackBlob(ctx context.Context, diff string, l Layer) error {
	f, err := s.blobs.open(l.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := ApplyLayer(ctx, diff, f)
	if err == nil && st.DiffID != l.DiffID {
		err = fmt.Errorf("blob %s unpacks to %s, not %s", l.Digest, st.DiffID, l.DiffID)
	}
	return err
}

// diffWalker reads one diff directory.
type diffWalker struct {
	dir       string
	root      *os.File
	rootSt    unix.Stat_t
	rootNames []string             // what moveInto moves
	links     map[diffInode]string // first path of each multiply linked inode
	strip     []diffXattr          // overlayfs' own attributes, dropped after the move
	buf       []byte               // file content
	list      []byte               // xattr names
	val       []byte               // one xattr value
	pax       map[string]string    // scratch for the entry being written
}

type diffInode struct{ dev, ino uint64 }

type diffXattr struct{ rel, name string }

func newDiffWalker(dir string) (*diffWalker, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("layer directory %s: %w", dir, err)
	}
	w := &diffWalker{
		dir: dir, root: os.NewFile(uintptr(fd), dir), links: map[diffInode]string{},
		buf: make([]byte, 256<<10), list: make([]byte, xattrMax), val: make([]byte, xattrMax),
	}
	if err := unix.Fstat(fd, &w.rootSt); err != nil {
		w.close()
		return nil, fmt.Errorf("layer directory %s: %w", dir, err)
	}
	return w, nil
}

func (w *diffWalker) close() { w.root.Close() }

// walk writes the whole tree, the root directory first as "./".
func (w *diffWalker) walk(ctx context.Context, tw *tar.Writer) error {
	return w.walkDir(ctx, tw, w.root, ".", &w.rootSt)
}

// walkDir writes the directory d (at rel, stat'ed as st) and its content.
func (w *diffWalker) walkDir(ctx context.Context, tw *tar.Writer, d *os.File, rel string, st *unix.Stat_t) error {
	fd := int(d.Fd())
	opaque, err := w.xattrs(rel, true, func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) })
	if err != nil {
		return err
	}
	hdr := diffHeader(rel+"/", st, tar.TypeDir, w.pax)
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	if opaque {
		wh := diffHeader(diffJoin(rel, unpackOpaqueMarker), st, tar.TypeReg, nil)
		wh.Mode = 0o600
		if err := tw.WriteHeader(wh); err != nil {
			return fmt.Errorf("%q: %w", rel, err)
		}
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	slices.Sort(names)
	if rel == "." {
		w.rootNames = names
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.entry(ctx, tw, fd, diffJoin(rel, name), name); err != nil {
			return err
		}
	}
	return nil
}

func diffJoin(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// entry writes the entry name of the directory pfd, at rel.
func (w *diffWalker) entry(ctx context.Context, tw *tar.Writer, pfd int, rel, name string) error {
	if strings.HasPrefix(name, unpackWhiteoutPrefix) {
		return fmt.Errorf("%q: %w", rel, unpackRefuse("a name starting with %s would read as a whiteout in the layer", unpackWhiteoutPrefix))
	}
	if len(rel) > diffPathMax {
		return fmt.Errorf("%.64q...: %w", rel, unpackRefuse("path longer than %d bytes", diffPathMax))
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	if st.Dev != w.rootSt.Dev {
		return fmt.Errorf("%q: %w", rel, unpackRefuse("a mount point cannot be part of a layer"))
	}
	typ := st.Mode & unix.S_IFMT
	switch {
	case typ == unix.S_IFDIR:
		fd, err := w.open(pfd, name, rel, &st, unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		d := os.NewFile(uintptr(fd), rel)
		defer d.Close()
		return w.walkDir(ctx, tw, d, rel, &st)
	case typ == unix.S_IFCHR && st.Rdev == 0:
		// A whiteout. overlayfs hard-links whiteouts to one shared inode,
		// so this comes before the hard-link check.
		hdr := diffHeader(diffJoin(filepath.Dir(rel), unpackWhiteoutPrefix+name), &st, tar.TypeReg, nil)
		hdr.Mode = 0o600
		return w.write(tw, rel, hdr)
	case typ == unix.S_IFSOCK:
		return nil // a socket is a live endpoint, nothing to store
	}

	if st.Nlink > 1 {
		id := diffInode{st.Dev, st.Ino}
		if first, ok := w.links[id]; ok {
			hdr := diffHeader(rel, &st, tar.TypeLink, nil)
			hdr.Linkname = first
			return w.write(tw, rel, hdr)
		}
		w.links[id] = rel
	}
	if typ == unix.S_IFREG {
		return w.file(tw, pfd, name, rel, &st)
	}

	// Symlinks, devices and fifos: read by name, the L* calls follow no
	// symlink, and /proc/self/fd/N names the parent itself.
	p := unpackProcPath(pfd, name)
	if _, err := w.xattrs(rel, false, func(b []byte) (int, error) { return unix.Llistxattr(p, b) },
		func(n string, b []byte) (int, error) { return unix.Lgetxattr(p, n, b) }); err != nil {
		return err
	}
	var hdr *tar.Header
	switch typ {
	case unix.S_IFLNK:
		n, err := unix.Readlinkat(pfd, name, w.val[:unix.PathMax])
		if err != nil {
			return fmt.Errorf("%q: %w", rel, err)
		}
		hdr = diffHeader(rel, &st, tar.TypeSymlink, w.pax)
		hdr.Linkname = string(w.val[:n])
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr = diffHeader(rel, &st, tar.TypeChar, w.pax)
		if typ == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr = diffHeader(rel, &st, tar.TypeFifo, w.pax)
	default:
		return nil
	}
	return w.write(tw, rel, hdr)
}

// file writes the regular file name of pfd, stat'ed as st.
func (w *diffWalker) file(tw *tar.Writer, pfd int, name, rel string, st *unix.Stat_t) error {
	// O_NONBLOCK: should the name be swapped for a fifo, the open must not hang.
	fd, err := w.open(pfd, name, rel, st, unix.O_NONBLOCK)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	if _, err := w.xattrs(rel, false, func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(n string, b []byte) (int, error) { return unix.Fgetxattr(fd, n, b) }); err != nil {
		return err
	}
	hdr := diffHeader(rel, st, tar.TypeReg, w.pax)
	hdr.Size = st.Size
	if err := w.write(tw, rel, hdr); err != nil {
		return err
	}
	// Hide the writer's and the file's fast paths so that w.buf is used.
	n, err := io.CopyBuffer(struct{ io.Writer }{tw}, io.LimitReader(struct{ io.Reader }{f}, st.Size), w.buf)
	if err == nil && n != st.Size {
		err = fmt.Errorf("file shrank while being read")
	}
	if err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	return nil
}

// open opens name in pfd without following a symlink, and checks that it
// is still the inode stat'ed as st.
func (w *diffWalker) open(pfd int, name, rel string, st *unix.Stat_t, flags int) (int, error) {
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return -1, fmt.Errorf("%q: %w", rel, err)
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino ||
		now.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT || now.Size != st.Size {
		unix.Close(fd)
		return -1, fmt.Errorf("%q: %w", rel, unpackRefuse("changed while the layer was written"))
	}
	return fd, nil
}

func (w *diffWalker) write(tw *tar.Writer, rel string, hdr *tar.Header) error {
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%q: %w", rel, err)
	}
	return nil
}

// diffHeader is the tar header of an entry stat'ed as st. Times are kept to
// the second, as Docker does: no PAX record for every file.
func diffHeader(name string, st *unix.Stat_t, typ byte, pax map[string]string) *tar.Header {
	return &tar.Header{
		Typeflag: typ, Name: name, Mode: int64(st.Mode & 0o7777),
		Uid: int(st.Uid), Gid: int(st.Gid), ModTime: time.Unix(st.Mtim.Sec, 0),
		PAXRecords: maps.Clone(pax), Format: tar.FormatPAX,
	}
}

// xattrs reads an entry's extended attributes into w.pax as PAX records and
// reports whether it is an opaque directory. overlayfs' own attributes are
// not layer content: they are left out and noted in w.strip, except those
// that say the entry is not complete in dir (a redirect or metacopy).
func (w *diffWalker) xattrs(rel string, isDir bool, list func([]byte) (int, error), get func(string, []byte) (int, error)) (opaque bool, err error) {
	clear(w.pax)
	if w.pax == nil {
		w.pax = map[string]string{}
	}
	n, err := list(w.list)
	if errors.Is(err, unix.ENOTSUP) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%q: extended attributes: %w", rel, err)
	}
	for _, name := range splitNul(w.list[:n]) {
		m, err := get(name, w.val)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("%q: extended attribute %s: %w", rel, name, err)
		}
		val := string(w.val[:m])
		switch {
		case name == unpackOpaqueXattr && isDir && val == "y":
			opaque = true
		case name == "trusted.overlay.redirect" || name == "trusted.overlay.metacopy":
			return false, fmt.Errorf("%q has overlayfs attribute %s: its content is in a lower layer; mount the container's overlay with redirect_dir=off,metacopy=off: %w",
				rel, name, errdefs.ErrNotImplemented)
		case strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay."):
			w.strip = append(w.strip, diffXattr{rel, name})
		default:
			w.pax[unpackXattrPrefix+name] = val
		}
	}
	return opaque, nil
}

// moveInto makes diff, the new snapshot's directory, what dir is: it moves
// dir's entries in, gives diff dir's mode, owner, attributes and times, and
// drops overlayfs' own attributes, as the layer has none. If dir is on
// another file system (or mount) than diff, it calls unpack(diff) instead
// and leaves dir's entries where they are.
func (w *diffWalker) moveInto(diff string, unpack func(string) error) error {
	dfd, err := unix.Open(diff, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	names, rfd := w.rootNames, int(w.root.Fd())
	for i, n := range names {
		err := unix.Renameat(rfd, n, dfd, n)
		if err == nil {
			continue
		}
		if i == 0 && errors.Is(err, unix.EXDEV) {
			return unpack(diff)
		}
		// Put back what was moved: the caller keeps dir as it was.
		for _, m := range names[:i] {
			unix.Renameat(dfd, m, rfd, m)
		}
		return fmt.Errorf("moving %q into the snapshot: %w", n, err)
	}
	if err := copyDirAttrs(w.dir, diff); err != nil {
		return err
	}
	for _, x := range w.strip {
		pfd, err := unpackOpenat2(dfd, filepath.Dir(x.rel))
		if err != nil {
			return fmt.Errorf("%q: %w", x.rel, err)
		}
		err = unix.Lremovexattr(unpackProcPath(pfd, filepath.Base(x.rel)), x.name)
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.ENODATA) {
			return fmt.Errorf("%q: removing %s: %w", x.rel, x.name, err)
		}
	}
	// The moves changed both directories' times: restore dir's, as stat'ed.
	return unix.UtimesNanoAt(unix.AT_FDCWD, diff, []unix.Timespec{w.rootSt.Atim, w.rootSt.Mtim}, 0)
}
