package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/fstree"
	"golang.org/x/sys/unix"
)

// Copying files in and out of containers, as docker cp does.
//
// A running container's files are reached through /proc/PID/root of its
// process: the root exactly as the container sees it, with its volumes,
// bind mounts and tmpfs mounts, so a copy into a path under a volume lands
// in the volume (the copy holds the container's mount namespace, so that
// stays true if the container stops meanwhile). A container that is not running gets the same view in a
// private mount namespace of a thread of this process: its overlay root
// (mounted there, or the one its monitor holds while it waits to restart),
// its volumes and bind mounts on top, read-only where the container has
// them read-only, and an empty read-only tmpfs on each tmpfs mount (its
// content exists only while the container runs, so a copy there fails
// rather than vanish under the mount). Nothing of it is visible on the
// host, and it all goes away with the copy, even if berth is killed. While
// such a copy runs, the container cannot be started (start waits).
//
// Copies keep contents, modes, times, symbolic links, hard links (two
// names of one file in what is copied are two names of one file in the
// copy), the user's extended attributes (user.*) and file capabilities
// (security.capability), and owners with -a.
//
// Every path in the container is looked up by the kernel inside the
// container's root (openat2 RESOLVE_IN_ROOT; see tree), so no symbolic link
// or ".." in the container can make a copy read or write outside it.

// CopyOptions are docker cp's flags.
type CopyOptions struct {
	// Archive keeps the owners (uid and gid) of the source; otherwise
	// copies belong to the user running berth, root in a container.
	Archive bool
	// FollowLink copies what a symbolic link SRC points to rather than
	// the link.
	FollowLink bool
}

// CopyFromContainer copies src, a path in the container ref names, to dst
// on the host, following docker cp's rules: a file onto a file or into a
// directory; a directory into an existing directory, or as dst if dst does
// not exist; with src ending in "/." a directory's contents only. It
// returns the bytes of file content copied.
func (e *Engine) CopyFromContainer(ctx context.Context, ref, src, dst string, o CopyOptions) (int64, error) {
	return e.copyWithHost(ctx, ref, dst, o, func(ct, host *fstree.Tree, hostDst string) (int64, error) {
		return copyPath(ct, containerPath(src), host, hostDst, o)
	})
}

// CopyToContainer copies src on the host to dst, a path in the container
// ref names, with the rules of CopyFromContainer.
func (e *Engine) CopyToContainer(ctx context.Context, ref, src, dst string, o CopyOptions) (int64, error) {
	return e.copyWithHost(ctx, ref, src, o, func(ct, host *fstree.Tree, hostSrc string) (int64, error) {
		return copyPath(host, hostSrc, ct, containerPath(dst), o)
	})
}

// copyWithHost opens the trees of the container ref names and of the host
// and runs fn with them and hostPath's form of the host path p.
func (e *Engine) copyWithHost(ctx context.Context, ref, p string, o CopyOptions, fn func(ct, host *fstree.Tree, hp string) (int64, error)) (int64, error) {
	ct, release, err := e.containerTree(ctx, ref, o.Archive)
	if err != nil {
		return 0, err
	}
	defer release()
	host, err := hostTree(o.Archive)
	if err != nil {
		return 0, err
	}
	defer host.Close()
	hp, err := hostPath(p)
	if err != nil {
		return 0, err
	}
	return fn(ct, host, hp)
}

// ArchiveFromContainer writes src, a path in the container ref names, to w
// as a tar stream whose entries are named after src's last element (its
// contents only, if src ends in "/.").
func (e *Engine) ArchiveFromContainer(ctx context.Context, ref, src string, w io.Writer, o CopyOptions) (int64, error) {
	ct, release, err := e.containerTree(ctx, ref, o.Archive)
	if err != nil {
		return 0, err
	}
	defer release()
	p, contents, slash := markers(containerPath(src))
	st, err := ct.Stat(p, o.FollowLink || slash)
	if err != nil {
		return 0, err
	}
	if (contents || slash) && !fstree.IsDir(&st) {
		return 0, fmt.Errorf("%s: %s is not a directory: %w", ct.Name(), p, errdefs.ErrInvalidArgument)
	}
	prefix := path.Base(p)
	if contents || p == "/" {
		prefix = ""
	}
	tw := tar.NewWriter(w)
	n, err := ct.Archive(tw, p, prefix, o.FollowLink || slash)
	if err != nil {
		return n, err
	}
	return n, tw.Close()
}

// ExtractToContainer unpacks the tar stream r into dst, a directory in the
// container ref names. If an entry cannot be extracted (such as one that
// would be written through a symbolic link leading outside the
// container), what the archive had added is removed and the error names
// the entry.
func (e *Engine) ExtractToContainer(ctx context.Context, ref, dst string, r io.Reader, o CopyOptions) (int64, error) {
	ct, release, err := e.containerTree(ctx, ref, o.Archive)
	if err != nil {
		return 0, err
	}
	defer release()
	p, _, _ := markers(containerPath(dst))
	st, err := ct.Stat(p, true)
	if err != nil {
		return 0, err
	}
	if !fstree.IsDir(&st) {
		return 0, fmt.Errorf("%s: %s is not a directory: a tar stream is extracted into a directory: %w", ct.Name(), p, errdefs.ErrInvalidArgument)
	}
	n, err := ct.Extract(r, p, nil)
	var ee *fstree.EntryError
	switch {
	case errors.As(err, &ee):
		return n, fmt.Errorf("cp: the archive was not extracted: its entry %q: %w", ee.Entry, ee.Err)
	case err != nil:
		return n, fmt.Errorf("cp: the archive was not extracted: %w", err)
	}
	return n, nil
}

// markers cleans p and says whether it ended in "/." (a directory's
// contents) or "/" (must be a directory).
func markers(p string) (clean string, contents, slash bool) {
	contents = p == "." || strings.HasSuffix(p, "/.")
	slash = strings.HasSuffix(p, "/") && p != "/"
	return path.Clean(p), contents, slash
}

// containerPath makes p absolute in the container (docker cp takes paths
// relative to the container's root), keeping its trailing "/" or "/.".
func containerPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// hostPath makes p absolute on the host, keeping its trailing "/" or "/.".
func hostPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("cp: empty path: %w", errdefs.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	switch {
	case p == "." || strings.HasSuffix(p, "/."):
		abs = strings.TrimSuffix(abs, "/") + "/."
	case strings.HasSuffix(p, "/") && abs != "/":
		abs += "/"
	}
	return abs, nil
}

func hostTree(keepIDs bool) (*fstree.Tree, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return fstree.New(fd, "the host", false, keepIDs), nil
}

// copyPath copies srcPath of src to dstPath of dst with docker cp's rules.
func copyPath(src *fstree.Tree, srcPath string, dst *fstree.Tree, dstPath string, o CopyOptions) (int64, error) {
	sp, contents, srcSlash := markers(srcPath)
	follow := o.FollowLink || srcSlash
	sst, err := src.Stat(sp, follow)
	if err != nil {
		return 0, err
	}
	srcDir := fstree.IsDir(&sst)
	if (contents || srcSlash) && !srcDir {
		return 0, fmt.Errorf("%s: %s is not a directory: %w", src.Name(), sp, errdefs.ErrInvalidArgument)
	}
	dp, _, dstSlash := markers(dstPath)
	var dir, prefix string
	dst0, err := dst.Stat(dp, true)
	switch {
	case err == nil && fstree.IsDir(&dst0):
		dir, prefix = dp, path.Base(sp)
		if contents || sp == "/" {
			prefix = ""
		}
	case err == nil:
		if srcDir {
			return 0, fmt.Errorf("cannot copy directory %s into %s, which is a file in %s: %w", sp, dp, dst.Name(), errdefs.ErrInvalidArgument)
		}
		dir, prefix = path.Dir(dp), path.Base(dp)
	case errors.Is(err, errdefs.ErrNotFound):
		if dstSlash && !srcDir {
			return 0, fmt.Errorf("%s has no directory %s to copy %s into: %w", dst.Name(), dp, path.Base(sp), errdefs.ErrNotFound)
		}
		dir, prefix = path.Dir(dp), path.Base(dp)
		pst, err := dst.Stat(dir, true)
		if err != nil || !fstree.IsDir(&pst) {
			return 0, fmt.Errorf("%s has no directory %s to copy into: %w", dst.Name(), dir, errdefs.ErrNotFound)
		}
	default:
		return 0, err
	}
	r := src.Stream(sp, prefix, follow)
	defer r.Close()
	return dst.Extract(r, dir, nil)
}

// containerTree opens the root of the container ref names as its
// processes see it (see the comment at the top of this file) and returns
// it with the function that releases it.
func (e *Engine) containerTree(ctx context.Context, ref string, keepIDs bool) (*fstree.Tree, func(), error) {
	c, st, err := e.Get(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	name := "container " + c.Name
	if live(st) {
		if root, ns, err := procRoot(c.ID, st.Pid); err == nil {
			return fstree.New(root, name, true, keepIDs), func() { unix.Close(root); unix.Close(ns) }, nil
		}
	}
	unlock, err := e.lockFile(c.ID, "start.lock")
	if err != nil {
		return nil, nil, err
	}
	// Started before the lock was ours?
	if st, err = e.state(c.ID); err == nil && live(st) {
		if root, ns, err := procRoot(c.ID, st.Pid); err == nil {
			unlock()
			return fstree.New(root, name, true, keepIDs), func() { unix.Close(root); unix.Close(ns) }, nil
		}
	}
	root, ns, err := e.privateRoot(c)
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("cp: container %s is not running and its files could not be mounted: %w", c.Name, err)
	}
	return fstree.New(root, name, true, keepIDs), func() { unix.Close(root); unix.Close(ns); unlock() }, nil
}

func live(st *State) bool { return (st.Status == Running || st.Status == Paused) && st.Pid > 0 }

// procRoot opens the root directory of process pid, once sure that the
// process is in container id's cgroup (and not a process that took the
// pid of the container's exited one), and its mount namespace: holding
// that keeps the container's volumes mounted where the copy expects them
// even if the container stops meanwhile.
func procRoot(id string, pid int) (root, ns int, err error) {
	pfd, err := unix.Open("/proc/"+strconv.Itoa(pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	defer unix.Close(pfd)
	if ns, err = unix.Openat(pfd, "ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		return -1, -1, err
	}
	cfd, err := unix.Openat(pfd, "cgroup", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		f := os.NewFile(uintptr(cfd), "cgroup")
		var b []byte
		b, err = io.ReadAll(f)
		f.Close()
		if err == nil && !strings.Contains(string(b), cgroupPath(id)) {
			err = fmt.Errorf("process %d is not the container's", pid)
		}
	}
	if err == nil {
		root, err = unix.Openat(pfd, "root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		unix.Close(ns)
		return -1, -1, err
	}
	return root, ns, nil
}

// privateRoot builds the view of a container that is not running in a new
// mount namespace, on a thread of its own that exits when done (the
// namespace lives on through the returned descriptor ns), and returns an
// O_PATH descriptor of its root. The caller holds the start lock.
func (e *Engine) privateRoot(c *Container) (root, ns int, err error) {
	type result struct {
		root, ns int
		err      error
	}
	ch := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, whose mount namespace differs from
		// the process's, ends with this goroutine.
		runtime.LockOSThread()
		r := result{root: -1, ns: -1}
		r.root, r.ns, r.err = e.mountPrivate(c)
		if r.err != nil {
			for _, fd := range []int{r.root, r.ns} {
				if fd >= 0 {
					unix.Close(fd)
				}
			}
		}
		ch <- r
	}()
	r := <-ch
	return r.root, r.ns, r.err
}

func (e *Engine) mountPrivate(c *Container) (root, ns int, err error) {
	root, ns = -1, -1
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return root, ns, fmt.Errorf("mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return root, ns, fmt.Errorf("mount namespace: %w", err)
	}
	target := filepath.Join(e.dir(c.ID), rootfsDir)
	if err := e.mountRootfs(c); err != nil { // unless its monitor holds it mounted
		return root, ns, err
	}
	if c.Host.ReadOnly {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return root, ns, fmt.Errorf("read-only root: %w", err)
		}
	}
	if root, err = unix.Open(target, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return root, ns, err
	}
	t := fstree.New(root, "container "+c.Name, true, false)
	mounts := slices.Clone(c.Host.Mounts)
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		if src := filepath.Join(e.dir(c.ID), f); !c.hasMount("/etc/"+f) && exists(src) {
			mounts = append(mounts, Mount{Type: "bind", Source: src, Destination: "/etc/" + f})
		}
	}
	// Parents before children, as the container gets them.
	slices.SortStableFunc(mounts, func(a, b Mount) int {
		return strings.Count(filepath.Clean(a.Destination), "/") - strings.Count(filepath.Clean(b.Destination), "/")
	})
	for _, m := range mounts {
		if err := e.mountInto(t, m); err != nil {
			return root, ns, fmt.Errorf("mount %s: %w", m.Destination, err)
		}
	}
	ns, err = unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	return root, ns, err
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// mountInto mounts m on its destination in t, creating the mount point
// inside the root as the runtime would.
func (e *Engine) mountInto(t *fstree.Tree, m Mount) error {
	src := m.Source
	if m.Type == "volume" {
		src = filepath.Join(e.volRoot, m.Source, volumeData)
	}
	file := false
	if m.Type != "tmpfs" {
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("source %s: %w", src, err)
		}
		file = !fi.IsDir()
	}
	dest := path.Clean("/" + m.Destination)
	var fd int
	var err error
	if file {
		pfd, base, perr := t.Parent(dest, true)
		if perr != nil {
			return perr
		}
		if f, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644); err == nil {
			unix.Close(f)
		}
		unix.Close(pfd)
		fd, err = t.Open(dest, unix.O_PATH, true)
	} else {
		fd, err = t.MkdirAll(dest)
	}
	if err != nil {
		return err
	}
	at := "/proc/self/fd/" + strconv.Itoa(fd)
	if m.Type == "tmpfs" {
		err = unix.Mount("tmpfs", at, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,mode=755")
	} else {
		err = unix.Mount(src, at, "", unix.MS_BIND|unix.MS_REC, "")
	}
	unix.Close(fd)
	if err != nil || !m.ReadOnly || m.Type == "tmpfs" {
		return err
	}
	// The new mount is on top of the mount point: look it up again.
	if fd, err = t.Open(dest, unix.O_PATH, true); err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Mount("", "/proc/self/fd/"+strconv.Itoa(fd), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
}
