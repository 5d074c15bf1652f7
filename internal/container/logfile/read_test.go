package logfile

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the time of the first entry of the hand-written logs below; entry i
// is written at t0 + i seconds.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)

// chainLog writes entries "0\n" … "n-1\n" into a chain of files of per
// entries each (the newest may have fewer), like a rotated log.
func chainLog(t *testing.T, n, per int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	var files [][]string
	for i := range n {
		if i%per == 0 {
			files = append(files, nil)
		}
		files[len(files)-1] = append(files[len(files)-1], raw(t, t0.Add(time.Duration(i)*time.Second), "stdout", fmt.Sprintf("%d\n", i)))
	}
	for k, parts := range files {
		writeFile(t, rotated(path, len(files)-1-k), parts...)
	}
	return path
}

// seq returns "from\n" … "to-1\n".
func seq(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, fmt.Sprintf("%d\n", i))
	}
	return s
}

func TestReadTailAndRange(t *testing.T) {
	path := chainLog(t, 25, 10) // path.2: 0-9, path.1: 10-19, path: 20-24
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	tests := []struct {
		name string
		o    ReadOptions
		want []string
	}{
		{"all", ReadOptions{Tail: -1}, seq(0, 25)},
		{"tail 0", ReadOptions{Tail: 0}, nil},
		{"tail within newest", ReadOptions{Tail: 3}, seq(22, 25)},
		{"tail all of newest", ReadOptions{Tail: 5}, seq(20, 25)},
		{"tail across one rotation", ReadOptions{Tail: 7}, seq(18, 25)},
		{"tail across two rotations", ReadOptions{Tail: 21}, seq(4, 25)},
		{"tail of exactly all", ReadOptions{Tail: 25}, seq(0, 25)},
		{"tail beyond all", ReadOptions{Tail: 1000}, seq(0, 25)},
		{"since", ReadOptions{Tail: -1, Since: at(17)}, seq(17, 25)},
		{"since between entries", ReadOptions{Tail: -1, Since: at(17).Add(-time.Nanosecond)}, seq(17, 25)},
		{"until", ReadOptions{Tail: -1, Until: at(12)}, seq(0, 13)},
		{"since and until", ReadOptions{Tail: -1, Since: at(8), Until: at(11)}, seq(8, 12)},
		{"until before all", ReadOptions{Tail: -1, Until: t0.Add(-time.Hour)}, nil},
		{"since after all", ReadOptions{Tail: -1, Since: at(100)}, nil},
		{"tail counts entries in range", ReadOptions{Tail: 4, Until: at(15)}, seq(12, 16)},
		{"tail with since, fewer than tail", ReadOptions{Tail: 10, Since: at(21)}, seq(21, 25)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lines(readAll(t, path, tt.o)); !slices.Equal(got, tt.want) {
				t.Errorf("read %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadEntryFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeFile(t, path, raw(t, t0, "stderr", "oops\n"))
	es := readAll(t, path, ReadOptions{Tail: -1})
	if len(es) != 1 || !es[0].Time.Equal(t0) || es[0].Stream != "stderr" || string(es[0].Line) != "oops\n" {
		t.Errorf("read %+v", es)
	}
}

func TestReadSkipsCorruptLines(t *testing.T) {
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	good := func(i int) string { return raw(t, at(i), "stdout", fmt.Sprintf("%d\n", i)) }
	tests := []struct {
		name  string
		parts []string
		want  []string
	}{
		{"cut last line", []string{good(0), good(1), `{"log":"2\n","stream":"std`}, seq(0, 2)},
		{"cut last line after its newline was lost", []string{good(0), good(1)[:len(good(1))-1]}, seq(0, 1)},
		{"garbage in the middle", []string{good(0), "not json\n", "\n", "{}\n", `{"log":"x","time":"yesterday"}` + "\n", "null\n", good(1)}, seq(0, 2)},
		{"cut line terminated by a restarted writer", []string{good(0), `{"log":"cut` + "\n", good(1)}, seq(0, 2)},
		{"overlong line", []string{good(0), `{"log":"` + strings.Repeat("a", 2*maxRecord) + "\"}\n", good(1)}, seq(0, 2)},
		{"no newline at all", []string{`{"log":"cut`}, nil},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			writeFile(t, path, tt.parts...)
			if got := lines(readAll(t, path, ReadOptions{Tail: -1})); !slices.Equal(got, tt.want) {
				t.Errorf("read %q, want %q", got, tt.want)
			}
			// Tail's backward scan must agree with the forward read.
			if got := lines(readAll(t, path, ReadOptions{Tail: 1})); !slices.Equal(got, tt.want[max(0, len(tt.want)-1):]) {
				t.Errorf("tail 1 read %q, want the last of %q", got, tt.want)
			}
		})
	}
}

func TestReadMissingLog(t *testing.T) {
	if got := readAll(t, filepath.Join(t.TempDir(), "none"), ReadOptions{Tail: -1}); len(got) != 0 {
		t.Errorf("read %v from a missing log", got)
	}
}

func TestReadStopsOnCallbackError(t *testing.T) {
	path := chainLog(t, 10, 4)
	stop := errors.New("enough")
	var n int
	err := Read(context.Background(), path, ReadOptions{Tail: -1}, func(Entry) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("Read returned %v after %d entries, want the callback's error after 3", err, n)
	}
}

func TestReadCanceled(t *testing.T) {
	path := chainLog(t, 10, 4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Read(ctx, path, ReadOptions{Tail: -1}, func(Entry) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a canceled context: %v", err)
	}
}

// TestTailAgreesWithForwardRead checks the backward scan over lines that
// straddle its read chunks and rotated files.
func TestTailAgreesWithForwardRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := newWriter(t, path, 200<<10, 4)
	s := w.Stream("stdout")
	for i := range 600 {
		mustWrite(t, s, fmt.Sprintf("%d %s\n", i, strings.Repeat("\"é", (i*7919)%(MaxLine/2))))
	}
	w.Close()
	all := lines(readAll(t, path, ReadOptions{Tail: -1}))
	if len(all) < 50 {
		t.Fatalf("only %d entries kept", len(all))
	}
	for _, n := range []int{0, 1, 2, 17, len(all) / 2, len(all) - 1, len(all), len(all) + 1} {
		got := lines(readAll(t, path, ReadOptions{Tail: n}))
		if want := all[max(0, len(all)-n):]; !slices.Equal(got, want) {
			t.Errorf("tail %d read %d entries, want the last %d of %d", n, len(got), len(want), len(all))
		}
	}
}
