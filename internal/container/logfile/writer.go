package logfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Writer appends log entries to one file, rotating it when it would grow
// past its size limit. Its streams may be written from several goroutines.
type Writer struct {
	path     string
	maxSize  int64
	maxFiles int
	closed   atomic.Bool

	mu      sync.Mutex // guards everything below, and orders entries in the file
	f       *os.File
	size    int64
	buf     bytes.Buffer
	enc     *json.Encoder
	streams []*stream
}

// record is an entry as Docker's json-file driver writes it; the field order
// is Docker's.
type record struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

// NewWriter opens path for appending, creating it if needed (its directory
// must exist). When maxSize is positive, an entry that would take the file
// past maxSize bytes first rotates it: path is renamed to path.1, path.1 to
// path.2, … up to path.(maxFiles-1), and the file renamed onto the last name
// is thereby removed; with maxFiles 1 the full file is simply removed. A file
// is never empty of entries, so an entry larger than maxSize gets a file to
// itself. maxSize 0 never rotates.
//
// If the file ends in an unterminated line, left by a writer killed in the
// middle of a write, NewWriter terminates it so that the entries appended
// after it stay readable. When rotation is on, older files beyond maxFiles
// left by an earlier configuration are removed.
func NewWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	if maxSize < 0 || maxFiles < 1 {
		return nil, fmt.Errorf("log %s: max-size %d and max-file %d: want max-size ≥ 0 and max-file ≥ 1: %w", path, maxSize, maxFiles, errdefs.ErrInvalidArgument)
	}
	w := &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles}
	w.enc = json.NewEncoder(&w.buf)
	if err := w.open(); err != nil {
		return nil, err
	}
	if err := w.repair(); err != nil {
		w.f.Close()
		return nil, err
	}
	if maxSize > 0 {
		for i, missing := maxFiles, 0; missing < 2; i++ {
			err := os.Remove(rotated(path, i))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				missing++
			case err != nil:
				w.f.Close()
				return nil, fmt.Errorf("log: %w", err)
			default:
				missing = 0
			}
		}
	}
	return w, nil
}

// open opens (or creates) the file at path and records its size.
func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}

// repair terminates a last line that lacks its newline.
func (w *Writer) repair() error {
	if w.size == 0 {
		return nil
	}
	var last [1]byte
	if _, err := w.f.ReadAt(last[:], w.size-1); err != nil {
		return fmt.Errorf("log %s: %w", w.path, err)
	}
	if last[0] == '\n' {
		return nil
	}
	n, err := w.f.Write([]byte{'\n'})
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("log %s: %w", w.path, err)
	}
	return nil
}

// Stream returns a writer for the named stream ("stdout" or "stderr"). It
// splits what is written into lines and appends each complete line as one
// entry, timestamped when the line completes. An unterminated line is held
// until its newline arrives, or until it grows past MaxLine, when its first
// MaxLine bytes (cut between UTF-8 characters) become an entry of their
// own; Close flushes what is held.
// Write returns an error when the entry could not be written (the bytes are
// then lost, and later lines are still attempted) or after Close.
func (w *Writer) Stream(name string) io.Writer {
	s := &stream{w: w, name: name}
	w.mu.Lock()
	w.streams = append(w.streams, s)
	w.mu.Unlock()
	return s
}

// Path is the log's path.
func (w *Writer) Path() string { return w.path }

// Flush writes every stream's unterminated line as an entry without a
// newline, as Close does, and leaves the Writer open.
func (w *Writer) Flush() error {
	w.mu.Lock()
	streams := w.streams
	w.mu.Unlock()
	var errs []error
	for _, s := range streams {
		errs = append(errs, s.flush())
	}
	return errors.Join(errs...)
}

// Close flushes every stream's unterminated line as an entry without a
// newline and closes the file. Closing a closed Writer does nothing.
func (w *Writer) Close() error {
	if w.closed.Swap(true) {
		return nil
	}
	errs := []error{w.Flush()}
	w.mu.Lock()
	defer w.mu.Unlock()
	errs = append(errs, w.f.Close())
	w.f = nil
	return errors.Join(errs...)
}

// append writes one entry with a single write(2), rotating first if the
// entry would take the file past maxSize.
func (w *Writer) append(stream string, line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fmt.Errorf("log %s: %w", w.path, os.ErrClosed)
	}
	// The time is taken under the lock so that the file is in time order.
	t := time.Now().UTC().Format(timeFormat)
	w.buf.Reset()
	if err := w.enc.Encode(record{Log: string(line), Stream: stream, Time: t}); err != nil {
		return fmt.Errorf("log %s: %w", w.path, err)
	}
	if w.maxSize > 0 && w.size > 0 && w.size+int64(w.buf.Len()) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf.Bytes())
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("log %s: %w", w.path, err)
	}
	return nil
}

// rotate shifts the chain of files by one and starts a new, empty path.
// Renames go from the oldest to the newest, so that at any moment at most
// one index of the chain is missing; readers rely on this.
func (w *Writer) rotate() error {
	if w.maxFiles == 1 {
		if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("log rotation: %w", err)
		}
	} else {
		for i := w.maxFiles - 2; i >= 0; i-- {
			err := os.Rename(rotated(w.path, i), rotated(w.path, i+1))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("log rotation: %w", err)
			}
		}
	}
	old := w.f
	if err := w.open(); err != nil {
		// Keep appending to the old file, wherever it now is, rather than
		// losing entries; the next entry tries to rotate again.
		return err
	}
	return old.Close()
}

// stream is the io.Writer of one stream of a Writer.
type stream struct {
	w    *Writer
	name string

	mu      sync.Mutex
	pending []byte // an unterminated line, at most MaxLine bytes
}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w.closed.Load() {
		return 0, fmt.Errorf("log %s: %w", s.w.path, os.ErrClosed)
	}
	data := p
	if len(s.pending) > 0 {
		s.pending = append(s.pending, p...)
		data = s.pending
	}
	var errs []error
	for {
		n := len(data)
		if i := bytes.IndexByte(data[:min(n, MaxLine+1)], '\n'); i >= 0 {
			n = i + 1
		} else if n <= MaxLine {
			break
		} else {
			n = cut(data)
		}
		if err := s.w.append(s.name, data[:n]); err != nil {
			errs = append(errs, err)
		}
		data = data[n:]
	}
	s.pending = append(s.pending[:0], data...) // data may alias pending: append copies like copy(2)
	if cap(s.pending) > 4*MaxLine {
		s.pending = bytes.Clone(s.pending) // do not keep a large write's buffer
	}
	return len(p), errors.Join(errs...)
}

// cut returns where to split an unterminated line longer than MaxLine: at
// MaxLine, or up to three bytes earlier so as not to split a UTF-8 encoded
// character, which each piece would then carry as invalid bytes.
func cut(data []byte) int {
	for n := MaxLine; n > MaxLine-utf8.UTFMax; n-- {
		if utf8.RuneStart(data[n]) {
			return n
		}
	}
	return MaxLine
}

// flush writes the held unterminated line, if any.
func (s *stream) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil
	}
	err := s.w.append(s.name, s.pending)
	s.pending = nil
	return err
}
