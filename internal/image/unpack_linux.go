package image

// Layer unpacking, written by hand on archive/tar and openat2(2): the
// libraries that turn an OCI layer into an overlayfs diff directory
// (containerd's archive and moby's pkg/archive) come with the rest of
// containerd or moby, and the small ones either unpack to a merged tree or
// confine paths by string checks, which a symlink planted by an earlier
// entry defeats. Here the kernel does the confinement: every directory an
// entry is written in is opened from a descriptor of the layer directory
// with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so no name and no symlink in
// the layer can lead a write outside it, and stays open for the entries
// after it only until an entry removes it or a directory above it.

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

// LayerStats is what ApplyLayer learns about a layer as it unpacks it.
type LayerStats struct {
	// DiffID is the SHA-256 of the layer's uncompressed tar stream.
	DiffID digest.Digest
	// TarSize is the length of that stream.
	TarSize int64
	// Usage is the bytes of regular-file content the layer directory
	// holds, each inode counted once however many hard links it has: the
	// snapshot's Info.Size, which snapshot.WithSize hands to Commit.
	Usage int64
}

// ApplyLayer unpacks the layer read from r into the empty directory dir, in
// the form overlayfs takes as a lower directory, and returns the layer's
// DiffID (the SHA-256 of its uncompressed tar stream), the length of that
// stream and the bytes of file content written.
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
func ApplyLayer(ctx context.Context, dir string, r io.Reader) (LayerStats, error) {
	return applyLayer(ctx, dir, r, false)
}

// applyLayer is ApplyLayer, reading r, inflating and hashing in a
// goroutine of their own if readahead is set (see unpackReadahead).
func applyLayer(ctx context.Context, dir string, r io.Reader, readahead bool) (LayerStats, error) {
	stream, closeStream, err := unpackDecompress(r)
	if err != nil {
		return LayerStats{}, err
	}
	defer closeStream()
	u, err := newLayerUnpacker(dir)
	if err != nil {
		return LayerStats{}, err
	}
	defer u.close()

	digester := digest.SHA256.Digester()
	var src io.Reader = io.TeeReader(stream, digester.Hash())
	if readahead {
		ra := newUnpackReadahead(src)
		defer ra.stop() // before closeStream
		src = ra
	}
	counted := &unpackCounter{ctx: ctx, r: src}
	if err := u.unpack(ctx, tar.NewReader(counted)); err != nil {
		return LayerStats{}, err
	}
	// Whatever follows the end-of-archive marker counts for the DiffID.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return LayerStats{}, fmt.Errorf("reading layer: %w", err)
	}
	return LayerStats{DiffID: digester.Digest(), TarSize: counted.n, Usage: u.usage.total}, nil
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
//
// Beyond inflating, unpacking costs system calls (a layer holds thousands
// of small files, and they are dear in the VMs berth runs in), so an entry
// takes as few as it can: the directory it goes in usually comes from a
// small cache of open directories (a tar lists a directory's entries
// together), it is created with its permission bits, and chown and chmod
// are called only when creating it did not already give it the owner and
// mode of its header.
type layerUnpacker struct {
	root    int
	parents []*unpackParent  // open directories, most recently used first
	dirs    []unpackDirTimes // set last, once the directories' content is written
	buf     []byte
	usage   unpackUsage

	// What a new entry gets without chown and chmod: our owner and group
	// and its mode less the umask, read when unpacking starts (the
	// processes that pull never change it), unless a default ACL decides.
	uid, gid int
	umask    uint32
	acl      bool
}

// unpackParent is an open directory of the layer and what an entry
// created in it inherits from it.
type unpackParent struct {
	rel  string // its path in the layer
	fd   int    // O_PATH, opened by openDir
	mode uint32 // set-group-ID passes its group, and to directories the bit
	gid  uint32
}

// unpackParentCache is how many directories stay open. It must be at least
// 2: link and opaque hold one open directory while they open another.
const unpackParentCache = 16

// unpackACLDefault is the extended attribute that holds a default ACL,
// which replaces the umask for the entries created in its directory.
const unpackACLDefault = "system.posix_acl_default"

type unpackDirTimes struct {
	path  string
	times []unix.Timespec
}

func newLayerUnpacker(dir string) (*layerUnpacker, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("layer directory %s: %w", dir, err)
	}
	u := &layerUnpacker{root: fd, buf: make([]byte, 256<<10), uid: unix.Geteuid(), gid: unix.Getegid(), umask: unpackUmask()}
	// Getxattr follows the /proc link to the directory itself.
	_, err = unix.Getxattr(unpackProcPath(fd, ""), unpackACLDefault, nil)
	u.acl = !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.ENOTSUP)
	return u, nil
}

// unpackUmask returns the process's umask, read from /proc because
// umask(2) can only tell it by changing it, for every thread. If /proc
// cannot tell, it returns 0o777, which makes every new entry get a chmod.
func unpackUmask() uint32 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m) & 0o777
			}
		}
	}
	return 0o777
}

func (u *layerUnpacker) close() {
	u.forget(".", true)
	unix.Close(u.root)
}

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

	p, err := u.parent(parent, true)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeLink { // the target has the metadata
		_, err := u.create(p, base, false, func() error { return u.link(p.fd, base, hdr.Linkname) })
		if err == nil {
			target, _ := unpackClean(hdr.Linkname) // link checked it
			u.usage.link(rel, target)
		}
		return err
	}
	mk := u.maker(p.fd, base, hdr, r)
	if mk == nil {
		return unpackRefuse("unsupported entry type %q", hdr.Typeflag)
	}
	created, err := u.create(p, base, hdr.Typeflag == tar.TypeDir, mk)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeCont {
		u.usage.file(rel, hdr.Size) // the tar reader gives exactly that much, or fails
	}
	if err := u.setMetadata(p, base, rel, hdr, created); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		u.forget(rel, false) // its mode and group, if it is open, are old
	}
	return nil
}

// maker returns the call that creates the entry hdr as base in the
// directory pfd, with the permission bits of hdr less the umask (set-ID
// and sticky bits are left to chmod: open and mkdir do not reliably set
// them), or nil for a type that layers may not hold.
func (u *layerUnpacker) maker(pfd int, base string, hdr *tar.Header, r io.Reader) func() error {
	mode := uint32(hdr.Mode) & 0o777
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	switch hdr.Typeflag {
	case tar.TypeDir:
		return func() error { return rawMkdirat(pfd, base, mode) }
	case tar.TypeReg, tar.TypeCont:
		return func() error { return u.writeFile(pfd, base, mode, r) }
	case tar.TypeSymlink:
		return func() error { return rawSymlinkat(hdr.Linkname, pfd, base) }
	case tar.TypeChar:
		return func() error { return unix.Mknodat(pfd, base, unix.S_IFCHR|mode, dev) }
	case tar.TypeBlock:
		return func() error { return unix.Mknodat(pfd, base, unix.S_IFBLK|mode, dev) }
	case tar.TypeFifo:
		return func() error { return unix.Mknodat(pfd, base, unix.S_IFIFO|mode, 0) }
	}
	return nil
}

// create runs mk, which makes base in the directory p. If something is
// already there (from a lower entry: layers replace freely) it is removed
// and mk runs again, unless keepDir is set and it is a directory, which is
// then kept to be updated. Removing only after EEXIST spares the stat
// that checking first would cost every entry. created reports whether
// base is new, and so has the owner and mode creating gave it.
func (u *layerUnpacker) create(p *unpackParent, base string, keepDir bool, mk func() error) (created bool, err error) {
	err = mk()
	if !errors.Is(err, unix.EEXIST) {
		return err == nil, err
	}
	kept, err := u.clear(p, base, keepDir)
	if kept || err != nil {
		return false, err
	}
	return true, mk()
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

// parent returns the open directory rel of the layer, opening it with
// openDir (which creates it and the directories above it if create is
// set) unless it is open already. An open directory leads where rel
// resolved from root would: nothing in a layer is renamed, and clear
// forgets a directory, and those below it, before removing it.
func (u *layerUnpacker) parent(rel string, create bool) (*unpackParent, error) {
	for i, p := range u.parents {
		if p.rel == rel {
			copy(u.parents[1:i+1], u.parents[:i])
			u.parents[0] = p
			return p, nil
		}
	}
	fd, err := u.openDir(rel, create)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("directory %q: %w", rel, err)
	}
	if n := len(u.parents); n == unpackParentCache {
		unix.Close(u.parents[n-1].fd)
		u.parents = u.parents[:n-1]
	}
	p := &unpackParent{rel: rel, fd: fd, mode: st.Mode, gid: st.Gid}
	u.parents = slices.Insert(u.parents, 0, p)
	return p, nil
}

// forget closes the directory rel if it is open, and if subtree is set
// every open directory below it too.
func (u *layerUnpacker) forget(rel string, subtree bool) {
	u.parents = slices.DeleteFunc(u.parents, func(p *unpackParent) bool {
		gone := p.rel == rel || subtree && (rel == "." || strings.HasPrefix(p.rel, rel+"/"))
		if gone {
			unix.Close(p.fd)
		}
		return gone
	})
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

// clear removes what is at base in the directory p, unless keepDir is set
// and it is a directory, which it then keeps and reports.
func (u *layerUnpacker) clear(p *unpackParent, base string, keepDir bool) (kept bool, err error) {
	var st unix.Stat_t
	err = unix.Fstatat(p.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT): // gone already
		return false, nil
	case err != nil:
		return false, fmt.Errorf("stat: %w", err)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		err = unix.Unlinkat(p.fd, base, 0)
		u.usage.removed(path.Join(p.rel, base))
	case keepDir:
		return true, nil
	default:
		// Open descriptors of the directory and of those below it would
		// lead to deleted directories.
		u.forget(path.Join(p.rel, base), true)
		u.usage.removedTree(path.Join(p.rel, base))
		// RemoveAll never follows a symlink; the /proc link names p
		// itself, so the tree removed is inside the layer.
		err = os.RemoveAll(unpackProcPath(p.fd, base))
	}
	if err != nil {
		return false, fmt.Errorf("replacing: %w", err)
	}
	return false, nil
}

// unpackProcPath names base in the directory pfd for calls that have no
// *at form.
func unpackProcPath(pfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
}

// writeFile creates the regular file base in pfd, with the permission bits
// mode, and the content of r. It fails with EEXIST, before reading r, if
// base exists.
func (u *layerUnpacker) writeFile(pfd int, base string, mode uint32, r io.Reader) error {
	fd, err := rawOpenat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return err
	}
	err = u.copyTo(fd, r)
	if cerr := rawClose(fd); err == nil {
		err = cerr
	}
	return err
}

// copyTo writes the content of r to fd, a write(2) per full buffer: the
// inflater returns less than a buffer per read, and an *os.File would
// cost an fcntl or two more per file.
func (u *layerUnpacker) copyTo(fd int, r io.Reader) error {
	for {
		n, rerr := unpackFill(r, u.buf)
		for b := u.buf[:n]; len(b) > 0; {
			m, err := unix.Write(fd, b)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return err
			}
			if m == 0 {
				return io.ErrShortWrite
			}
			b = b[m:]
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// unpackFill reads from r into buf until buf is full or a read fails.
func unpackFill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
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
	tp, err := u.parent(path.Dir(rel), false)
	if errors.Is(err, unix.ENOENT) {
		return unpackRefuse("hard link target %q is not in the layer", target)
	}
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", target, err)
	}
	err = unix.Linkat(tp.fd, path.Base(rel), pfd, base, 0)
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
	p, err := u.parent(parent, true)
	if err != nil {
		return err
	}
	mk := func() error { return unix.Mknodat(p.fd, name, unix.S_IFCHR, 0) }
	if _, err := u.create(p, name, false, mk); err != nil {
		return fmt.Errorf("whiteout: %w", err)
	}
	return nil
}

// opaque marks the directory dir as hiding the content of lower layers.
func (u *layerUnpacker) opaque(dir string) error {
	if _, err := u.parent(dir, true); err != nil {
		return err
	}
	p, err := u.parent(path.Dir(dir), false)
	if err != nil {
		return err
	}
	if err := unix.Lsetxattr(unpackProcPath(p.fd, path.Base(dir)), unpackOpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("opaque directory: setting %s: %w", unpackOpaqueXattr, err)
	}
	return nil
}

// setMetadata gives the entry base in p the owner, mode, extended
// attributes and times of hdr; created says that it is new, so that
// chown and chmod are needed only where creating it gave it another owner
// or mode. Order matters: chown clears the set-ID bits and file
// capabilities, so mode and attributes follow it.
func (u *layerUnpacker) setMetadata(p *unpackParent, base, rel string, hdr *tar.Header, created bool) error {
	perm := uint32(hdr.Mode) & 0o7777
	if !created || hdr.Uid != u.uid || hdr.Gid != u.newGroup(p) {
		if err := unix.Fchownat(p.fd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	// A symlink's mode means nothing.
	if hdr.Typeflag != tar.TypeSymlink && (!created || u.chmodNeeded(p, perm)) {
		if err := unix.Fchmodat(p.fd, base, perm, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := u.setXattrs(p.fd, base, hdr); err != nil {
		return err
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
	if err := rawUtimensat(p.fd, base, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// newGroup is the group an entry created in p gets: p's if p is
// set-group-ID, else ours.
func (u *layerUnpacker) newGroup(p *unpackParent) int {
	if p.mode&unix.S_ISGID != 0 {
		return int(p.gid)
	}
	return u.gid
}

// chmodNeeded reports whether an entry created in p lacks some of the
// permission bits perm: the set-ID and sticky bits, bits the umask took
// away, whatever a default ACL did instead of the umask, or a set-group-ID
// bit passed on by p (to directories).
func (u *layerUnpacker) chmodNeeded(p *unpackParent, perm uint32) bool {
	return perm&0o7000 != 0 || perm&u.umask != 0 || u.acl || p.mode&unix.S_ISGID != 0
}

// setXattrs sets the extended attributes of hdr on base in pfd.
func (u *layerUnpacker) setXattrs(pfd int, base string, hdr *tar.Header) error {
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
		if name == unpackACLDefault {
			u.acl = true // from now on, entries' modes are checked against no umask
		}
		err := unix.Lsetxattr(unpackProcPath(pfd, base), name, []byte(hdr.PAXRecords[k]), 0)
		if err != nil && !errors.Is(err, unix.ENOTSUP) { // a file system without them loses them, as with Docker
			return fmt.Errorf("extended attribute %s: %w", name, err)
		}
	}
	return nil
}

func unpackTimespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// setDirTimes sets a directory's times once its content is complete. A
// directory replaced by a later entry keeps that entry's times.
func (u *layerUnpacker) setDirTimes(d unpackDirTimes) error {
	p, err := u.parent(path.Dir(d.path), false)
	if err != nil {
		return nil // replaced by a later entry
	}
	base := path.Base(d.path)
	var st unix.Stat_t
	if unix.Fstatat(p.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	if err := unix.UtimesNanoAt(p.fd, base, d.times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}
