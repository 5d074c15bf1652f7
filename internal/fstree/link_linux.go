package fstree

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// LinkError is the error of a path that goes through a symbolic link the
// tree cannot follow: one that points to nothing in the tree, leads
// outside it (a /proc/…/root or /proc/…/fd link of a running container)
// or loops. Its errdefs class is Err's.
type LinkError struct {
	Path   string // the path looked up, in the tree
	Link   string // the symbolic link on the way (Path itself or a parent)
	Target string // what Link holds
	Why    string // "is not in container web", "loops through links"…
	Err    error  // the errdefs class
}

func (e *LinkError) Error() string {
	if e.Path == e.Link {
		return fmt.Sprintf("%s is a symbolic link to %s, which %s: %v", e.Path, e.Target, e.Why, e.Err)
	}
	return fmt.Sprintf("%s goes through the symbolic link %s -> %s, which %s: %v", e.Path, e.Link, e.Target, e.Why, e.Err)
}

func (e *LinkError) Unwrap() error { return e.Err }

// linkError explains err (ENOENT or ELOOP), the failed lookup of p, by the
// first symbolic link on p's way that cannot be followed (the last element
// of p counts if follow), or returns nil if no link is to blame. It only
// looks: every lookup is one of the tree's, and the descriptors are closed.
func (t *Tree) linkError(p string, follow bool) *LinkError {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	q := ""
	for i, part := range parts {
		if part == "" || part == "." {
			continue
		}
		q += "/" + part
		if i == len(parts)-1 && !follow {
			return nil
		}
		fd, err := t.openat2(q, t.how(unix.O_PATH|unix.O_NOFOLLOW))
		if err != nil {
			return nil // plainly missing: no link to blame
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			unix.Close(fd)
			continue
		}
		target, _ := readlinkat(fd, "")
		unix.Close(fd)
		fd, err = t.openat2(q, t.how(unix.O_PATH))
		if err == nil {
			unix.Close(fd)
			continue
		}
		le := &LinkError{Path: trimSlash(p), Link: q, Target: target}
		switch {
		case errors.Is(err, unix.ENOENT):
			le.Why, le.Err = "is not in "+t.name, errdefs.ErrNotFound
		case errors.Is(err, unix.ELOOP) && t.inRoot && t.magic(q):
			le.Why, le.Err = "needs a link of /proc, never followed as it could lead outside "+t.name, errdefs.ErrPermission
		case errors.Is(err, unix.ELOOP):
			le.Why, le.Err = "loops through links", errdefs.ErrInvalidArgument
		default:
			return nil
		}
		return le
	}
	return nil
}

// magic reports whether following q in the tree needs a magic link (a
// symbolic link of procfs, such as /proc/1/root, which the tree refuses
// to follow; the kernel says ELOOP as for a loop). It follows q's links
// one by one as the kernel would, and only looks.
func (t *Tree) magic(q string) bool {
	for hops := 0; hops < 40 && q != ""; hops++ {
		parts := strings.Split(strings.Trim(q, "/"), "/")
		r, next := "", ""
		for i, part := range parts {
			r += "/" + part
			fd, err := t.openat2(r, t.how(unix.O_PATH|unix.O_NOFOLLOW))
			if err != nil {
				return false
			}
			var st unix.Stat_t
			var fs unix.Statfs_t
			if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK || unix.Fstatfs(fd, &fs) != nil {
				unix.Close(fd)
				continue
			}
			target, err := readlinkat(fd, "")
			unix.Close(fd)
			if fd, err := t.openat2(r, t.how(unix.O_PATH)); err == nil {
				unix.Close(fd)
				continue
			}
			if fs.Type == unix.PROC_SUPER_MAGIC {
				return true
			}
			if err != nil {
				return false
			}
			// Go on from where the link leads, with the rest of q.
			if !strings.HasPrefix(target, "/") {
				target = path.Dir(r) + "/" + target
			}
			next = target + "/" + strings.Join(parts[i+1:], "/")
			break
		}
		q = next
	}
	return false
}

// openat2 is unix.Openat2 at the tree's root, retried when a concurrent
// rename elsewhere asks for it.
func (t *Tree) openat2(p string, how *unix.OpenHow) (int, error) {
	for {
		fd, err := unix.Openat2(t.root, p, how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// trimSlash is p without a trailing "/" (but "/" itself).
func trimSlash(p string) string {
	if len(p) > 1 {
		return strings.TrimRight(p, "/")
	}
	return p
}
