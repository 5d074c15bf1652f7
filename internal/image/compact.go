package image

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// compactMin is the free space below which compact leaves the index as it
// is: rewriting it would give back little.
const compactMin = 1 << 20

// open opens the index file: read-only with bbolt's shared lock, or
// read-write with its exclusive one. compact replaces the file by rename
// while it holds the exclusive lock, so a process that opened the file
// before and waited for the lock would read or write a file that is no
// longer the index; open then closes it and opens the new one.
func (x index) open(readOnly bool) (*bolt.DB, error) {
	for try := 0; ; try++ {
		var f *os.File
		opts := &bolt.Options{Timeout: 30 * time.Second, ReadOnly: readOnly,
			OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
				var err error
				f, err = os.OpenFile(name, flag, mode)
				return f, err
			}}
		db, err := bolt.Open(x.path, 0o600, opts)
		if err != nil {
			return nil, err
		}
		if sameFile(f, x.path) {
			return db, nil
		}
		db.Close()
		if try == 10 {
			return nil, fmt.Errorf("the file was replaced %d times while this waited for it", try+1)
		}
	}
}

// sameFile reports whether f is the file at path.
func sameFile(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if f == nil || unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// compact rewrites the index without its free pages when they are at
// least half of the file and compactMin: bbolt reuses the pages that
// deletions free, but never gives them back to the file system. The copy
// is made beside the file and renamed over it while the file is open with
// the exclusive lock, so no process writes to the old file meanwhile and a
// crash leaves either file whole. The caller holds the store lock
// exclusively.
func (x index) compact() error {
	src, err := x.open(false)
	if err != nil {
		return fmt.Errorf("image index %s: %w", x.path, err)
	}
	defer src.Close()
	var size, free int64
	err = src.View(func(tx *bolt.Tx) error {
		st := src.Stats()
		size = tx.Size()
		free = int64(st.FreePageN+st.PendingPageN) * int64(src.Info().PageSize)
		return nil
	})
	if err != nil || free < compactMin || free < size/2 {
		return err
	}
	tmp := x.path + ".compact"
	os.Remove(tmp) // a crashed compaction's
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		return fmt.Errorf("image index %s: compacting: %w", x.path, err)
	}
	err = bolt.Compact(dst, src, 64<<20)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, x.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("image index %s: compacting: %w", x.path, err)
	}
	if d, err := os.Open(filepath.Dir(x.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
