package logfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ReadOptions select the entries Read delivers.
type ReadOptions struct {
	// Tail, when not negative, starts at the Tail-th last entry that
	// passes Since and Until, counted across all rotated files; 0 starts
	// at the end. Negative reads everything.
	Tail int
	// Since and Until, when not zero, keep only entries with Since ≤ Time
	// ≤ Until.
	Since, Until time.Time
	// Follow keeps reading entries as they are written, across rotations,
	// until the context is done, Stop says so, or Until has passed.
	Follow bool
	// Stop, with Follow, is asked each time the reader has caught up with
	// the writer. Once it returns true (the writer has exited), Read
	// delivers what was written until then and returns nil.
	Stop func() bool
}

// pollInterval is how often a following reader looks for new entries.
const pollInterval = 50 * time.Millisecond

// maxRecord bounds the length of a line the reader keeps; a line longer
// than this cannot be an entry of MaxLine bytes, however escaped, and is
// skipped like any other corrupt line.
const maxRecord = 1 << 20

// Read calls fn with the entries of the log at path, oldest first: those of
// path.N … path.1 and then those of path. Without Follow it reads the log
// as it was when Read began and returns nil at its end; a log that does not
// exist is empty. Lines that are not entries (corrupt, or cut short by a
// killed writer) are skipped. An error from fn stops Read and is returned
// as is; a done context stops it with the context's error.
//
// With Follow, Read goes on delivering new entries, in order and each once,
// also while the writer rotates — unless the reader falls more than
// max-file-1 rotations behind, when the entries of files removed in
// between are lost to it as to everyone else. It waits for a log that does
// not exist yet to appear.
func Read(ctx context.Context, path string, o ReadOptions, fn func(Entry) error) error {
	files, err := snapshot(path)
	if err != nil {
		return err
	}
	defer func() { closeAll(files) }()
	r := &reader{ctx: ctx, o: o, fn: fn}
	start, off, err := r.start(files)
	if err != nil {
		return fmt.Errorf("log %s: %w", path, err)
	}
	if !o.Follow {
		for i := start; i < len(files); i++ {
			r.lines.reset(io.NewSectionReader(files[i].f, off, files[i].size-off))
			if err := r.drain(); err != nil {
				return err
			}
			off = 0
		}
		return nil
	}
	// Rotated files no longer change; read them through the descriptors
	// opened by snapshot, which keep them readable if they are removed.
	var cur *os.File
	if n := len(files); n > 0 {
		for i := start; i < n; i++ {
			if _, err := files[i].f.Seek(off, io.SeekStart); err != nil {
				return fmt.Errorf("log %s: %w", path, err)
			}
			off = 0
			r.lines.reset(files[i].f)
			if i < n-1 {
				if err := r.drain(); err != nil {
					return err
				}
			}
		}
		cur = files[n-1].f // follow owns it now
		closeAll(files[:n-1])
		files = nil
	}
	return r.follow(path, cur)
}

// reader is the state of one Read.
type reader struct {
	ctx   context.Context
	o     ReadOptions
	fn    func(Entry) error
	lines lineReader
}

// start finds where Tail asks reading to begin: the index of a file and an
// offset in it.
func (r *reader) start(files []file) (int, int64, error) {
	if r.o.Tail < 0 || len(files) == 0 {
		return 0, 0, nil
	}
	need := r.o.Tail
	for i := len(files) - 1; i >= 0; i-- {
		off, found, err := tailOffset(files[i].f, files[i].size, need, r.keep)
		if err != nil || found == need {
			return i, off, err
		}
		need -= found
	}
	return 0, 0, nil
}

// follow reads cur to its end and then on along the chain, waiting for new
// entries, until it is told to stop.
func (r *reader) follow(path string, cur *os.File) error {
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	timer := time.NewTimer(pollInterval)
	defer timer.Stop()
	stopping := false
	for {
		if cur != nil {
			if err := r.drain(); err != nil {
				return err
			}
		}
		next, err := successor(path, cur)
		if err != nil {
			return err
		}
		if next != nil {
			// The writer renamed cur before it created next, so
			// everything it wrote to cur is there now.
			if cur != nil {
				if err := r.drain(); err != nil {
					next.Close()
					return err
				}
				cur.Close()
			}
			cur = next
			r.lines.reset(cur) // drops an unterminated last line
			continue
		}
		if stopping {
			return nil
		}
		if (r.o.Stop != nil && r.o.Stop()) || (!r.o.Until.IsZero() && time.Now().After(r.o.Until)) {
			stopping = true // one more pass for what came before the stop
			continue
		}
		timer.Reset(pollInterval)
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-timer.C:
		}
	}
}

// drain delivers the complete lines up to the end of the current reader.
func (r *reader) drain() error {
	for {
		line, err := r.lines.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		if err := r.ctx.Err(); err != nil {
			return err
		}
		e, ok := decode(line)
		if !ok || !r.inRange(e.Time) {
			continue
		}
		if err := r.fn(e); err != nil {
			return err
		}
	}
}

// inRange applies Since and Until.
func (r *reader) inRange(t time.Time) bool {
	return (r.o.Since.IsZero() || !t.Before(r.o.Since)) && (r.o.Until.IsZero() || !t.After(r.o.Until))
}

// keep reports whether line is an entry that Read would deliver.
func (r *reader) keep(line []byte) bool {
	e, ok := decode(line)
	return ok && r.inRange(e.Time)
}

// decode parses one line of a log file (without its newline). Anything but
// a JSON object with a time is not an entry.
func decode(line []byte) (Entry, bool) {
	var rec struct {
		Log    string    `json:"log"`
		Stream string    `json:"stream"`
		Time   time.Time `json:"time"`
	}
	if json.Unmarshal(line, &rec) != nil || rec.Time.IsZero() {
		return Entry{}, false
	}
	return Entry{Time: rec.Time.UTC(), Stream: rec.Stream, Line: []byte(rec.Log)}, true
}

// lineReader splits a growing file into lines. At the end of what has been
// written so far it keeps an unterminated line, to be completed by the
// next read.
type lineReader struct {
	br       *bufio.Reader
	partial  []byte
	overlong bool // the line being read passed maxRecord and is skipped
}

// reset starts reading from rd, dropping any unterminated line.
func (l *lineReader) reset(rd io.Reader) {
	if l.br == nil {
		l.br = bufio.NewReaderSize(rd, 64<<10)
	} else {
		l.br.Reset(rd)
	}
	l.partial, l.overlong = l.partial[:0], false
}

// next returns the next complete line without its newline, valid until the
// next call, or io.EOF at the end of what is there.
func (l *lineReader) next() ([]byte, error) {
	for {
		s, err := l.br.ReadSlice('\n')
		if err == nil {
			skip := l.overlong
			l.overlong = false
			if skip || len(l.partial)+len(s) > maxRecord {
				l.partial = l.partial[:0]
				continue
			}
			if len(l.partial) == 0 {
				return s[:len(s)-1], nil
			}
			line := append(l.partial, s[:len(s)-1]...)
			l.partial = line[:0]
			return line, nil
		}
		if !l.overlong {
			l.partial = append(l.partial, s...)
			if len(l.partial) > maxRecord {
				l.partial, l.overlong = l.partial[:0], true
			}
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// tailChunk is how much tailOffset reads at a time.
const tailChunk = 32 << 10

// tailOffset scans the first size bytes of f backwards for the n-th last
// complete line for which keep is true. It returns that line's offset and
// n, or, if there are fewer such lines, 0 and how many there are. With n 0
// it returns the offset just past the last complete line.
func tailOffset(f io.ReaderAt, size int64, n int, keep func([]byte) bool) (int64, int, error) {
	pos := size         // buf holds the bytes at [pos, pos+len(buf))
	var buf []byte      // … which end with the line being assembled
	terminated := false // whether that line has a newline (the file's last bytes may not)
	skip := false       // that line passed maxRecord and is no entry
	found := 0
	for {
		i := bytes.LastIndexByte(buf, '\n')
		if i < 0 && pos > 0 {
			if len(buf) > maxRecord {
				buf, skip = buf[:0], true
			}
			m := min(tailChunk, pos)
			pos -= m
			nb := make([]byte, m, int(m)+len(buf))
			if _, err := f.ReadAt(nb, pos); err != nil {
				return 0, 0, err
			}
			buf = append(nb, buf...)
			continue
		}
		start := pos + int64(i) + 1 // i is -1 for the file's first line
		switch {
		case !terminated:
			if n == 0 {
				return start, 0, nil
			}
		case !skip && keep(buf[i+1:]):
			found++
			if found == n {
				return start, found, nil
			}
		}
		if i < 0 {
			return 0, found, nil
		}
		buf, terminated, skip = buf[:i], true, false
	}
}
