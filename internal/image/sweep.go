package image

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// What a command writes into the store becomes visible only at its end, by
// a rename or a record in images.db. Until then it is temporary state under
// the store's root:
//
//	ROOT/blobs/ALGO/.tmp-*   blobs being written (blobStore.write, writeDiff)
//	ROOT/staging/*           layers unpacked and waiting for their commit
//	ROOT/transfers/*         transfers' scratch space: the OCI layouts of
//	                         load and save, import's spooled input
//
// (the snapshot store sweeps its own .tmp: see package snapshot).
//
// Every command that makes temporary state (pull, load, import, save,
// commit, build) holds the store lock, ROOT/lock, shared for as long as its
// state exists. A command killed with SIGKILL loses its lock with its
// process, but its state stays: hundreds of MB for a large layer. Whoever
// holds the lock exclusively therefore knows that no writer runs, and that
// all temporary state is a killed writer's: gc removes it, and so does each
// writer as it starts, if it can take the lock exclusively without waiting
// (sweep). While another writer runs, the sweep waits for a later command.

const (
	stagingDir = "staging"
	scratchDir = "transfers"
)

// lock takes the store lock: shared for the commands that write to the
// store, which may run side by side (it sweeps first), exclusive for
// garbage collection.
func (s *Store) lock(exclusive bool) (func(), error) {
	how := unix.LOCK_EX
	if !exclusive {
		s.sweep()
		how = unix.LOCK_SH
	}
	f, err := s.flock(how)
	if err != nil {
		return nil, fmt.Errorf("image store lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// flock opens the store's lock file and locks it as how says.
func (s *Store) flock(how int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(s.root, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// sweep removes the temporary state of killed writers when no writer runs,
// that is when it can take the store lock exclusively at once. Otherwise
// it leaves everything as it is: it cannot tell a live writer's state from
// a killed one's. A process that holds the lock shared never sweeps.
func (s *Store) sweep() {
	f, err := s.flock(unix.LOCK_EX | unix.LOCK_NB)
	if err != nil {
		return
	}
	defer f.Close()
	s.removeTemporary()
}

// removeTemporary removes all temporary state. The caller holds the store
// lock exclusively. It is best effort: what it cannot remove now, a later
// sweep will.
func (s *Store) removeTemporary() {
	tmps, _ := filepath.Glob(filepath.Join(s.blobs.root, "*", ".tmp-*"))
	for _, dir := range []string{stagingDir, scratchDir} {
		entries, _ := os.ReadDir(filepath.Join(s.root, dir))
		for _, e := range entries {
			tmps = append(tmps, filepath.Join(s.root, dir, e.Name()))
		}
	}
	for _, t := range tmps {
		os.RemoveAll(t)
	}
}

// scratch makes a new directory under ROOT/transfers for a transfer's
// temporary files. The caller holds the store lock shared until it has
// removed the directory.
func (s *Store) scratch(prefix string) (string, error) {
	base := filepath.Join(s.root, scratchDir)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(base, prefix)
}
