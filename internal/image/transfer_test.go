package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/registrytest"
	digest "github.com/opencontainers/go-digest"
)

// TestPushThenPull pushes a pulled image under another name to another
// registry and pulls it into a fresh store: same image, same digest.
func TestPushThenPull(t *testing.T) {
	needRoot(t)
	a, b := registrytest.Start(t), registrytest.Start(t)
	a.PushBusybox(t, a.Ref("src/bb:1"))
	s := newStore(t)
	img, err := s.Pull(context.Background(), mustRef(t, a.Ref("src/bb:1")), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dst := mustRef(t, b.Ref("dst/bb:2"))
	var mu sync.Mutex
	sent := map[digest.Digest][2]int64{}
	progress := &Progress{Bytes: func(layer digest.Digest, done, total int64) {
		mu.Lock()
		sent[layer] = [2]int64{done, total}
		mu.Unlock()
	}}
	d, err := s.Push(context.Background(), a.Ref("src/bb:1"), dst, PushOptions{Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	// Every layer went to the empty registry, and progress heard all of it.
	for _, l := range img.Layers {
		if got := sent[l.Digest]; got[0] != l.Size || got[1] != l.Size {
			t.Errorf("progress of layer %s: %d of %d bytes, want %d", l.Digest, got[0], got[1], l.Size)
		}
	}
	if d.String() != img.Manifest.String() {
		t.Errorf("pushed manifest %s, stored %s: a push must keep the digest", d, img.Manifest)
	}
	other := newStore(t)
	again, err := other.Pull(context.Background(), dst, PullOptions{})
	if err != nil || again.ID != img.ID {
		t.Fatalf("pull of the pushed image: %v %v", again, err)
	}
}

func TestSaveLoad(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t)
	reg.PushBusybox(t, reg.Ref("tools/bb:1"))
	s := newStore(t)
	ref := mustRef(t, reg.Ref("tools/bb:1"))
	img, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{DockerArchive, OCIArchive} {
		var buf bytes.Buffer
		if err := s.Save(&buf, []string{ref.String()}, format); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		path := filepath.Join(t.TempDir(), "archive.tar")
		os.WriteFile(path, buf.Bytes(), 0o644)
		other := newStore(t)
		loaded, err := other.Load(context.Background(), path, nil)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if len(loaded) != 1 || loaded[0].ID != img.ID || len(loaded[0].Names) != 1 || loaded[0].Names[0] != ref.String() {
			t.Fatalf("%s: loaded %+v", format, loaded)
		}
	}
	junk := filepath.Join(t.TempDir(), "junk.tar")
	os.WriteFile(junk, []byte("not a tar"), 0o644)
	if _, err := s.Load(context.Background(), junk, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("loading junk: %v", err)
	}
}

// TestLoginLogout stores credentials in Docker's config.json, where a
// pull without explicit credentials finds them.
func TestLoginLogout(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t, registrytest.WithAuth("bob", "pw"))
	reg.PushBusybox(t, reg.Ref("private/bb:1"))
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	opts := RegistryOptions{Insecure: true}
	if err := Login(context.Background(), reg.Host, "bob", "wrong", opts); !errors.Is(err, errdefs.ErrPermission) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := Login(context.Background(), reg.Host, "bob", "pw", opts); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"))
	if !strings.Contains(string(data), reg.Host) {
		t.Fatalf("config.json: %s", data)
	}
	s := newStore(t)
	if _, err := s.Pull(context.Background(), mustRef(t, reg.Ref("private/bb:1")), PullOptions{RegistryOptions: opts}); err != nil {
		t.Fatalf("pull after login: %v", err)
	}
	if err := Logout(reg.Host); err != nil {
		t.Fatal(err)
	}
	if err := Logout(reg.Host); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second logout: %v", err)
	}
}
