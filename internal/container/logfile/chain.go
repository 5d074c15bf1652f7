package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The files of a log form a chain: index 0 is path, the newest; index i is
// path.i. Writer.rotate moves every file one index up, oldest first, so
// while it runs exactly one index is missing, and a file only ever moves up
// or disappears. Readers find their way along the chain by file identity
// (os.SameFile), never by name alone, because names shift under them.

// member is one existing file of the chain.
type member struct {
	index int
	info  fs.FileInfo
}

// scan lists the existing files of the chain, newest first. It stops at two
// consecutive missing indices: one may be a rotation's gap, two end the
// chain.
func scan(path string) ([]member, error) {
	var ms []member
	for i, missing := 0, 0; missing < 2; i++ {
		fi, err := os.Stat(rotated(path, i))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing++
		case err != nil:
			return nil, fmt.Errorf("log: %w", err)
		default:
			missing = 0
			ms = append(ms, member{i, fi})
		}
	}
	return ms, nil
}

// file is a chain file opened for reading, with its size when it was
// opened.
type file struct {
	f    *os.File
	size int64
}

// snapshot opens every file of the chain, oldest first, such that no
// rotation happened while they were being opened: the set is one
// consistent state of the log. A missing log is an empty one.
func snapshot(path string) ([]file, error) {
	for range 100 {
		files, ok, err := trySnapshot(path)
		if err != nil || ok {
			return files, err
		}
	}
	return nil, fmt.Errorf("log %s: rotating too fast to be read: %w", path, errdefs.ErrUnavailable)
}

// trySnapshot opens the chain once; ok is false if it changed meanwhile.
func trySnapshot(path string) (files []file, ok bool, err error) {
	ms, err := scan(path)
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if !ok {
			closeAll(files)
			files = nil
		}
	}()
	for i := len(ms) - 1; i >= 0; i-- {
		f, err := os.Open(rotated(path, ms[i].index))
		if errors.Is(err, fs.ErrNotExist) {
			return files, false, nil
		}
		if err != nil {
			return files, false, fmt.Errorf("log: %w", err)
		}
		files = append(files, file{f: f})
	}
	// Verify by a second scan that the chain is now exactly the files
	// opened, at the same indices. Checking only the names opened is not
	// enough: a scan that crossed a rotation saw that rotation's gap
	// where, once it is done, a file sits that nothing opened.
	again, err := scan(path)
	if err != nil {
		return files, false, err
	}
	if len(again) != len(ms) {
		return files, false, nil
	}
	for i, m := range again {
		fl := &files[len(files)-1-i]
		fi, err := fl.f.Stat()
		if err != nil {
			return files, false, fmt.Errorf("log: %w", err)
		}
		if m.index != ms[i].index || !os.SameFile(fi, m.info) {
			return files, false, nil
		}
		fl.size = fi.Size()
	}
	return files, true, nil
}

func closeAll(files []file) {
	for _, f := range files {
		f.f.Close()
	}
}

// successor opens the file that follows cur in the chain: the next newer
// one. It returns nil when there is none yet — cur is the newest file, or a
// rotation is under way and the next file is not in place — and the caller
// should try again later. With cur nil (nothing opened yet), and when cur
// has been removed from the chain (the reader fell behind the rotation, or
// max-file is 1), the successor is the oldest file there is.
func successor(path string, cur *os.File) (*os.File, error) {
	var ci fs.FileInfo
	if cur != nil {
		var err error
		if ci, err = cur.Stat(); err != nil {
			return nil, fmt.Errorf("log: %w", err)
		}
		if now, err := os.Stat(path); err == nil && os.SameFile(now, ci) {
			return nil, nil // the common case: cur is still the newest
		}
	}
	ms, err := scan(path)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return oldest(path, ms)
	}
	k := -1
	for _, m := range ms {
		if os.SameFile(m.info, ci) {
			k = m.index
			break
		}
	}
	switch {
	case k == 0:
		return nil, nil
	case k < 0 && linked(ci):
		return nil, nil // cur moved up while scan looked elsewhere
	case k < 0:
		return oldest(path, ms)
	}
	// The nearest existing newer file; during a rotation the gap may lie
	// between cur and it.
	j := -1
	for _, m := range ms {
		if m.index < k {
			j = m.index
		}
	}
	if j < 0 {
		return nil, nil // path itself is between rename and creation
	}
	g, err := os.Open(rotated(path, j))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	// If cur is still at k and the indices between are still empty, no
	// rename touched j..k between the scan and the open, so g is the file
	// that was next to cur.
	ok := true
	for i := j + 1; i < k && ok; i++ {
		if _, err := os.Stat(rotated(path, i)); !errors.Is(err, fs.ErrNotExist) {
			ok = false
		}
	}
	if ok {
		now, err := os.Stat(rotated(path, k))
		ok = err == nil && os.SameFile(now, ci)
	}
	if !ok {
		g.Close()
		return nil, nil
	}
	return g, nil
}

// oldest opens the oldest file among ms, or returns nil if there is none.
func oldest(path string, ms []member) (*os.File, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	f, err := os.Open(rotated(path, ms[len(ms)-1].index))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	return f, nil
}
