package fstree

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Tree is a directory tree whose paths are looked up inside a root
// directory: a container's root as the container sees it, or the host's
// "/". In a container's tree every lookup is an openat2(RESOLVE_IN_ROOT):
// the kernel treats the root as "/" for every symbolic link and "..", so
// nothing in the container can lead a copy outside it. Below the first
// lookup, directories are walked through their descriptors with
// O_NOFOLLOW, and files are created relative to the descriptor of their
// directory, never by a path that could be swapped for a symlink.
type Tree struct {
	root    int    // O_PATH descriptor of the root
	name    string // for messages: "container web" or "the host"
	inRoot  bool   // resolve in the root (a container), or as usual (the host)
	keepIDs bool   // set owners from the archive (cp -a); else the copier's
	skip    func(p string) bool
	made    *[]string // while Extract runs: the paths it created, to undo
}

// New returns the tree whose root is the directory descriptor root (an
// O_PATH one will do), which the tree owns from now on. name is how
// messages call it ("container web"); contained makes every lookup resolve
// inside the root; keepIDs makes Extract set owners from the archive
// (otherwise files belong to the extracting user).
func New(root int, name string, contained, keepIDs bool) *Tree {
	return &Tree{root: root, name: name, inRoot: contained, keepIDs: keepIDs}
}

// OpenDir returns the tree rooted at the directory dir (see New).
func OpenDir(dir, name string, contained, keepIDs bool) (*Tree, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return New(fd, name, contained, keepIDs), nil
}

// SetFilter makes Archive leave out every entry below the archived path
// for which skip(p) is true, p being the entry's path in the tree (a
// directory left out is left out with all it holds).
func (t *Tree) SetFilter(skip func(p string) bool) { t.skip = skip }

// Close releases the tree's root.
func (t *Tree) Close() error { return unix.Close(t.root) }

// Name is how messages call the tree.
func (t *Tree) Name() string { return t.name }

func (t *Tree) how(flags int) *unix.OpenHow {
	h := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC)}
	if t.inRoot {
		h.Resolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
	}
	return h
}

// Open resolves p, an absolute path in the tree, and opens it with flags;
// unless follow, a symbolic link at the end of p is not followed.
func (t *Tree) Open(p string, flags int, follow bool) (int, error) {
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := t.openat2(p, t.how(flags))
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
		if le := t.linkError(p, follow || strings.HasSuffix(p, "/")); le != nil {
			return -1, le
		}
	}
	if err != nil {
		return -1, t.PathError(p, err)
	}
	return fd, nil
}

// PathError describes err, an error of the system about p, in one line
// with its errdefs class; nil stays nil.
func (t *Tree) PathError(p string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s has no %s: %w", t.name, p, errdefs.ErrNotFound)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%s: %s: a part of the path is not a directory: %w", t.name, p, errdefs.ErrInvalidArgument)
	case errors.Is(err, unix.EROFS):
		return fmt.Errorf("%s: %s is on a read-only file system or mount: %w", t.name, p, errdefs.ErrPermission)
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("%s: %s: too many symbolic links: %w", t.name, p, errdefs.ErrInvalidArgument)
	case errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%s: %s leads outside it: %w", t.name, p, errdefs.ErrPermission)
	}
	return fmt.Errorf("%s: %s: %w", t.name, p, err)
}

// Stat returns what p is, following a final symbolic link if follow.
func (t *Tree) Stat(p string, follow bool) (unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := t.Open(p, unix.O_PATH, follow)
	if err != nil {
		return st, err
	}
	defer unix.Close(fd)
	return st, unix.Fstat(fd, &st)
}

// IsDir reports whether st is a directory's.
func IsDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// Stream returns Archive's tar stream of p, complete with its end, as a
// reader: a goroutine writes it as the reader reads. An error of Archive
// is the reader's error; closing the reader early stops the writer.
func (t *Tree) Stream(p, prefix string, follow bool) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		_, err := t.Archive(tw, p, prefix, follow)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// Archive writes p to tw, named prefix (and prefix/… below it for a
// directory); with prefix "" only a directory's contents are written,
// named by their paths inside it. A file with several names in what is
// written is archived once, its further names as hard links to the first;
// regular files and directories take their extended attributes along (see
// keepXattr). It returns the bytes of file content written.
func (t *Tree) Archive(tw *tar.Writer, p, prefix string, follow bool) (int64, error) {
	fd, err := t.Open(p, unix.O_PATH, follow)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, t.PathError(p, err)
	}
	a := &archiver{t: t, tw: tw, links: map[fileID]string{}}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, t.PathError(p, err)
		}
		if prefix == "" {
			err = a.children(dfd, p, "")
			unix.Close(dfd)
		} else {
			err = a.dir(dfd, &st, p, prefix)
		}
		return a.n, err
	case unix.S_IFREG:
		// Reopening the O_PATH descriptor reads the very file looked up.
		f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return 0, t.PathError(p, err)
		}
		defer f.Close()
		return a.n, a.file(f, prefix, p)
	case unix.S_IFLNK:
		target, err := readlinkat(fd, "")
		if err != nil {
			return 0, t.PathError(p, err)
		}
		return 0, a.header(&st, prefix, target, -1)
	}
	return 0, a.header(&st, prefix, "", -1)
}

type archiver struct {
	t  *Tree
	tw *tar.Writer
	n  int64
	// links holds the name under which each file with several links was
	// archived first.
	links map[fileID]string
}

// Pseudo and kernel file systems that a running container's root shows
// (/proc, /sys, …) are archived as empty directories.
var skipFS = map[int64]bool{unix.PROC_SUPER_MAGIC: true, unix.SYSFS_MAGIC: true, unix.CGROUP_SUPER_MAGIC: true,
	unix.CGROUP2_SUPER_MAGIC: true, unix.DEVPTS_SUPER_MAGIC: true, 0x19800202: true /* mqueue */, unix.DEBUGFS_MAGIC: true,
	unix.SECURITYFS_MAGIC: true, unix.TRACEFS_MAGIC: true, unix.BPF_FS_MAGIC: true}

// dir writes directory dfd (which it closes) and what it holds.
func (a *archiver) dir(dfd int, st *unix.Stat_t, p, name string) error {
	defer unix.Close(dfd)
	if err := a.header(st, name, "", dfd); err != nil {
		return err
	}
	var fs unix.Statfs_t
	if unix.Fstatfs(dfd, &fs) == nil && skipFS[int64(fs.Type)] {
		return nil
	}
	return a.children(dfd, p, name)
}

func (a *archiver) children(dfd int, p, prefix string) error {
	d, err := unix.Dup(dfd)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(d), p)
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return a.t.PathError(p, err)
	}
	for _, n := range names {
		if err := a.child(dfd, path.Join(p, n), n, path.Join(prefix, n)); err != nil {
			return err
		}
	}
	return nil
}

// child writes entry base of directory dfd; p is its path in the tree.
func (a *archiver) child(dfd int, p, base, name string) error {
	if a.t.skip != nil && a.t.skip(p) {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // removed meanwhile
		}
		return a.t.PathError(p, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return a.t.PathError(p, err)
		}
		return a.dir(fd, &st, p, name)
	case unix.S_IFREG:
		fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return a.t.PathError(p, err)
		}
		f := os.NewFile(uintptr(fd), p)
		defer f.Close()
		return a.file(f, name, p)
	case unix.S_IFLNK:
		target, err := readlinkat(dfd, base)
		if err != nil {
			return a.t.PathError(p, err)
		}
		return a.header(&st, name, target, -1)
	case unix.S_IFSOCK:
		return nil // as tar does
	}
	return a.header(&st, name, "", -1)
}

// file writes the regular file f, described as it is now (it may have been
// replaced since its directory was read).
func (a *archiver) file(f *os.File, name, p string) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return a.t.PathError(p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil
	}
	if st.Nlink > 1 {
		id := fileID{st.Dev, st.Ino}
		if first, ok := a.links[id]; ok {
			h := a.newHeader(&st, name, first)
			h.Typeflag, h.Size = tar.TypeLink, 0
			return a.tw.WriteHeader(h)
		}
		a.links[id] = name
	}
	if err := a.header(&st, name, "", int(f.Fd())); err != nil {
		return err
	}
	n, err := io.CopyN(a.tw, f, st.Size)
	a.n += n
	if err != nil {
		return fmt.Errorf("%s: %s changed while it was copied: %w", a.t.name, p, err)
	}
	return nil
}

// header writes the header of an entry described by st; fd, if not -1,
// is the file open, to read its extended attributes.
func (a *archiver) header(st *unix.Stat_t, name, link string, fd int) error {
	h := a.newHeader(st, name, link)
	if fd >= 0 {
		recs, err := readXattrs(fd)
		if err != nil {
			return a.t.PathError(name, err)
		}
		h.PAXRecords = recs
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, name+"/"
	case unix.S_IFLNK:
		h.Typeflag = tar.TypeSymlink
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return nil
	}
	return a.tw.WriteHeader(h)
}

func (a *archiver) newHeader(st *unix.Stat_t, name, link string) *tar.Header {
	return &tar.Header{Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()), Linkname: link}
}

func readlinkat(dfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dfd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// EntryError is Extract's error about one entry of the archive. Its
// message is Err's; callers that speak of an archive can name the entry.
type EntryError struct {
	Entry string // the entry's name in the archive
	Err   error
}

func (e *EntryError) Error() string { return e.Err.Error() }
func (e *EntryError) Unwrap() error { return e.Err }

// Extract unpacks the tar stream r into directory dir of the tree, renaming
// each entry's name with rename (nil: as it is). Entries may not lead out
// of dir by their names; inside the tree, symbolic links are followed
// within the root. It returns the bytes of file content written. When an
// entry fails (an *EntryError) or the stream breaks, what the extraction
// created is removed again, the failing entry's part included; files it
// replaced keep their new content.
func (t *Tree) Extract(r io.Reader, dir string, rename func(string) string) (n int64, err error) {
	var made []string
	t.made = &made
	defer func() {
		t.made = nil
		if err != nil {
			t.undo(made)
		}
	}()
	tr := tar.NewReader(r)
	type dirTime struct {
		p string
		t time.Time
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, archiveError(err)
		}
		name := path.Clean("/" + h.Name)[1:]
		if strings.HasPrefix(path.Clean(h.Name), "../") || path.Clean(h.Name) == ".." {
			return n, &EntryError{h.Name, fmt.Errorf("archive entry %q leads out of the destination: %w", h.Name, errdefs.ErrInvalidArgument)}
		}
		if name == "" {
			continue // "./": the destination directory itself stays as it is
		}
		if rename != nil {
			name = rename(name)
		}
		p := path.Join(dir, name)
		written, err := t.entry(tr, h, dir, p, rename)
		n += written
		if err != nil {
			return n, &EntryError{h.Name, err}
		}
		if h.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirTime{p, h.ModTime})
		}
	}
	// Directories' times last: creating their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		pfd, base, err := t.Parent(dirs[i].p, false)
		if err != nil {
			continue
		}
		ts := unix.NsecToTimespec(dirs[i].t.UnixNano())
		unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(pfd)
	}
	return n, nil
}

// archiveError describes an error of the tar stream itself.
func archiveError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the archive ends in the middle of an entry: %w", errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("archive: %w", err)
}

// undo removes the paths Extract created, last first; a directory only
// if it is empty by then.
func (t *Tree) undo(made []string) {
	for i := len(made) - 1; i >= 0; i-- {
		pfd, base, err := t.Parent(made[i], false)
		if err != nil {
			continue
		}
		if unix.Unlinkat(pfd, base, 0) != nil {
			unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR)
		}
		unix.Close(pfd)
	}
}

// created notes that Extract made p.
func (t *Tree) created(p string) {
	if t.made != nil {
		*t.made = append(*t.made, p)
	}
}

// Parent opens the directory p is in, creating it and its parents if
// create, and returns it with p's last element.
func (t *Tree) Parent(p string, create bool) (int, string, error) {
	dir, base := path.Split(p)
	if base == "" || base == "." || base == ".." {
		return -1, "", fmt.Errorf("%s: %s: not a file name: %w", t.name, p, errdefs.ErrInvalidArgument)
	}
	fd, err := t.Open(dir, unix.O_PATH|unix.O_DIRECTORY, true)
	if err != nil && create && errors.Is(err, errdefs.ErrNotFound) {
		fd, err = t.MkdirAll(path.Clean(dir))
	}
	return fd, base, err
}

// MkdirAll creates directory p and its missing parents. The existing part
// is resolved in the root; each new directory is then opened with no
// symbolic link allowed, so a concurrent swap fails instead of escaping.
func (t *Tree) MkdirAll(p string) (int, error) {
	if fd, err := t.Open(p, unix.O_PATH|unix.O_DIRECTORY, true); err == nil || !errors.Is(err, errdefs.ErrNotFound) {
		return fd, err
	}
	parent, err := t.MkdirAll(path.Dir(p))
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	base := path.Base(p)
	if err := unix.Mkdirat(parent, base, 0o755); err == nil {
		t.created(p)
	} else if !errors.Is(err, unix.EEXIST) {
		return -1, t.PathError(p, err)
	}
	fd, err := unix.Openat2(parent, base, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
	if errors.Is(err, unix.ELOOP) {
		// p is a symbolic link that does not lead to a directory.
		if le := t.linkError(p, true); le != nil {
			return -1, le
		}
	}
	if err != nil {
		return -1, t.PathError(p, err)
	}
	return fd, nil
}

// entry creates one archive entry at p.
func (t *Tree) entry(tr *tar.Reader, h *tar.Header, dir, p string, rename func(string) string) (int64, error) {
	switch h.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeRegA, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return 0, nil // extended headers and the like: nothing to create
	}
	pfd, base, err := t.Parent(p, true)
	if err != nil {
		return 0, err
	}
	defer unix.Close(pfd)
	var cur unix.Stat_t
	exists := unix.Fstatat(pfd, base, &cur, unix.AT_SYMLINK_NOFOLLOW) == nil
	if exists && h.Typeflag != tar.TypeDir {
		if IsDir(&cur) {
			return 0, fmt.Errorf("%s: cannot overwrite directory %s with a non-directory: %w", t.name, p, errdefs.ErrConflict)
		}
		if err := unix.Unlinkat(pfd, base, 0); err != nil {
			return 0, t.PathError(p, err)
		}
	}
	mode := uint32(h.Mode & 0o7777)
	ts := unix.NsecToTimespec(h.ModTime.UnixNano())
	switch h.Typeflag {
	case tar.TypeDir:
		if exists && !IsDir(&cur) {
			if err := unix.Unlinkat(pfd, base, 0); err != nil {
				return 0, t.PathError(p, err)
			}
			exists = false
		}
		if !exists {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return 0, t.PathError(p, err)
			}
			t.created(p)
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, t.PathError(p, err)
		}
		defer unix.Close(fd)
		return 0, t.attrs(fd, p, h, mode)
	case tar.TypeReg, tar.TypeRegA:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return 0, t.PathError(p, err)
		}
		if !exists {
			t.created(p)
		}
		f := os.NewFile(uintptr(fd), p)
		defer f.Close()
		n, err := io.Copy(f, tr)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return n, archiveError(err)
		}
		if err != nil {
			return n, t.PathError(p, err)
		}
		if err := t.attrs(fd, p, h, mode); err != nil {
			return n, err
		}
		return n, t.PathError(p, unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	case tar.TypeSymlink:
		if err := unix.Symlinkat(h.Linkname, pfd, base); err != nil {
			return 0, t.PathError(p, err)
		}
		if !exists {
			t.created(p)
		}
		if t.keepIDs {
			unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
		return 0, nil
	case tar.TypeLink:
		target := path.Clean("/" + h.Linkname)[1:]
		if rename != nil {
			target = rename(target)
		}
		// The target is looked up in the tree like any path: a hard link
		// cannot reach outside it.
		tp := path.Join(dir, target)
		ofd, obase, err := t.Parent(tp, false)
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return 0, err
		}
		if err == nil {
			defer unix.Close(ofd)
			if err = unix.Linkat(ofd, obase, pfd, base, 0); err == nil && !exists {
				t.created(p)
			}
		}
		if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("%s has no %s to make %s a hard link of: %w", t.name, tp, p, errdefs.ErrNotFound)
		}
		return 0, t.PathError(p, err)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
		if err := unix.Mknodat(pfd, base, kind|mode, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
			return 0, t.PathError(p, err)
		}
		if !exists {
			t.created(p)
		}
		if t.keepIDs {
			unix.Fchownat(pfd, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		unix.Fchmodat(pfd, base, mode, 0)
	}
	return 0, nil
}

// attrs sets an extracted file's owner (with -a), then its mode, which a
// change of owner would strip of set-user-ID bits, then its extended
// attributes, of which a change of owner would drop file capabilities.
func (t *Tree) attrs(fd int, p string, h *tar.Header, mode uint32) error {
	if t.keepIDs {
		if err := unix.Fchown(fd, h.Uid, h.Gid); err != nil {
			return t.PathError(p, err)
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return t.PathError(p, err)
	}
	return t.setXattrs(fd, p, h)
}
