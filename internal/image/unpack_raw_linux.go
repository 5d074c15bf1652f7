package image

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The unpacker's most frequent system calls (a few per entry, tens of
// thousands per pull), made without telling the Go scheduler.
//
// An ordinary system call lets the scheduler hand the goroutine's P to
// another thread if the call lasts more than a sysmon tick (20 µs), and
// creating an inode on ext4 often does: the P changes hands, threads are
// woken and put back to sleep, and sysmon, kept busy, polls every 20 µs.
// In a virtual machine those switches are dear: with ordinary calls, a
// cold pull of the benchmark image (10,700 entries) made about 6,000
// context switches and 2,400 nanosleep calls, with these 3,500 and 1,500,
// and took a tenth less CPU time. The calls here create entries and set
// their times: they work on the local file system's metadata and wait for
// nothing else, so holding the P through them costs nothing, the thread
// keeps the core busy in the kernel meanwhile. Writing file content stays
// an ordinary call: it may sleep while the kernel throttles dirty pages.

func rawOpenat(dirfd int, path string, flags int, mode uint32) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	for {
		fd, _, e := syscall.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(fd), nil
	}
}

func rawMkdirat(dirfd int, path string, mode uint32) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	return rawErr(syscall.RawSyscall(unix.SYS_MKDIRAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(mode)))
}

func rawSymlinkat(target string, dirfd int, path string) error {
	t, err := unix.BytePtrFromString(target)
	if err != nil {
		return err
	}
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	return rawErr(syscall.RawSyscall(unix.SYS_SYMLINKAT, uintptr(unsafe.Pointer(t)), uintptr(dirfd), uintptr(unsafe.Pointer(p))))
}

func rawUtimensat(dirfd int, path string, ts []unix.Timespec, flags int) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	return rawErr(syscall.RawSyscall6(unix.SYS_UTIMENSAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&ts[0])), uintptr(flags), 0, 0))
}

func rawClose(fd int) error {
	return rawErr(syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0))
}

func rawErr(_, _ uintptr, e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}
