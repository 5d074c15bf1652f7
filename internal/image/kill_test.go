package image

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/image/registrytest"
)

var importedRef, _ = ParseReference("localhost/imported:1")

// The helper process of the kill tests: it runs one command on a store and
// is killed midway.
func init() {
	op := os.Getenv("BERTH_TEST_OP")
	if op == "" {
		return
	}
	ctx, arg := context.Background(), os.Getenv("BERTH_TEST_ARG")
	s, err := Open(os.Getenv("BERTH_TEST_ROOT"))
	if err == nil {
		switch op {
		case "pull":
			var r Reference
			if r, err = ParseReference(arg); err == nil {
				_, err = s.Pull(ctx, r, PullOptions{})
			}
		case "load":
			_, err = s.Load(ctx, arg, nil)
		case "import":
			_, err = s.Import(ctx, arg, importedRef, nil)
		case "import-stdin":
			_, err = s.ImportReader(ctx, os.Stdin, importedRef, nil)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startHelper runs the helper process: op with arg on the store at root,
// with TMPDIR set to tmpdir and stdin as its standard input.
func startHelper(t *testing.T, op, arg, root, tmpdir string, stdin *os.File) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_TEST_OP="+op, "BERTH_TEST_ARG="+arg, "BERTH_TEST_ROOT="+root, "TMPDIR="+tmpdir)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// TestPullKilled kills a pulling process with SIGKILL at several moments:
// the store never shows a broken image, and the next pull succeeds and
// sweeps what the killed one left.
func TestPullKilled(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t)
	reg.PushImage(t, reg.Ref("big/img:1"), randomLayer(t, 4<<20), randomLayer(t, 4<<20), registrytest.BusyboxLayer(t))
	ref := mustRef(t, reg.Ref("big/img:1"))
	for _, delay := range []time.Duration{5, 20, 40, 80, 120, 200} {
		root, tmpdir := t.TempDir(), t.TempDir()
		cmd := startHelper(t, "pull", ref.String(), root, tmpdir, nil)
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		s, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := s.List()
		if err != nil {
			t.Fatalf("after a kill at %dms: %v", delay, err)
		}
		for _, img := range imgs {
			for _, l := range img.Layers {
				if !s.snaps.Has(l.ChainID) || !s.blobs.has(l.Digest) {
					t.Fatalf("kill at %dms left a visible image with a missing layer %s", delay, l.Digest)
				}
			}
		}
		img, err := s.Pull(context.Background(), ref, PullOptions{})
		if err != nil || len(img.Layers) != 3 {
			t.Fatalf("pull after a kill at %dms: %v", delay, err)
		}
		if left := temporaryState(root, tmpdir); len(left) > 0 {
			t.Fatalf("the pull after a kill at %dms left the killed one's %v", delay, left)
		}
		assertStoreIntact(t, s)
	}
}

func randomLayer(t *testing.T, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	f, _ := os.Open("/dev/urandom")
	defer f.Close()
	f.Read(data)
	return registrytest.FileLayer(t, map[string]string{fmt.Sprintf("data-%d", time.Now().UnixNano()): string(data)})
}
