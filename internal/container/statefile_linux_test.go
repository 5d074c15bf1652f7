package container

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// stateFiles returns the names of the files in dir, but for the filler's.
func stateFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ent := range ents {
		if !strings.HasPrefix(ent.Name(), "fill") {
			names = append(names, ent.Name())
		}
	}
	return names
}

func readState(t *testing.T, dir string) *State {
	t.Helper()
	st := &State{}
	if err := readJSON(filepath.Join(dir, stateFile), st); err != nil {
		t.Fatalf("state: %v", err)
	}
	return st
}

// TestWriteStateReserve: every state write leaves a reserve for the next
// and nothing else.
func TestWriteStateReserve(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		st := &State{Status: Running, Pid: 100 + i}
		if err := writeState(dir, st); err != nil {
			t.Fatal(err)
		}
		if got := readState(t, dir); !reflect.DeepEqual(got, st) {
			t.Fatalf("state %+v, want %+v", got, st)
		}
		if got := stateFiles(t, dir); !reflect.DeepEqual(got, []string{stateFile, stateReserve}) {
			t.Fatalf("files %q, want the state and its reserve", got)
		}
	}
}

// TestWriteStateFullDisk: on a file system without a free block, state
// writes go on in the reserve; one that does not fit fails, leaving the
// state as it was, no temporary file, and the reserve for the next.
func TestWriteStateFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := writeState(dir, &State{Status: Created}); err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	for i := 0; ; i++ {
		f, err := os.CreateTemp(dir, "fill")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Write(page)
		f.Close()
		if errors.Is(err, unix.ENOSPC) {
			break
		}
		if err != nil || i > 100 {
			t.Fatalf("fill: %v after %d pages", err, i)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "fill-probe"), []byte{1}, 0o600); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("the disk is not full: %v", err)
	}
	var last *State
	for i := range 20 {
		st := &State{Status: Running, Pid: 1000 + i, ManualStop: i%2 == 0, Warnings: []string{strings.Repeat("w", 50*i)}}
		if err := writeState(dir, st); err != nil {
			t.Fatalf("write %d on a full disk: %v", i, err)
		}
		if got := readState(t, dir); !reflect.DeepEqual(got, st) {
			t.Fatalf("state %+v, want %+v", got, st)
		}
		last = st
	}
	big := &State{Status: Exited, Warnings: []string{strings.Repeat("x", 64<<10)}}
	if err := writeState(dir, big); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("a state larger than the reserve on a full disk: %v, want ENOSPC", err)
	}
	if got := readState(t, dir); !reflect.DeepEqual(got, last) {
		t.Fatalf("after a failed write the state is %+v, want %+v", got, last)
	}
	if got := stateFiles(t, dir); !reflect.DeepEqual(got, []string{stateFile, stateReserve}) {
		t.Fatalf("after a failed write: files %q, want the state and its reserve", got)
	}
	if err := writeState(dir, &State{Status: Exited, ExitCode: 137}); err != nil {
		t.Fatalf("a small write after a failed one: %v", err)
	}
}
