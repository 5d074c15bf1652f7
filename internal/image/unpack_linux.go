package image

// Layer unpacking, written by hand on archive/tar and openat2(2): the
// libraries that turn an OCI layer into an overlayfs diff directory
// (containerd's archive and moby's pkg/archive) come with the rest of
// containerd or moby, and the small ones either unpack to a merged tree or
// confine paths by string checks, which a symlink planted by an earlier
// entry defeats. Here the kernel does the confinement: every entry is
// reached from a descriptor of the layer directory with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so no name and no symlink in the
// layer can lead a write outside it.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	gzip "github.com/klauspost/compress/gzip"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

const (
	unpackWhiteoutPrefix = ".wh."
	unpackWhiteoutMeta   = ".wh..wh." // AUFS bookkeeping (.wh..wh.plnk, …), skipped
	unpackOpaqueMarker   = ".wh..wh..opq"
	unpackOpaqueXattr    = "trusted.overlay.opaque"
	unpackXattrPrefix    = "SCHILY.xattr."
)

var unpackZstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// ApplyLayer unpacks the layer read from r into the empty directory dir, in
// the form overlayfs takes as a lower directory, and returns the layer's
// DiffID (the SHA-256 of its uncompressed tar stream) and the length of
// that stream.
//
// r may be gzip- or zstd-compressed or a plain tar; the format is told by
// its first bytes. An OCI whiteout ".wh.NAME" becomes a 0/0 character
// device NAME, an opaque marker ".wh..wh..opq" sets trusted.overlay.opaque=y
// on its directory, and every other entry keeps its type, owner, mode
// (set-user-ID, set-group-ID and sticky bits included), extended attributes
// and times; a directory's times are set after its content is written.
//
// The layer is hostile input. Every entry is confined to dir: a name with a
// ".." component, a write through a symbolic link (planted by an earlier
// entry or not), a hard link to something outside the layer, a sparse file
// and an overlayfs-private extended attribute are refused with an error
// that matches errdefs.ErrInvalidArgument. A leading "/" is dropped, as
// Docker does. Symbolic links are created with whatever target they have
// but never followed. Errors name the entry, quoted, in one line; the
// caller adds which layer it was. On error dir holds a partial layer that
// the caller must discard (snapshot.Store.Commit does).
//
// ApplyLayer needs privileges a root user has: CAP_CHOWN, CAP_MKNOD,
// CAP_SYS_ADMIN (trusted.* extended attributes) and CAP_FOWNER. It also
// needs Linux 5.6 (openat2) and /proc for extended attributes.
func ApplyLayer(ctx context.Context, dir string, r io.Reader) (diffID digest.Digest, size int64, err error) {
	stream, closeStream, err := unpackDecompress(r)
	if err != nil {
		return "", 0, err
	}
	defer closeStream()
	u, err := newLayerUnpacker(dir)
	if err != nil {
		return "", 0, err
	}
	defer u.close()

	digester := digest.SHA256.Digester()
	counted := &unpackCounter{ctx: ctx, r: io.TeeReader(stream, digester.Hash())}
	if err := u.unpack(ctx, tar.NewReader(counted)); err != nil {
		return "", 0, err
	}
	// Whatever follows the end-of-archive marker counts for the DiffID.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return "", 0, fmt.Errorf("reading layer: %w", err)
	}
	return digester.Digest(), counted.n, nil
}

// unpackDecompress returns the tar stream inside r and a function that
// releases the decompressor.
func unpackDecompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("reading layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("layer is not valid gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.Equal(magic, unpackZstdMagic):
		// One goroutine, and a window no real encoder exceeds, so that a
		// hostile frame header cannot make us allocate gigabytes.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			return nil, nil, fmt.Errorf("layer is not valid zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// unpackCounter counts the bytes read through it, and stops reading when
// ctx is done, even in the middle of a large file.
type unpackCounter struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *unpackCounter) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// unpackInvalid is a refusal of hostile or malformed layer content. It
// matches errdefs.ErrInvalidArgument without saying so in its message.
type unpackInvalid string

func (e unpackInvalid) Error() string        { return string(e) }
func (e unpackInvalid) Is(target error) bool { return target == errdefs.ErrInvalidArgument }

func unpackRefuse(format string, args ...any) error {
	return unpackInvalid(fmt.Sprintf(format, args...))
}

// layerUnpacker writes the entries of one layer below root, a descriptor
// of the layer directory.
type layerUnpacker struct {
	root int
	dirs []unpackDirTimes // set last, once the directories' content is written
	buf  []byte
}

type unpackDirTimes struct {
	path  string
	times []unix.Timespec
}

func newLayerUnpacker(dir string) (*layerUnpacker, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("layer directory %s: %w", dir, err)
	}
	return &layerUnpacker{root: fd, buf: make([]byte, 256<<10)}, nil
}

func (u *layerUnpacker) close() { unix.Close(u.root) }

// unpack writes every entry of tr.
func (u *layerUnpacker) unpack(ctx context.Context, tr *tar.Reader) error {
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) { // we check names ourselves
			if last == "" {
				return fmt.Errorf("reading layer: %w", err)
			}
			return fmt.Errorf("reading layer after %q: %w", last, err)
		}
		last = hdr.Name
		if err := u.entry(hdr, tr); err != nil {
			return fmt.Errorf("%q: %w", hdr.Name, err)
		}
	}
	for _, d := range u.dirs {
		if err := u.setDirTimes(d); err != nil {
			return fmt.Errorf("%q: %w", d.path, err)
		}
	}
	return nil
}

// unpackClean turns a name from the layer into a path relative to the
// layer directory: "." for the directory itself, no leading "/", no ".".
func unpackClean(name string) (string, error) {
	if name == "" {
		return "", unpackRefuse("empty name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", unpackRefuse("name contains a NUL byte")
	}
	if slices.Contains(strings.Split(name, "/"), "..") {
		return "", unpackRefuse(`".." in a name would leave the layer`)
	}
	p := path.Clean("/" + name)
	if p == "/" {
		return ".", nil
	}
	return p[1:], nil
}

// entry writes one entry; r is its content.
func (u *layerUnpacker) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := unpackClean(hdr.Name)
	if err != nil {
		return err
	}
	parent, base := path.Dir(rel), path.Base(rel)
	if strings.HasPrefix(base, unpackWhiteoutPrefix) {
		switch {
		case base == unpackOpaqueMarker:
			return u.opaque(parent)
		case strings.HasPrefix(base, unpackWhiteoutMeta):
			return nil
		}
		return u.whiteout(parent, strings.TrimPrefix(base, unpackWhiteoutPrefix))
	}
	if err := unpackCheckHeader(hdr); err != nil {
		return err
	}
	if rel == "." && hdr.Typeflag != tar.TypeDir {
		return unpackRefuse("the layer's root must be a directory")
	}

	pfd, err := u.openDir(parent, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := u.clear(pfd, base, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	perm := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = unix.Mkdirat(pfd, base, 0o700)
		if errors.Is(err, unix.EEXIST) { // a directory seen before: update it
			err = nil
		}
	case tar.TypeReg, tar.TypeCont:
		err = u.writeFile(pfd, base, r)
	case tar.TypeSymlink:
		err = unix.Symlinkat(hdr.Linkname, pfd, base)
	case tar.TypeLink:
		return u.link(pfd, base, hdr.Linkname) // the target has the metadata
	case tar.TypeChar:
		err = unix.Mknodat(pfd, base, unix.S_IFCHR|perm, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	case tar.TypeBlock:
		err = unix.Mknodat(pfd, base, unix.S_IFBLK|perm, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))))
	case tar.TypeFifo:
		err = unix.Mknodat(pfd, base, unix.S_IFIFO|perm, 0)
	default:
		return unpackRefuse("unsupported entry type %q", hdr.Typeflag)
	}
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	return u.setMetadata(pfd, base, rel, hdr)
}

// unpackCheckHeader refuses header values that cannot be written faithfully.
func unpackCheckHeader(hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return unpackRefuse("sparse files are not supported in layers")
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return unpackRefuse("sparse files are not supported in layers")
		}
	}
	if hdr.Uid < 0 || hdr.Uid >= 1<<32-1 || hdr.Gid < 0 || hdr.Gid >= 1<<32-1 {
		return unpackRefuse("owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		if hdr.Devmajor < 0 || hdr.Devmajor >= 1<<12 || hdr.Devminor < 0 || hdr.Devminor >= 1<<20 {
			return unpackRefuse("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
		}
	}
	return nil
}

// unpackDirHow opens a directory of the layer, refusing any symlink, any
// ".." that leaves the layer and any mount point on the way.
var unpackDirHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
}

func unpackOpenat2(dirfd int, p string) (int, error) {
	for {
		how := unpackDirHow
		fd, err := unix.Openat2(dirfd, p, &how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// openDir returns an O_PATH descriptor of the directory rel of the layer,
// creating missing directories (mode 0755, owned by the caller) if create
// is set. The caller closes it.
func (u *layerUnpacker) openDir(rel string, create bool) (int, error) {
	fd, err := unpackOpenat2(u.root, rel)
	if err == nil || !create || !errors.Is(err, unix.ENOENT) {
		return fd, u.dirError(rel, err)
	}
	cur, err := unix.Dup(u.root)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(rel, "/") {
		err := unix.Mkdirat(cur, c, 0o755)
		if err == nil {
			err = unix.Fchmodat(cur, c, 0o755, 0) // whatever the umask
		} else if errors.Is(err, unix.EEXIST) {
			err = nil
		}
		next := -1
		if err == nil {
			next, err = unpackOpenat2(cur, c)
		}
		unix.Close(cur)
		if err != nil {
			return -1, u.dirError(rel, err)
		}
		cur = next
	}
	return cur, nil
}

// dirError explains why the directory rel could not be opened, naming the
// component that is in the way.
func (u *layerUnpacker) dirError(rel string, err error) error {
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOTDIR) && !errors.Is(err, unix.EXDEV) {
		return fmt.Errorf("directory %q: %w", rel, err)
	}
	comps := strings.Split(rel, "/")
	for i := range comps {
		p := strings.Join(comps[:i+1], "/")
		var st unix.Stat_t
		// Every component before p is a directory, so this does not
		// follow a symlink either.
		if unix.Fstatat(u.root, p, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			break
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			continue
		case unix.S_IFLNK:
			return unpackRefuse("%q is a symbolic link, and a layer path may not pass through one", p)
		}
		return unpackRefuse("%q is not a directory", p)
	}
	return unpackRefuse("directory %q is not inside the layer: %v", rel, err)
}

// clear removes what is at base in the directory pfd, unless both it and
// the new entry are directories.
func (u *layerUnpacker) clear(pfd int, base string, keepDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		return fmt.Errorf("stat: %w", err)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		err = unix.Unlinkat(pfd, base, 0)
	case keepDir:
		return nil
	default:
		// RemoveAll never follows a symlink; the /proc link names pfd
		// itself, so the tree removed is inside the layer.
		err = os.RemoveAll(unpackProcPath(pfd, base))
	}
	if err != nil {
		return fmt.Errorf("replacing: %w", err)
	}
	return nil
}

// unpackProcPath names base in the directory pfd for calls that have no
// *at form.
func unpackProcPath(pfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
}

// writeFile creates the regular file base in pfd with the content of r.
func (u *layerUnpacker) writeFile(pfd int, base string, r io.Reader) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	// Hide ReadFrom so the buffer is used: the tar reader can't splice.
	_, err = io.CopyBuffer(struct{ io.Writer }{f}, r, u.buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// link makes base in pfd a hard link to target, an earlier entry of the
// same layer. The link is made to target itself, never to what a symlink
// there points to.
func (u *layerUnpacker) link(pfd int, base, target string) error {
	rel, err := unpackClean(target)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", target, err)
	}
	if rel == "." {
		return unpackRefuse("hard link to the layer's root")
	}
	tfd, err := u.openDir(path.Dir(rel), false)
	if errors.Is(err, unix.ENOENT) {
		return unpackRefuse("hard link target %q is not in the layer", target)
	}
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", target, err)
	}
	defer unix.Close(tfd)
	err = unix.Linkat(tfd, path.Base(rel), pfd, base, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return unpackRefuse("hard link target %q is not in the layer", target)
	case errors.Is(err, unix.EPERM):
		return unpackRefuse("hard link target %q is a directory", target)
	case err != nil:
		return fmt.Errorf("hard link to %q: %w", target, err)
	}
	return nil
}

// whiteout records that name, in the directory parent of lower layers, is
// deleted.
func (u *layerUnpacker) whiteout(parent, name string) error {
	if name == "" || name == "." || name == ".." {
		return unpackRefuse("whiteout of an invalid name")
	}
	pfd, err := u.openDir(parent, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := u.clear(pfd, name, false); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	return nil
}

// opaque marks the directory dir as hiding the content of lower layers.
func (u *layerUnpacker) opaque(dir string) error {
	fd, err := u.openDir(dir, true)
	if err != nil {
		return err
	}
	unix.Close(fd)
	pfd, err := u.openDir(path.Dir(dir), false)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Lsetxattr(unpackProcPath(pfd, path.Base(dir)), unpackOpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("opaque directory: setting %s: %w", unpackOpaqueXattr, err)
	}
	return nil
}

// setMetadata gives the new entry base in pfd the owner, mode, extended
// attributes and times of hdr. Order matters: chown clears the set-ID bits
// and file capabilities, so mode and attributes follow it.
func (u *layerUnpacker) setMetadata(pfd int, base, rel string, hdr *tar.Header) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
	}
	if hdr.Typeflag != tar.TypeSymlink { // a symlink's mode means nothing
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	keys := make([]string, 0, len(hdr.PAXRecords))
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, unpackXattrPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		name := strings.TrimPrefix(k, unpackXattrPrefix)
		if strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			return unpackRefuse("extended attribute %s is private to overlayfs", name)
		}
		err := unix.Lsetxattr(unpackProcPath(pfd, base), name, []byte(hdr.PAXRecords[k]), 0)
		if err != nil && !errors.Is(err, unix.ENOTSUP) { // a file system without them loses them, as with Docker
			return fmt.Errorf("extended attribute %s: %w", name, err)
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	times := []unix.Timespec{unpackTimespec(atime), unpackTimespec(hdr.ModTime)}
	if hdr.Typeflag == tar.TypeDir {
		u.dirs = append(u.dirs, unpackDirTimes{path: rel, times: times})
		return nil
	}
	if err := unix.UtimesNanoAt(pfd, base, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func unpackTimespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// setDirTimes sets a directory's times once its content is complete. A
// directory replaced by a later entry keeps that entry's times.
func (u *layerUnpacker) setDirTimes(d unpackDirTimes) error {
	pfd, err := u.openDir(path.Dir(d.path), false)
	if err != nil {
		return nil // replaced by a later entry
	}
	defer unix.Close(pfd)
	base := path.Base(d.path)
	var st unix.Stat_t
	if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	if err := unix.UtimesNanoAt(pfd, base, d.times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}
