package snapshot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

// chain returns the chain ID of a layer with diff ID diff on top of parent,
// as the OCI image spec defines it.
func chain(parent digest.Digest, diff string) digest.Digest {
	d := digest.FromString(diff)
	if parent == "" {
		return d
	}
	return digest.FromString(parent.String() + " " + d.String())
}

// writeFile returns an apply function that writes one file.
func writeFile(name, content string) func(string) error {
	return func(dir string) error {
		return os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
}

// assertClean fails if the store holds temporary directories or lock files.
func assertClean(t *testing.T, s *Store) {
	t.Helper()
	for _, d := range []string{tmpDir, lockDir} {
		entries, err := os.ReadDir(filepath.Join(s.Root(), d))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Errorf("%s not empty: %v", d, entries)
		}
	}
}

func TestCommitAndLookup(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, top := chain("", "base"), chain(chain("", "base"), "top")
	if s.Has(base) {
		t.Fatal("empty store has a snapshot")
	}
	if err := s.Commit(ctx, base, "", writeFile("a", "hello")); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, top, base, writeFile("b", "hi")); err != nil {
		t.Fatal(err)
	}
	if !s.Has(base) || !s.Has(top) {
		t.Fatal("committed snapshots missing")
	}
	if b, err := os.ReadFile(filepath.Join(s.Path(base), "a")); err != nil || string(b) != "hello" {
		t.Fatalf("content = %q, %v", b, err)
	}
	info, err := s.Info(top)
	if err != nil {
		t.Fatal(err)
	}
	if info.ChainID != top || info.Parent != base || info.Size != 2 || info.Created.IsZero() {
		t.Errorf("Info = %+v", info)
	}
	if p, err := s.Parent(base); err != nil || p != "" {
		t.Errorf("Parent(base) = %q, %v", p, err)
	}
	dirs, err := s.Lowerdirs(top)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{s.Path(top), s.Path(base)}; !slices.Equal(dirs, want) {
		t.Errorf("Lowerdirs = %v, want %v", dirs, want)
	}
	var seen []digest.Digest
	if err := s.Walk(ctx, func(i Info) error { seen = append(seen, i.ChainID); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || !slices.Contains(seen, base) || !slices.Contains(seen, top) {
		t.Errorf("Walk saw %v", seen)
	}
	if fi, err := os.Stat(s.Root()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("root mode = %v, %v; want 0700", fi.Mode(), err)
	}
	assertClean(t, s)
}

// TestCommitSize checks that a size given with WithSize is recorded as it
// is, and that without one (or with a negative one) Commit measures the
// diff, counting a hard-linked inode once.
func TestCommitSize(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	linked := func(dir string) error {
		if err := os.WriteFile(filepath.Join(dir, "a"), []byte("12345"), 0o644); err != nil {
			return err
		}
		if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
			return err
		}
		return os.Symlink("a", filepath.Join(dir, "c"))
	}
	for _, tt := range []struct {
		name string
		opts []CommitOption
		want int64
	}{
		{"measured", nil, 5},
		{"negative", []CommitOption{WithSize(-1)}, 5},
		{"given", []CommitOption{WithSize(42)}, 42},
		{"zero", []CommitOption{WithSize(0)}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := chain("", tt.name)
			if err := s.Commit(ctx, id, "", linked, tt.opts...); err != nil {
				t.Fatal(err)
			}
			if info, err := s.Info(id); err != nil || info.Size != tt.want {
				t.Errorf("Size = %d, %v; want %d", info.Size, err, tt.want)
			}
		})
	}
}

func TestCommitErrors(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := chain("", "base")
	boom := errors.New("boom")
	tests := []struct {
		name       string
		id, parent digest.Digest
		apply      func(string) error
		want       error
	}{
		{"malformed id", "sha256:xyz", "", writeFile("a", ""), errdefs.ErrInvalidArgument},
		{"path in id", "sha256:../../etc", "", writeFile("a", ""), errdefs.ErrInvalidArgument},
		{"malformed parent", base, "nope", writeFile("a", ""), errdefs.ErrInvalidArgument},
		{"own parent", base, base, writeFile("a", ""), errdefs.ErrInvalidArgument},
		{"missing parent", base, chain("", "other"), writeFile("a", ""), errdefs.ErrNotFound},
		{"apply fails", base, "", func(dir string) error {
			writeFile("partial", "x")(dir)
			return boom
		}, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			err := s.Commit(ctx, tt.id, tt.parent, func(dir string) error { called = true; return tt.apply(dir) })
			if !errors.Is(err, tt.want) {
				t.Fatalf("Commit = %v, want %v", err, tt.want)
			}
			if called && tt.want != boom {
				t.Error("apply called")
			}
			if s.Has(tt.id) {
				t.Error("failed commit left a snapshot")
			}
			assertClean(t, s)
		})
	}
	if _, err := s.Lowerdirs(base); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Lowerdirs of missing = %v", err)
	}
	if s.Path("bad") != "" || s.Has("bad") {
		t.Error("malformed chain ID has a path")
	}
}

func TestCommitIdempotent(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, other := chain("", "base"), chain("", "other")
	for _, id := range []digest.Digest{base, other} {
		if err := s.Commit(ctx, id, "", writeFile("a", "1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(ctx, base, "", func(string) error { t.Error("apply called again"); return nil }); err != nil {
		t.Errorf("second Commit = %v", err)
	}
	if err := s.Commit(ctx, base, other, writeFile("a", "")); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Commit with another parent = %v, want conflict", err)
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := chain("", "base")
	top := chain(base, "top")
	if err := s.Commit(ctx, base, "", writeFile("a", "1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, top, base, writeFile("b", "2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(base); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Remove(parent) = %v, want conflict", err)
	}
	for _, id := range []digest.Digest{top, base} {
		if err := s.Remove(id); err != nil {
			t.Fatal(err)
		}
		if s.Has(id) {
			t.Errorf("%s still there", id)
		}
		if _, err := os.Stat(s.Path(id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: files left: %v", id, err)
		}
	}
	if err := s.Remove(base); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Remove(missing) = %v, want not found", err)
	}
	assertClean(t, s)
}

// TestRemoveWaitsForChildCommit checks that a parent cannot be removed from
// under a child being committed.
func TestRemoveWaitsForChildCommit(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := chain("", "base")
	top := chain(base, "top")
	if err := s.Commit(ctx, base, "", writeFile("a", "1")); err != nil {
		t.Fatal(err)
	}
	inApply, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- s.Commit(ctx, top, base, func(string) error { close(inApply); <-release; return nil })
	}()
	<-inApply
	removed := make(chan error)
	go func() { removed <- s.Remove(base) }()
	select {
	case err := <-removed:
		t.Fatalf("Remove during a child's commit returned %v, want it to wait", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-removed; !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Remove(parent) = %v, want conflict", err)
	}
}

func TestListChildrenFirst(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Two images sharing a base, three and two layers deep.
	var want int
	for _, layers := range [][]string{{"base", "a1", "a2"}, {"base", "b1"}} {
		parent := digest.Digest("")
		for _, l := range layers {
			id := chain(parent, l)
			if !s.Has(id) {
				want++
			}
			if err := s.Commit(ctx, id, parent, writeFile(l, l)); err != nil {
				t.Fatal(err)
			}
			parent = id
		}
	}
	ids, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != want {
		t.Fatalf("List = %d snapshots, want %d", len(ids), want)
	}
	for _, id := range ids {
		if err := s.Remove(id); err != nil {
			t.Fatalf("removing in List order: %v", err)
		}
	}
	if ids, _ := s.List(); len(ids) != 0 {
		t.Errorf("left: %v", ids)
	}
}

func TestConcurrentCommits(t *testing.T) {
	ctx := context.Background()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := chain("", "base")
	var calls atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.Commit(ctx, id, "", func(dir string) error {
				calls.Add(1)
				time.Sleep(20 * time.Millisecond)
				return writeFile("a", fmt.Sprint(i))(dir)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Commit %d: %v", i, err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("apply ran %d times, want 1", n)
	}
	if !s.Has(id) {
		t.Error("no snapshot")
	}
	assertClean(t, s)
}

// The tests below run the test binary again as a helper process that
// commits into a shared store, so that two processes race and one can be
// killed with SIGKILL in the middle of a commit.

const helperEnv = "BERTH_SNAPSHOT_HELPER"

// TestHelperProcess is not a test: it is the body of the helper process.
// With BERTH_SNAPSHOT_HELPER=MODE:ROOT:CHAINID it commits CHAINID into the
// store at ROOT; MODE "slow" takes a while, MODE "hang" prints "ready"
// halfway through and waits to be killed.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("helper process only")
	}
	var mode, root, id string
	if _, err := fmt.Sscanf(spec, "%s %s %s", &mode, &root, &id); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s, err := New(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	err = s.Commit(context.Background(), digest.Digest(id), "", func(dir string) error {
		for i := range 50 {
			if err := writeFile(fmt.Sprint("f", i), "data")(dir); err != nil {
				return err
			}
			if mode == "slow" {
				time.Sleep(5 * time.Millisecond)
			}
			if mode == "hang" && i == 25 {
				fmt.Println("ready")
				time.Sleep(time.Hour) // until killed
			}
		}
		return writeFile("owner", fmt.Sprint(os.Getpid()))(dir)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helper(t *testing.T, mode, root string, id digest.Digest) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s", helperEnv, mode, root, id))
	cmd.Stderr = os.Stderr
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil { // started, not waited for
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func TestConcurrentCommitProcesses(t *testing.T) {
	root := t.TempDir()
	id := chain("", "base")
	var cmds []*exec.Cmd
	for range 2 {
		cmd := helper(t, "slow", root, id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := os.ReadFile(filepath.Join(s.Path(id), "owner"))
	if err != nil {
		t.Fatal(err)
	}
	if o := string(owner); o != fmt.Sprint(cmds[0].Process.Pid) && o != fmt.Sprint(cmds[1].Process.Pid) {
		t.Errorf("snapshot written by %s, not a helper", o)
	}
	entries, _ := os.ReadDir(s.Path(id))
	if len(entries) != 51 {
		t.Errorf("snapshot has %d files, want 51", len(entries))
	}
	assertClean(t, s)
}

func TestCommitKilled(t *testing.T) {
	root := t.TempDir()
	id := chain("", "base")
	cmd := helper(t, "hang", root, id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// The half-written snapshot is invisible, but its files are still there.
	leftover := filepath.Join(root, tmpDir, name(id))
	if _, err := os.Stat(filepath.Join(leftover, fsDir, "f25")); err != nil {
		t.Fatalf("expected a killed commit's leftovers: %v", err)
	}
	s, err := New(root) // sweeps
	if err != nil {
		t.Fatal(err)
	}
	if s.Has(id) {
		t.Fatal("a killed commit is visible")
	}
	if _, err := os.Stat(filepath.Join(root, id.Algorithm().String(), id.Encoded())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snapshot directory exists: %v", err)
	}
	assertClean(t, s)

	// A killed commit's leftovers are also removed by the next Commit, and
	// its lock died with it.
	cmd = helper(t, "hang", root, id)
	out, _ = cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Commit(ctx, id, "", writeFile("a", "whole")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(s.Path(id))
	if len(entries) != 1 {
		t.Errorf("snapshot has %d files, want 1 (leftovers mixed in?)", len(entries))
	}
	assertClean(t, s)
}
