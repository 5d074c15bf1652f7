package logfile

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestSuccessor walks the chain through the states a rotation passes
// through, as the writer's renames leave them.
func TestSuccessor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	open := func(name string) *os.File {
		t.Helper()
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	mv := func(from, to int) {
		t.Helper()
		if err := os.Rename(rotated(path, from), rotated(path, to)); err != nil {
			t.Fatal(err)
		}
	}
	// expect checks that the successor of cur holds want ("" for none).
	expect := func(what string, cur *os.File, want string) {
		t.Helper()
		g, err := successor(path, cur)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := ""
		if g != nil {
			b, _ := io.ReadAll(g)
			g.Close()
			got = string(b)
		}
		if got != want {
			t.Errorf("%s: successor is %q, want %q", what, got, want)
		}
	}

	expect("no log, nothing open", nil, "")
	writeFile(t, path, "A")
	expect("nothing open", nil, "A")
	a := open(path)
	expect("A is newest", a, "")

	mv(0, 1)
	expect("path between rename and creation", a, "")
	writeFile(t, path, "B")
	expect("after a rotation", a, "B")
	b := open(path)

	// A rotation keeping four files, step by step.
	mv(1, 2)
	expect("gap between A and B", a, "B")
	expect("B is newest", b, "")
	mv(0, 1)
	expect("path missing, A", a, "B")
	expect("path missing, B", b, "")
	writeFile(t, path, "C")
	expect("rotated twice, A", a, "B")
	expect("rotated twice, B", b, "C")
	c := open(path)

	// A rotation keeping three files: B's rename removes A.
	mv(1, 2)
	expect("A removed", a, "B")
	expect("gap between B and C", b, "C")
	mv(0, 1)
	expect("A removed, path missing", a, "B")
	expect("C moved, path missing", c, "")
	writeFile(t, path, "D")
	expect("C rotated", c, "D")
	expect("nothing open, three files", nil, "B")
}
