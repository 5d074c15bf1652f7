package image

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/registrytest"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: snapshots hold device nodes, owners and overlay xattrs")
	}
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRef(t *testing.T, s string) Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPullTagRemove(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t)
	reg.PushBusybox(t, reg.Ref("tools/busybox:1"))
	s := newStore(t)
	ctx := context.Background()

	ref := mustRef(t, reg.Ref("tools/busybox:1"))
	img, err := s.Pull(ctx, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Names) != 1 || img.Names[0] != ref.String() || len(img.Layers) != 1 {
		t.Fatalf("pulled %+v", img)
	}
	// The layer is unpacked in its snapshot: busybox runs from there.
	dir := s.Snapshots().Path(img.Layers[0].ChainID)
	if st, err := os.Stat(filepath.Join(dir, "bin/busybox")); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("bin/busybox in the snapshot: %v %v", st, err)
	}
	// A second pull reuses everything.
	again, err := s.Pull(ctx, ref, PullOptions{})
	if err != nil || again.ID != img.ID {
		t.Fatalf("second pull: %v %v", again, err)
	}
	if err := s.Tag(ref.String(), "local/copy:v2"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("local/copy:v2")
	if err != nil || got.ID != img.ID || len(got.Names) != 2 {
		t.Fatalf("after tag: %+v %v", got, err)
	}
	if got, err := s.Get(img.ID.Encoded()[:12]); err != nil || got.ID != img.ID {
		t.Fatalf("by short ID: %v %v", got, err)
	}
	// Removing one of two names only untags, forced or not.
	untagged, deleted, err := s.Remove("local/copy:v2", false)
	if err != nil || deleted != "" || len(untagged) != 1 {
		t.Fatalf("untag: %v %v %v", untagged, deleted, err)
	}
	s.Tag(ref.String(), "local/copy:v3")
	untagged, deleted, err = s.Remove("local/copy:v3", true)
	if err != nil || deleted != "" || len(untagged) != 1 || untagged[0] != "docker.io/local/copy:v3" {
		t.Fatalf("forced untag: %v %v %v", untagged, deleted, err)
	}
	if got, err := s.Get(ref.String()); err != nil || len(got.Names) != 1 {
		t.Fatalf("after a forced untag of another name: %+v %v", got, err)
	}
	_, deleted, err = s.Remove(ref.String(), false)
	if err != nil || deleted != img.ID {
		t.Fatalf("remove: %v %v", deleted, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("snapshot left after the last image using it went: %v", err)
	}
	if _, err := s.Get(ref.String()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get after remove: %v", err)
	}
}

func TestPullPlatform(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t)
	mp := reg.PushMultiPlatform(t, reg.Ref("multi/app:1"), registrytest.OCI)
	s := newStore(t)
	ref := mustRef(t, reg.Ref("multi/app:1"))
	for _, p := range []string{"linux/arm64", "linux/amd64"} {
		plat, _ := ParsePlatform(p)
		img, err := s.Pull(context.Background(), ref, PullOptions{Platform: plat})
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(s.Snapshots().Path(img.Layers[0].ChainID), registrytest.PlatformFile))
		if err != nil || strings.TrimSpace(string(data)) != p || img.Arch != plat.Architecture {
			t.Fatalf("%s: got %q arch %s (%v)", p, data, img.Arch, err)
		}
		if !contains(img.RepoDigests, ref.Repository()+"@"+mp.Index.String()) {
			t.Errorf("%s: repo digests %v", p, img.RepoDigests)
		}
	}
	plat, _ := ParsePlatform("linux/s390x")
	_, err := s.Pull(context.Background(), ref, PullOptions{Platform: plat})
	if err == nil || !strings.Contains(err.Error(), "linux/arm64") || !strings.Contains(err.Error(), "--platform") {
		t.Fatalf("missing platform: %v", err)
	}
}

func TestPullAuthTLS(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t, registrytest.WithAuth("alice", "s3cret"))
	reg.PushBusybox(t, reg.Ref("private/bb:1"))
	s := newStore(t)
	ref := mustRef(t, reg.Ref("private/bb:1"))
	certDir := t.TempDir()
	os.MkdirAll(filepath.Join(certDir, reg.Host), 0o755)
	ca, _ := os.ReadFile(reg.CAFile)
	os.WriteFile(filepath.Join(certDir, reg.Host, "ca.crt"), ca, 0o644)

	// An untrusted certificate is named as the problem.
	_, err := s.Pull(context.Background(), ref, PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted TLS: %v", err)
	}
	// Trusted, but without credentials.
	_, err = s.Pull(context.Background(), ref, PullOptions{RegistryOptions: RegistryOptions{CertDir: certDir, Keychain: authn.NewMultiKeychain()}})
	if !errors.Is(err, errdefs.ErrPermission) || !strings.Contains(err.Error(), "berth login") {
		t.Fatalf("no credentials: %v", err)
	}
	kc := staticKeychain{reg.Host: &authn.Basic{Username: "alice", Password: "s3cret"}}
	if _, err := s.Pull(context.Background(), ref, PullOptions{RegistryOptions: RegistryOptions{CertDir: certDir, Keychain: kc}}); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentPulls: two pulls of one image at once both succeed and
// store it once.
func TestConcurrentPulls(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t)
	reg.PushBusybox(t, reg.Ref("tools/busybox:c"))
	root := t.TempDir()
	ref := mustRef(t, reg.Ref("tools/busybox:c"))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(root)
			if err == nil {
				_, err = s.Pull(context.Background(), ref, PullOptions{})
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, _ := Open(root)
	imgs, err := s.List()
	if err != nil || len(imgs) != 1 {
		t.Fatalf("images after concurrent pulls: %v %v", imgs, err)
	}
}

func TestImportRootfsTarball(t *testing.T) {
	needRoot(t)
	layer := registrytest.BusyboxLayer(t)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar.gz")
	if err := os.WriteFile(tarball, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	img, err := s.Import(context.Background(), tarball, mustRef(t, "local/imported:1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 1 || img.OS != "linux" || img.Names[0] != "docker.io/local/imported:1" {
		t.Fatalf("imported %+v", img)
	}
	if _, err := os.Stat(filepath.Join(s.Snapshots().Path(img.Layers[0].ChainID), "bin/busybox")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(context.Background(), "/nonexistent.tar", mustRef(t, "x"), nil); err == nil {
		t.Fatal("import of a missing file succeeded")
	}

	// With changes and a message: they are in the config; a bad change
	// stores nothing.
	img, err = s.Import(context.Background(), tarball, mustRef(t, "local/imported:2"), nil,
		WithChanges(`CMD ["sh"]`, "ENV A=1", "EXPOSE 80"), WithMessage("from a tarball"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Config(img)
	if err != nil {
		t.Fatal(err)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(raw, &cf); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cf.Config.Cmd, []string{"sh"}) || !reflect.DeepEqual(cf.Config.Env, []string{"A=1"}) ||
		len(cf.Config.ExposedPorts) != 1 || len(cf.History) != 1 || cf.History[0].Comment != "from a tarball" {
		t.Fatalf("imported config %+v, history %+v", cf.Config, cf.History)
	}
	_, err = s.Import(context.Background(), tarball, mustRef(t, "local/imported:3"), nil, WithChanges("CMD sh", "FOO bar"))
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), `import: change "FOO bar": unknown instruction FOO`) {
		t.Fatalf("import with a bad change: %v", err)
	}
	if _, err := s.Get("local/imported:3"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("image of the failed import: %v", err)
	}
}

type staticKeychain map[string]authn.Authenticator

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if a, ok := k[r.RegistryStr()]; ok {
		return a, nil
	}
	return authn.Anonymous, nil
}
