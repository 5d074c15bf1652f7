package logfile

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzReadFile reads arbitrary file contents: Read must not fail, deliver
// only entries with a time, and agree with its own backward tail scan.
func FuzzReadFile(f *testing.F) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	ok := `{"log":"a\n","stream":"stdout","time":"` + at.Format(timeFormat) + `"}` + "\n"
	for _, seed := range []string{
		"",
		"\n",
		ok,
		ok + ok + `{"log":"cut`,
		ok + "garbage\n" + ok,
		`{"log":"\u00e9\ud800\\","stream":"stderr","time":"2026-01-01T00:00:00Z"}` + "\n",
		`{"time":"2026-01-01T00:00:00+02:00","log":1}` + "\n" + ok,
		"null\n{}\n[]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "log")
		writeFile(t, path, string(data))
		all := readAll(t, path, ReadOptions{Tail: -1})
		if len(all) > bytes.Count(data, []byte("\n")) {
			t.Fatalf("%d entries from %d lines", len(all), bytes.Count(data, []byte("\n")))
		}
		for _, e := range all {
			if e.Time.IsZero() {
				t.Fatalf("entry without a time: %+v", e)
			}
		}
		for _, n := range []int{0, 1, 2} {
			got := lines(readAll(t, path, ReadOptions{Tail: n}))
			if want := lines(all)[max(0, len(all)-n):]; !slices.Equal(got, want) {
				t.Fatalf("tail %d = %q, want %q", n, got, want)
			}
		}
	})
}

// FuzzReadRoundTrip writes arbitrary bytes to a stream and reads them back:
// valid UTF-8 comes back exactly, in entries of at most MaxLine bytes that
// end in a newline unless they are a long line's pieces or the last one.
func FuzzReadRoundTrip(f *testing.F) {
	for _, seed := range []string{"", "a\n", "a\nb", "\x00\"\\\n\r\t<>&\u2028", "\xff\xfe\n", "é€🚢\n\n"} {
		f.Add([]byte(seed), 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		chunk = max(1, chunk%64)
		path := filepath.Join(t.TempDir(), "log")
		w := newWriter(t, path, 0, 1)
		s := w.Stream("stderr")
		for _, c := range chunks(string(data), chunk) {
			mustWrite(t, s, c)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		es := readAll(t, path, ReadOptions{Tail: -1})
		var got strings.Builder
		for i, e := range es {
			got.Write(e.Line)
			if e.Stream != "stderr" || len(e.Line) == 0 {
				t.Fatalf("entry %d: %+v", i, e)
			}
			if utf8.Valid(data) && len(e.Line) > MaxLine+1 {
				t.Fatalf("entry %d has %d bytes", i, len(e.Line))
			}
			if i < len(es)-1 && !bytes.HasSuffix(e.Line, []byte("\n")) && len(e.Line) < MaxLine-utf8.UTFMax {
				t.Fatalf("entry %d of %d is a short unterminated line %q", i, len(es), e.Line)
			}
		}
		if utf8.Valid(data) && got.String() != string(data) {
			t.Fatalf("read back %q, wrote %q", got.String(), data)
		}
		if !utf8.Valid(data) && got.String() != strings.ToValidUTF8(got.String(), "?") {
			t.Fatalf("read back invalid UTF-8 %q", got.String())
		}
	})
}
