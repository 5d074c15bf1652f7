package logfile

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// readAll reads the log at path without following.
func readAll(t *testing.T, path string, o ReadOptions) []Entry {
	t.Helper()
	var es []Entry
	if err := Read(context.Background(), path, o, func(e Entry) error {
		es = append(es, e)
		return nil
	}); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return es
}

// lines returns the entries' lines.
func lines(es []Entry) []string {
	var s []string
	for _, e := range es {
		s = append(s, string(e.Line))
	}
	return s
}

// raw formats an entry as Docker's json-file driver does, at a chosen time.
func raw(t *testing.T, at time.Time, stream, log string) string {
	t.Helper()
	b, err := json.Marshal(record{Log: log, Stream: stream, Time: at.UTC().Format(timeFormat)})
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// writeFile writes the concatenation of parts to path.
func writeFile(t *testing.T, path string, parts ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(parts, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newWriter opens a Writer that the test closes at its end.
func newWriter(t *testing.T, path string, maxSize int64, maxFiles int) *Writer {
	t.Helper()
	w, err := NewWriter(path, maxSize, maxFiles)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// mustWrite writes s to stream and fails the test on error.
func mustWrite(t *testing.T, w interface{ Write([]byte) (int, error) }, s string) {
	t.Helper()
	if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}
