package snapshot

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// errBusy is tryLock's answer when another holder has the lock.
var errBusy = errors.New("locked by another process")

// fileLock is a held flock(2) on .lock/<algorithm>-<hex>.
//
// The lock file is removed by whoever unlocks it exclusively, so that the
// store does not collect one file per chain ID ever seen; a locker that
// finds, after flock returns, that the path no longer names the inode it
// locked has raced with such a removal and tries again.
type fileLock struct {
	f         *os.File
	path      string
	exclusive bool
}

// lock takes the lock of id, exclusive or shared, waiting until it is free
// or ctx is done.
func (s *Store) lock(ctx context.Context, id digest.Digest, exclusive bool) (*fileLock, error) {
	return s.lockFile(ctx, id, exclusive, true)
}

// tryLock takes the exclusive lock of id if it is free right now, and
// fails with errBusy otherwise.
func (s *Store) tryLock(id digest.Digest) (*fileLock, error) {
	return s.lockFile(context.Background(), id, true, false)
}

func (s *Store) lockFile(ctx context.Context, id digest.Digest, exclusive, wait bool) (*fileLock, error) {
	path := filepath.Join(s.root, lockDir, name(id))
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, err
		}
		if err := flock(ctx, f, how, wait); err != nil {
			f.Close()
			return nil, err
		}
		if isFile(f, path) {
			return &fileLock{f: f, path: path, exclusive: exclusive}, nil
		}
		f.Close() // the previous holder removed the file; lock the new one
	}
}

// flock locks f without blocking in the kernel, so that ctx can end the
// wait.
func flock(ctx context.Context, f *os.File, how int, wait bool) error {
	delay := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EWOULDBLOCK):
			return err
		case !wait:
			return errBusy
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// unlock releases the lock. The last holder removes the lock file: an
// exclusive holder always, a shared one if it can take the lock exclusively
// now. Nobody else can remove or replace the path while its inode is locked
// exclusively, so the removal never hits another holder's file.
func (l *fileLock) unlock() {
	if l.exclusive || unix.Flock(int(l.f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		if isFile(l.f, l.path) {
			os.Remove(l.path)
		}
	}
	l.f.Close()
}

// isFile reports whether path still names the open file f.
func isFile(f *os.File, path string) bool {
	var held, now unix.Stat_t
	return unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &now) == nil &&
		held.Dev == now.Dev && held.Ino == now.Ino
}

// syncFS flushes the file system holding dir to disk.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// usage returns the bytes of regular-file content under dir, counting each
// inode once.
func usage(dir string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := make(map[inode]bool)
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		size += fi.Size()
		return nil
	})
	return size, err
}
