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

// The helper process of TestPullKilled: it pulls and is killed midway.
func init() {
	if ref := os.Getenv("BERTH_TEST_PULL_REF"); ref != "" {
		s, err := Open(os.Getenv("BERTH_TEST_PULL_ROOT"))
		if err == nil {
			r, perr := ParseReference(ref)
			if perr != nil {
				os.Exit(3)
			}
			_, err = s.Pull(context.Background(), r, PullOptions{})
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// TestPullKilled kills a pulling process with SIGKILL at several moments:
// the store never shows a broken image, and the next pull succeeds.
func TestPullKilled(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t)
	reg.PushImage(t, reg.Ref("big/img:1"), randomLayer(t, 4<<20), randomLayer(t, 4<<20), registrytest.BusyboxLayer(t))
	ref := mustRef(t, reg.Ref("big/img:1"))
	for _, delay := range []time.Duration{5, 20, 40, 80, 120, 200} {
		root := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BERTH_TEST_PULL_REF="+ref.String(), "BERTH_TEST_PULL_ROOT="+root)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
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
