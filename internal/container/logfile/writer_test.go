package logfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWriterDockerFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr-json.log")
	w := newWriter(t, path, 0, 1)
	mustWrite(t, w.Stream("stdout"), "hello\n")
	mustWrite(t, w.Stream("stderr"), "<a & \"b\">\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^\{"log":"hello\\n","stream":"stdout","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"\}\n` +
		`\{"log":"\\u003ca \\u0026 \\"b\\"\\u003e\\n","stream":"stderr","time":"[^"]+"\}\n$`)
	if !want.Match(b) {
		t.Errorf("file holds\n%s\nwant Docker's json-file lines", b)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := newWriter(t, path, 0, 1)
	out, errw := w.Stream("stdout"), w.Stream("stderr")
	before := time.Now()
	written := []struct{ stream, line string }{
		{"stdout", "plain\n"},
		{"stderr", "quotes \" and \\ backslash\n"},
		{"stdout", "tab\tcr\r nul\x00 bell\x07 esc\x1b[0m\n"},
		{"stdout", "unicode: héllo 世界 🚢 \u2028\u2029\n"},
		{"stderr", "\n"},
		{"stdout", "html <script>&amp;</script>\n"},
		{"stdout", "no newline at close"},
	}
	for _, l := range written {
		s := out
		if l.stream == "stderr" {
			s = errw
		}
		mustWrite(t, s, l.line)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	es := readAll(t, path, ReadOptions{Tail: -1})
	if len(es) != len(written) {
		t.Fatalf("read %d entries %q, want %d", len(es), lines(es), len(written))
	}
	for i, e := range es {
		if e.Stream != written[i].stream || string(e.Line) != written[i].line {
			t.Errorf("entry %d = %s %q, want %s %q", i, e.Stream, e.Line, written[i].stream, written[i].line)
		}
		if e.Time.Before(before) || e.Time.After(after) || e.Time.Location() != time.UTC {
			t.Errorf("entry %d time %v not in UTC within [%v, %v]", i, e.Time, before, after)
		}
		if i > 0 && e.Time.Before(es[i-1].Time) {
			t.Errorf("entry %d is older than entry %d", i, i-1)
		}
	}
}

func TestWriterInvalidUTF8(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := newWriter(t, path, 0, 1)
	mustWrite(t, w.Stream("stdout"), "a\xffb\xc3\n")
	w.Close()
	es := readAll(t, path, ReadOptions{Tail: -1})
	if got := lines(es); !slices.Equal(got, []string{"a\uFFFDb\uFFFD\n"}) {
		t.Errorf("read %q, want invalid bytes replaced by U+FFFD", got)
	}
}

func TestWriterSplitsLongLines(t *testing.T) {
	long := strings.Repeat("x", 2*MaxLine+100)
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"exactly MaxLine with newline", []string{strings.Repeat("a", MaxLine) + "\n"}, []string{strings.Repeat("a", MaxLine) + "\n"}},
		{"one write", []string{long + "\n"}, []string{long[:MaxLine], long[MaxLine : 2*MaxLine], long[2*MaxLine:] + "\n"}},
		{"byte by byte", strings.Split(long+"\nnext\n", ""), []string{long[:MaxLine], long[MaxLine : 2*MaxLine], long[2*MaxLine:] + "\n", "next\n"}},
		{"uneven chunks", chunks(long+"\nend", 1000), []string{long[:MaxLine], long[MaxLine : 2*MaxLine], long[2*MaxLine:] + "\n", "end"}},
		{"not inside a character", []string{strings.Repeat("a", MaxLine-1) + "é€\n"}, []string{strings.Repeat("a", MaxLine-1), "é€\n"}},
		{"not inside a character, held", []string{strings.Repeat("a", MaxLine-2), "€", "b"}, []string{strings.Repeat("a", MaxLine-2), "€b"}},
		{"binary cut at MaxLine", []string{strings.Repeat("\x80", MaxLine+1) + "\n"}, []string{strings.Repeat("\uFFFD", MaxLine), "\uFFFD\n"}},
		{"held partial flushed at close", []string{"par", "tial"}, []string{"partial"}},
		{"MaxLine unterminated is held", []string{strings.Repeat("b", MaxLine)}, []string{strings.Repeat("b", MaxLine)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			w := newWriter(t, path, 0, 1)
			s := w.Stream("stdout")
			for _, p := range tt.writes {
				mustWrite(t, s, p)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := lines(readAll(t, path, ReadOptions{Tail: -1}))
			if !slices.Equal(got, tt.want) {
				t.Errorf("entries have lengths %v, want %v", lengths(got), lengths(tt.want))
			}
		})
	}
}

// TestWriterFlushesLongPartialBeforeNewline checks that a long unterminated
// line reaches the file before its newline does (a program that prints
// progress without newlines must still be seen by berth logs -f).
func TestWriterFlushesLongPartialBeforeNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := newWriter(t, path, 0, 1)
	mustWrite(t, w.Stream("stdout"), strings.Repeat("p", MaxLine+1))
	got := lines(readAll(t, path, ReadOptions{Tail: -1}))
	if !slices.Equal(got, []string{strings.Repeat("p", MaxLine)}) {
		t.Errorf("before the newline the file has entries of lengths %v, want [%d]", lengths(got), MaxLine)
	}
}

func chunks(s string, n int) []string {
	var c []string
	for len(s) > n {
		c, s = append(c, s[:n]), s[n:]
	}
	return append(c, s)
}

func lengths(s []string) []int {
	var n []int
	for _, x := range s {
		n = append(n, len(x))
	}
	return n
}

func TestWriterAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := newWriter(t, path, 0, 1)
	s := w.Stream("stdout")
	w.Close()
	if _, err := s.Write([]byte("late\n")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRotationKeepsNewest(t *testing.T) {
	for _, maxFiles := range []int{1, 2, 3, 5} {
		t.Run(fmt.Sprint("max-file=", maxFiles), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "log")
			const maxSize = 1000
			w := newWriter(t, path, maxSize, maxFiles)
			s := w.Stream("stdout")
			const n = 200
			for i := range n {
				mustWrite(t, s, fmt.Sprintf("line %04d\n", i))
			}
			w.Close()

			names, _ := filepath.Glob(filepath.Join(dir, "*"))
			var want []string
			for i := range maxFiles {
				want = append(want, rotated(path, i))
			}
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Fatalf("files %v, want %v", names, want)
			}
			var total int64
			for _, name := range names {
				fi, _ := os.Stat(name)
				if fi.Size() > maxSize {
					t.Errorf("%s has %d bytes, more than max-size %d", name, fi.Size(), maxSize)
				}
				total += fi.Size()
			}
			got := lines(readAll(t, path, ReadOptions{Tail: -1}))
			// Every file but the newest is full to within one entry.
			entry := int64(len(raw(t, time.Now(), "stdout", "line 0000\n")))
			if min := int64(maxFiles-1) * (maxSize - entry + 1) / entry; int64(len(got)) < min {
				t.Errorf("kept %d entries in %d bytes, want at least %d", len(got), total, min)
			}
			if len(got) == 0 {
				t.Fatal("no entries kept")
			}
			for i, l := range got {
				if want := fmt.Sprintf("line %04d\n", n-len(got)+i); l != want {
					t.Fatalf("entry %d is %q, want %q: not the newest entries in order", i, l, want)
				}
			}
		})
	}
}

func TestRotationEntryLargerThanMaxSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := newWriter(t, path, 100, 3)
	s := w.Stream("stdout")
	big := strings.Repeat("z", 300) + "\n"
	mustWrite(t, s, "small\n")
	mustWrite(t, s, big)
	mustWrite(t, s, "after\n")
	w.Close()
	if got := lines(readAll(t, path, ReadOptions{Tail: -1})); !slices.Equal(got, []string{"small\n", big, "after\n"}) {
		t.Errorf("read %q", got)
	}
	b, _ := os.ReadFile(rotated(path, 1))
	if bytes.Count(b, []byte("\n")) != 1 || !bytes.Contains(b, []byte("zzz")) {
		t.Errorf("the large entry does not have path.1 to itself: %q", b)
	}
}

func TestNewWriterRemovesFilesBeyondMaxFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	for i := range 6 {
		writeFile(t, rotated(path, i), raw(t, time.Now(), "stdout", fmt.Sprintf("%d\n", i)))
	}
	w := newWriter(t, path, 1<<20, 3)
	w.Close()
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	if want := []string{path, path + ".1", path + ".2"}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
}

func TestWriterTerminatesCutLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	// A monitor killed in the middle of a write left half an entry.
	writeFile(t, path, raw(t, at, "stdout", "before\n"), `{"log":"cut sh`)
	if got := lines(readAll(t, path, ReadOptions{Tail: -1})); !slices.Equal(got, []string{"before\n"}) {
		t.Errorf("read %q before the restart", got)
	}
	w := newWriter(t, path, 0, 1)
	mustWrite(t, w.Stream("stdout"), "after restart\n")
	w.Close()
	if got := lines(readAll(t, path, ReadOptions{Tail: -1})); !slices.Equal(got, []string{"before\n", "after restart\n"}) {
		t.Errorf("read %q after the restart", got)
	}
}

// TestConcurrentStreams writes both streams from their own goroutines in
// odd-sized pieces; every entry must be one whole line of its stream, and
// each stream's lines must keep their order.
func TestConcurrentStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := newWriter(t, path, 4096, 1000)
	const n = 2000
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, name := range []string{"stdout", "stderr"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var all strings.Builder
			for i := range n {
				fmt.Fprintf(&all, "%s %05d %s\n", name, i, strings.Repeat(name[3:], i%40))
			}
			s := w.Stream(name)
			for _, c := range chunks(all.String(), 7+len(name)) {
				if _, err := s.Write([]byte(c)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	w.Close()
	next := map[string]int{}
	for _, e := range readAll(t, path, ReadOptions{Tail: -1}) {
		i := next[e.Stream]
		want := fmt.Sprintf("%s %05d %s\n", e.Stream, i, strings.Repeat(e.Stream[3:], i%40))
		if string(e.Line) != want {
			t.Fatalf("%s entry %d is %q, want %q", e.Stream, i, e.Line, want)
		}
		next[e.Stream]++
	}
	if next["stdout"] != n || next["stderr"] != n {
		t.Errorf("read %v entries, want %d of each stream", next, n)
	}
}
