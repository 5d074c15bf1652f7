package container

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// A container's state must be writable when its disk is full: stopping and
// removing a container record how it ended, and removing containers is how
// a user gives space back. Every state write therefore prepares the space
// of the next one: a file of its own, stateReserve, which the next write
// claims by renaming it (so that two writers never share it), fills within
// the blocks it already has, and renames over state.json, as writeJSON
// does with a new file. Readers see the old state or the new, never a part
// of one, and a write killed half-way damages only a file nobody reads.
// The state that was replaced gives its blocks back, for the next reserve.
const stateReserve = "state.json.reserve"

// writeState replaces the state file in the container directory dir with
// st, in the reserve the previous write left if there is one, and leaves a
// reserve for the next write if there is room for one.
func writeState(dir string, st *State) error {
	b, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return err
	}
	path, reserve := filepath.Join(dir, stateFile), filepath.Join(dir, stateReserve)
	tmp := path + ".tmp" + newID()[:8]
	claimed := os.Rename(reserve, tmp) == nil
	if claimed {
		err = overwrite(tmp, b)
	} else {
		err = os.WriteFile(tmp, b, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		// A reserve too small for st stays one for a smaller state.
		if !claimed || os.Rename(tmp, reserve) != nil {
			os.Remove(tmp)
		}
		return err
	}
	reserveState(dir, len(b))
	return nil
}

// overwrite makes b the content of the file at path, writing over what it
// holds, in the blocks it has as far as they go.
func overwrite(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Truncate(int64(len(b)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// reserveState leaves in dir a reserve for the next state write: a file of
// twice n bytes, whole pages of at least 4 KiB, written out so that its
// blocks are allocated. Without room for it, the next write makes do
// without.
func reserveState(dir string, n int) {
	const page = 4 << 10
	size := max(page, (2*n+page-1)/page*page)
	tmp := filepath.Join(dir, stateReserve+".tmp"+newID()[:8])
	err := os.WriteFile(tmp, make([]byte, size), 0o600)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, stateReserve))
	}
	if err != nil {
		os.Remove(tmp)
	}
}
