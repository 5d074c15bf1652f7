package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/registrytest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// builtLayers commits two layers as a build would: a base with two files,
// and one on top that changes one and deletes the other.
func builtLayers(t *testing.T, s *Store) []Layer {
	t.Helper()
	ctx := context.Background()
	base := diffDir(t, s)
	os.WriteFile(filepath.Join(base, "keep"), []byte("base"), 0o644)
	os.WriteFile(filepath.Join(base, "drop"), []byte("base"), 0o644)
	l1, err := s.CommitDiff(ctx, base, "")
	if err != nil {
		t.Fatal(err)
	}
	top := diffDir(t, s)
	os.WriteFile(filepath.Join(top, "keep"), []byte("top"), 0o644)
	if err := unix.Mknod(filepath.Join(top, "drop"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	l2, err := s.CommitDiff(ctx, top, l1.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	return []Layer{l1, l2}
}

func builtConfig(layers []Layer) *v1.ConfigFile {
	cfg := &v1.ConfigFile{
		Created: v1.Time{Time: time.Unix(1700000000, 0).UTC()}, OS: "linux", Architecture: goruntime.GOARCH,
		Config: v1.Config{Cmd: []string{"/keep"}, Env: []string{"PATH=/bin"}},
		RootFS: v1.RootFS{Type: "layers"},
	}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, hashOf(l.DiffID))
		cfg.History = append(cfg.History, v1.History{Created: cfg.Created, CreatedBy: "test"})
	}
	return cfg
}

func TestAddImage(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	ctx := context.Background()
	layers := builtLayers(t, s)
	cfg := builtConfig(layers)
	img, err := s.AddImage(ctx, cfg, layers, []string{"localhost/built:1"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("localhost/built:1")
	if err != nil || got.ID != img.ID || got.Manifest != img.Manifest || len(got.Layers) != 2 {
		t.Fatalf("Get = %+v, %v; AddImage gave %+v", got, err, img)
	}
	if got.MediaType != string(types.OCIManifestSchema1) || got.Arch != goruntime.GOARCH || !got.Created.Equal(cfg.Created.Time) {
		t.Errorf("record %+v", got)
	}
	v, err := s.V1(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(v); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	m, err := v.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		if digestOf(m.Layers[i].Digest) != l.Digest || m.Layers[i].Size != l.Size || m.Layers[i].MediaType != types.OCILayer {
			t.Errorf("manifest layer %d = %+v, want %+v", i, m.Layers[i], l)
		}
	}
	if name, _ := v.ConfigName(); digestOf(name) != img.ID {
		t.Errorf("config %s, image ID %s", name, img.ID)
	}

	// The same config again only adds a name.
	again, err := s.AddImage(ctx, cfg, layers, []string{"localhost/built:2"})
	if err != nil || again.ID != img.ID || again.Manifest != img.Manifest || len(again.Names) != 2 {
		t.Errorf("second AddImage = %+v, %v", again, err)
	}
	dangling, err := s.AddImage(ctx, builtConfig(layers[:1]), layers[:1], nil)
	if err != nil || len(dangling.Names) != 0 {
		t.Errorf("dangling AddImage = %+v, %v", dangling, err)
	}
}

func TestAddImageRefuses(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	layers := builtLayers(t, s)
	missing := Layer{Digest: digest.FromString("blob"), MediaType: LayerMediaType, DiffID: digest.FromString("tar")}
	missing.ChainID = missing.DiffID
	swapped := []Layer{layers[1], layers[0]}
	for name, tc := range map[string]struct {
		cfg    *v1.ConfigFile
		layers []Layer
		names  []string
		want   error
	}{
		"fewer layers":       {builtConfig(layers), layers[:1], nil, errdefs.ErrInvalidArgument},
		"other DiffIDs":      {builtConfig(layers[1:]), layers[:1], nil, errdefs.ErrInvalidArgument},
		"wrong chain":        {builtConfig(swapped), swapped, nil, errdefs.ErrInvalidArgument},
		"missing layer":      {builtConfig([]Layer{missing}), []Layer{missing}, nil, errdefs.ErrNotFound},
		"digest as the name": {builtConfig(layers), layers, []string{"localhost/x@" + digest.FromString("m").String()}, errdefs.ErrInvalidArgument},
		"no config":          {nil, layers, nil, errdefs.ErrInvalidArgument},
	} {
		if _, err := s.AddImage(context.Background(), tc.cfg, tc.layers, tc.names); !errors.Is(err, tc.want) {
			t.Errorf("%s: AddImage = %v, want %v", name, err, tc.want)
		}
	}
	if images, _ := s.List(); len(images) != 0 {
		t.Errorf("refused images recorded: %v", images)
	}
}

// TestAddImagePushPullSave pushes a built image and pulls it into another
// store (same ID, same files), and saves and loads it.
func TestAddImagePushPullSave(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	ctx := context.Background()
	layers := builtLayers(t, s)
	img, err := s.AddImage(ctx, builtConfig(layers), layers, []string{"localhost/built:1"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Save(&buf, []string{"localhost/built:1"}, OCIArchive); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "archive.tar")
	os.WriteFile(path, buf.Bytes(), 0o644)
	loaded, err := newStore(t).Load(ctx, path, nil)
	if err != nil || len(loaded) != 1 || loaded[0].ID != img.ID {
		t.Fatalf("Load = %v, %v", loaded, err)
	}

	reg := registrytest.Start(t)
	dst := mustRef(t, reg.Ref("built/img:1"))
	d, err := s.Push(ctx, "localhost/built:1", dst, PushOptions{})
	if err != nil || d.String() != img.Manifest.String() {
		t.Fatalf("Push = %s, %v; want %s", d, err, img.Manifest)
	}
	other := newStore(t)
	pulled, err := other.Pull(ctx, dst, PullOptions{})
	if err != nil || pulled.ID != img.ID || pulled.Layers[1].ChainID != layers[1].ChainID {
		t.Fatalf("Pull = %+v, %v", pulled, err)
	}
	top := other.Snapshots().Path(pulled.Layers[1].ChainID)
	if b, err := os.ReadFile(filepath.Join(top, "keep")); err != nil || string(b) != "top" {
		t.Errorf("keep = %q, %v", b, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(top, "drop"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("drop is no whiteout: %v", err)
	}
}
