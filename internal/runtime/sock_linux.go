package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Unix sockets are made with raw syscalls: the runtime needs only a bound
// or connected descriptor to hand on, and the net package would add its
// poller and its start-up cost to every container start.

// listenUnix creates a listening unix socket at path.
func listenUnix(path string) (*os.File, error) {
	return unixSocket(path, func(fd int, addr *unix.SockaddrUnix) error {
		if err := unix.Bind(fd, addr); err != nil {
			return err
		}
		return unix.Listen(fd, 1)
	})
}

// dialUnix connects to the unix socket at path.
func dialUnix(path string) (*os.File, error) {
	return unixSocket(path, func(fd int, addr *unix.SockaddrUnix) error { return unix.Connect(fd, addr) })
}

func unixSocket(path string, op func(int, *unix.SockaddrUnix) error) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	name := path
	if len(name) >= 108 { // sun_path's size: go through the directory's descriptor
		dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		defer unix.Close(dir)
		name = "/proc/self/fd/" + strconv.Itoa(dir) + "/" + filepath.Base(path)
	}
	if err := op(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("unix socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}
