package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/registrytest"
	digest "github.com/opencontainers/go-digest"
)

// TestLoadHostile loads archives of an image the store already holds,
// each with one piece altered: every load fails as invalid, and the stored
// image stays as it was, its blobs intact.
func TestLoadHostile(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t)
	reg.PushBusybox(t, reg.Ref("tools/bb:1"))
	s := newStore(t)
	ref := mustRef(t, reg.Ref("tools/bb:1"))
	img, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	archive := func(format string) map[string][]byte {
		var buf bytes.Buffer
		if err := s.Save(&buf, []string{ref.String()}, format); err != nil {
			t.Fatal(err)
		}
		return readTar(t, buf.Bytes())
	}
	docker, oci := archive(DockerArchive), archive(OCIArchive)
	var dm []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(docker["manifest.json"], &dm); err != nil || len(dm) != 1 {
		t.Fatalf("docker-archive manifest.json: %v", err)
	}
	ociManifest, ociConfig, ociLayer := ociParts(t, oci)

	cases := []struct {
		name    string
		entries map[string][]byte
		alter   string
		with    func([]byte) []byte
		// held: the store already has the altered blob's digest, so the
		// archive's copy is never read and the load may succeed.
		held bool
	}{
		{"docker layer with data after its end", docker, dm[0].Layers[0], appendToLayer, false},
		{"docker layer truncated", docker, dm[0].Layers[0], func(b []byte) []byte { return b[:len(b)/2] }, false},
		{"oci config", oci, ociConfig, func(b []byte) []byte { return bytes.Replace(b, []byte(`"architecture"`), []byte(`"architecture" `), 1) }, false},
		{"oci manifest", oci, ociManifest, func(b []byte) []byte { return append(b, ' ') }, false},
		{"oci layer", oci, ociLayer, appendToLayer, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			entries := map[string][]byte{}
			for k, v := range c.entries {
				entries[k] = v
			}
			entries[c.alter] = c.with(slices.Clone(entries[c.alter]))
			path := filepath.Join(t.TempDir(), "hostile.tar")
			writeTar(t, path, entries)
			_, err := s.Load(context.Background(), path, nil)
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !(c.held && err == nil) {
				t.Fatalf("load of an archive with %s altered: %v, want invalid argument", c.alter, err)
			}
			assertIntact(t, s, ref.String(), img)
			fresh := newStore(t)
			if _, err := fresh.Load(context.Background(), path, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("load into an empty store of an archive with %s altered: %v, want invalid argument", c.alter, err)
			}
			if imgs, _ := fresh.List(); len(imgs) != 0 {
				t.Fatalf("a failed load left images: %+v", imgs)
			}
		})
	}
}

// assertIntact checks that name still resolves to want and every blob the
// image stands on matches its digest.
func assertIntact(t *testing.T, s *Store, name string, want *Image) {
	t.Helper()
	got, err := s.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || got.Manifest != want.Manifest || !slices.Equal(got.Layers, want.Layers) {
		t.Fatalf("stored image changed: %+v, want %+v", got, want)
	}
	blobs := []digest.Digest{got.ID, got.Manifest}
	for _, l := range got.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, d := range blobs {
		f, err := s.blobs.open(d)
		if err != nil {
			t.Fatal(err)
		}
		v := d.Verifier()
		io.Copy(v, f)
		f.Close()
		if !v.Verified() {
			t.Fatalf("blob %s no longer matches its digest", d)
		}
	}
}

// appendToLayer adds bytes after a layer's end of archive: still a valid
// layer, with another DiffID.
func appendToLayer(b []byte) []byte {
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		return append(b, "hostile"...)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	plain, _ := io.ReadAll(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(append(plain, "hostile"...))
	zw.Close()
	return out.Bytes()
}

// ociParts returns the entry names of an OCI archive's one manifest, its
// config and its first layer.
func ociParts(t *testing.T, entries map[string][]byte) (manifest, config, layer string) {
	t.Helper()
	blob := func(d string) string { return "blobs/" + strings.Replace(d, ":", "/", 1) }
	var idx struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(entries["index.json"], &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v", err)
	}
	manifest = blob(idx.Manifests[0].Digest)
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(entries[manifest], &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("manifest %s: %v", manifest, err)
	}
	return manifest, blob(m.Config.Digest), blob(m.Layers[0].Digest)
}

func readTar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			out[strings.TrimPrefix(h.Name, "./")], _ = io.ReadAll(tr)
		}
	}
}

func writeTar(t *testing.T, path string, entries map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(entries[n])), Typeflag: tar.TypeReg})
		tw.Write(entries[n])
	}
	tw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
