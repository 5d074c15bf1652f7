package runtime

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Paths from a spec are looked up inside the container's root with
// openat2(RESOLVE_IN_ROOT): the kernel treats the root as "/" for every
// symlink and "..", so an image cannot point a mount or a device node
// outside it. The result is an O_PATH descriptor that mount(2) is given as
// /proc/self/fd/N, so nothing can swap the path between lookup and mount.
//
// This is written by hand rather than with filepath-securejoin's pathrs-lite
// because pathrs-lite verifies every handle through a private procfs mount,
// about a thousand syscalls for a default configuration, which dominated the
// container's start; the kernel's own confinement is the same guarantee.

// handle is an O_PATH descriptor of a path inside a container's root.
type handle int

func (h handle) Close() { unix.Close(int(h)) }

// path is a name for the handle that mount(2) and friends accept.
func (h handle) path() string { return "/proc/self/fd/" + strconv.Itoa(int(h)) }

// openInRoot opens path, relative to the root directory root.
func openInRoot(root int, path string) (handle, error) {
	fd, err := unix.Openat2(root, path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return -1, &pathError{op: "open", path: path, err: err}
	}
	return handle(fd), nil
}

// mkdirAllInRoot creates path and its parents inside the root and returns
// a handle to it. A dangling symlink on the way (/var/run -> /run) is
// followed, confined to the root, as runc does.
func mkdirAllInRoot(root int, rootPath, path string) (handle, error) {
	if h, err := openInRoot(root, path); err == nil {
		return h, nil
	} else if !errors.Is(err, unix.ENOENT) {
		return -1, err
	}
	// Resolve symlinks lexically within the root; the result has none left,
	// so each component is then opened without following any.
	joined, err := securejoin.SecureJoin(rootPath, path)
	if err != nil {
		return -1, err
	}
	rel, err := filepath.Rel(rootPath, joined)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	cur := handle(fd)
	for _, comp := range strings.Split(rel, "/") {
		if comp == "" || comp == "." {
			continue
		}
		if err := unix.Mkdirat(int(cur), comp, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			cur.Close()
			return -1, &pathError{op: "mkdir", path: path, err: err}
		}
		next, err := unix.Openat2(int(cur), comp, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
		})
		cur.Close()
		if err != nil {
			return -1, &pathError{op: "open", path: path, err: err}
		}
		cur = handle(next)
	}
	return cur, nil
}

type pathError struct {
	op, path string
	err      error
}

func (e *pathError) Error() string { return e.op + " " + e.path + " in the root: " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }
