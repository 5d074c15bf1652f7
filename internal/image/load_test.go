package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/registrytest"
	digest "github.com/opencontainers/go-digest"
)

// TestLoadHostile loads archives of an image the store already holds,
// each altered in one way, into that store and into an empty one. A load
// fails with one line that says what is wrong (an invalid argument) or,
// where the archive's content is verified or never read, succeeds; either
// way the stored image stays as it was, every blob in the store matches its
// digest, the image saves as before, and nothing staged is left.
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
	save := func(s *Store, name, format string) []byte {
		var buf bytes.Buffer
		if err := s.Save(&buf, []string{name}, format); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	dockerTar, ociTar := save(s, ref.String(), DockerArchive), save(s, ref.String(), OCIArchive)
	docker, oci := readTarEntries(t, dockerTar), readTarEntries(t, ociTar)
	var dm []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(entryData(docker, "manifest.json"), &dm); err != nil || len(dm) != 1 {
		t.Fatalf("docker-archive manifest.json: %v", err)
	}
	dockerConfig, dockerLayer := dm[0].Config, dm[0].Layers[0]
	ociManifest, ociConfig, ociLayer := ociParts(t, oci)
	nested := nestedIndex(t, oci, ref.String())
	_, _, nestedIdx := nestedParts(t, nested)

	// Alterations of an archive's entries.
	alter := func(entries []tarEntry, name string, with func([]byte) []byte) []tarEntry {
		out := slices.Clone(entries)
		for i, e := range out {
			if strings.TrimPrefix(e.Name, "./") == name {
				out[i].data = with(slices.Clone(e.data))
				out[i].Size = int64(len(out[i].data))
			}
		}
		return out
	}
	replace := func(entries []tarEntry, name string, by tar.Header) []tarEntry {
		out := slices.Clone(entries)
		for i, e := range out {
			if strings.TrimPrefix(e.Name, "./") == name {
				by.Name = e.Name
				out[i] = tarEntry{Header: by}
			}
		}
		return out
	}
	withEntry := func(entries []tarEntry, at int, e tarEntry) []tarEntry {
		e.Size = int64(len(e.data))
		if e.Typeflag == 0 {
			e.Typeflag, e.Mode = tar.TypeReg, 0o644
		}
		return slices.Insert(slices.Clone(entries), at, e)
	}
	entry := func(name, data string) tarEntry { return tarEntry{tar.Header{Name: name}, []byte(data)} }
	manifestJSON := func(config string, layers ...string) func([]byte) []byte {
		return func([]byte) []byte {
			b, _ := json.Marshal([]any{map[string]any{"Config": config, "RepoTags": dm[0].RepoTags, "Layers": layers}})
			return b
		}
	}
	cut := func(b []byte, n int) []byte { return b[:n] }
	firstEnd := func(b []byte) int { // the end of the first entry's padded content
		h, _ := tar.NewReader(bytes.NewReader(b)).Next()
		return 512 + int(h.Size+511)/512*512
	}

	// outcome of a load: fails, or may succeed without changing the
	// stored image (held: the store has the image, so the archive's copy
	// is never read), or loads (verified content).
	const (
		fails = iota
		held
		loads
	)
	cases := []struct {
		name    string
		archive []byte
		outcome int // into the store that holds the image
		fresh   int // into an empty store
	}{
		// A docker-archive's layers, config and manifest.json.
		{"docker layer with data after its end", tarBytes(t, alter(docker, dockerLayer, appendToLayer)), held, fails},
		{"docker layer truncated", tarBytes(t, alter(docker, dockerLayer, func(b []byte) []byte { return b[:len(b)/2] })), held, fails},
		{"docker config with another layer", tarBytes(t, alter(docker, dockerConfig, func(b []byte) []byte {
			return regexp.MustCompile(`"sha256:[0-9a-f]{64}"\]`).ReplaceAll(b, []byte(`"sha256:`+strings.Repeat("0", 64)+`"]`))
		})), fails, fails},
		{"docker config not JSON", tarBytes(t, alter(docker, dockerConfig, func(b []byte) []byte { return b[:len(b)/2] })), fails, fails},
		{"docker manifest.json not JSON", tarBytes(t, alter(docker, "manifest.json", func(b []byte) []byte { return b[1:] })), fails, fails},
		{"docker manifest.json naming a missing config", tarBytes(t, alter(docker, "manifest.json", manifestJSON("sha256:missing", dockerLayer))), fails, fails},
		{"docker manifest.json naming the layer as config", tarBytes(t, alter(docker, "manifest.json", manifestJSON(dockerLayer, dockerLayer))), fails, fails},
		{"docker manifest.json naming the config as layer", tarBytes(t, alter(docker, "manifest.json", manifestJSON(dockerConfig, dockerConfig))), held, fails},
		{"docker manifest.json without layers", tarBytes(t, alter(docker, "manifest.json", manifestJSON(dockerConfig))), held, fails},
		{"docker manifest.json naming a host file", tarBytes(t, alter(docker, "manifest.json", manifestJSON("../../../../etc/passwd", "/etc/passwd"))), fails, fails},
		// An OCI layout's blobs and index.
		{"oci config", tarBytes(t, alter(oci, ociConfig, func(b []byte) []byte { return bytes.Replace(b, []byte(`"architecture"`), []byte(`"architecture" `), 1) })), fails, fails},
		{"oci manifest", tarBytes(t, alter(oci, ociManifest, func(b []byte) []byte { return append(b, ' ') })), fails, fails},
		{"oci layer", tarBytes(t, alter(oci, ociLayer, appendToLayer)), held, fails},
		{"oci index.json naming a missing manifest", tarBytes(t, alter(oci, "index.json", func(b []byte) []byte {
			return bytes.Replace(b, []byte(strings.TrimPrefix(strings.ReplaceAll(ociManifest, "/", ":"), "blobs:")), []byte("sha256:"+strings.Repeat("1", 64)), 1)
		})), fails, fails},
		{"oci index.json not JSON", tarBytes(t, alter(oci, "index.json", func(b []byte) []byte { return b[:len(b)-2] })), fails, fails},
		{"oci nested index", tarBytes(t, nested), held, loads},
		{"oci nested index altered", tarBytes(t, alter(nested, nestedIdx, func(b []byte) []byte { return append(b, '\n') })), fails, fails},
		{"oci nested index naming an altered manifest", tarBytes(t, alter(nested, ociManifest, func(b []byte) []byte { return append(b, ' ') })), fails, fails},
		// The archive cut short.
		{"docker archive cut in half", cut(dockerTar, len(dockerTar)/2), fails, fails},
		{"docker archive cut after its first entry", cut(dockerTar, firstEnd(dockerTar)), fails, fails},
		{"docker archive without its end marker", cut(dockerTar, len(dockerTar)-1024), fails, fails},
		{"docker archive one byte short", cut(dockerTar, len(dockerTar)-1), fails, fails},
		{"oci archive cut at a quarter", cut(ociTar, len(ociTar)/4), fails, fails},
		{"oci archive cut after its first entry", cut(ociTar, firstEnd(ociTar)), fails, fails},
		{"oci archive without its end marker", cut(ociTar, len(ociTar)-1024), fails, fails},
		{"oci archive cut inside its header", cut(ociTar, 100), fails, fails},
		// Names twice, names out of the archive, links.
		{"docker manifest.json twice", tarBytes(t, withEntry(docker, 0, entry("manifest.json", "[]"))), fails, fails},
		{"docker layer twice", tarBytes(t, withEntry(docker, len(docker), entry(dockerLayer, "hostile"))), fails, fails},
		{"oci blob twice", tarBytes(t, withEntry(oci, len(oci), entry(ociLayer, "hostile"))), fails, fails},
		{"oci index.json twice", tarBytes(t, withEntry(oci, len(oci), entry("./index.json", "{}"))), fails, fails},
		{"docker entry climbing out", tarBytes(t, withEntry(docker, 0, entry("../evil", "x"))), fails, fails},
		{"oci entry climbing out", tarBytes(t, withEntry(oci, 0, entry("blobs/../../evil", "x"))), fails, fails},
		{"oci absolute entry", tarBytes(t, withEntry(oci, 0, entry("/etc/evil", "x"))), fails, fails},
		{"docker layer a symlink to a host file", tarBytes(t, replace(docker, dockerLayer, tar.Header{Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})), fails, fails},
		{"docker layer a symlink out of the archive", tarBytes(t, replace(docker, dockerLayer, tar.Header{Typeflag: tar.TypeSymlink, Linkname: "../../../../../etc/passwd"})), fails, fails},
		{"docker layer a symlink to itself", tarBytes(t, replace(docker, dockerLayer, tar.Header{Typeflag: tar.TypeSymlink, Linkname: dockerLayer})), fails, fails},
		{"docker layer a hard link to the config", tarBytes(t, replace(docker, dockerLayer, tar.Header{Typeflag: tar.TypeLink, Linkname: dockerConfig})), held, fails},
		{"docker layer a symlink to its copy", tarBytes(t, withEntry(replace(docker, dockerLayer, tar.Header{Typeflag: tar.TypeSymlink, Linkname: "copy/layer.tar"}),
			0, tarEntry{tar.Header{Name: "copy/layer.tar"}, entryData(docker, dockerLayer)})), held, loads},
		{"oci blob a symlink", tarBytes(t, replace(oci, ociLayer, tar.Header{Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})), fails, fails},
		{"oci blob a hard link", tarBytes(t, replace(oci, ociLayer, tar.Header{Typeflag: tar.TypeLink, Linkname: ociConfig})), fails, fails},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hostile.tar")
			if err := os.WriteFile(path, c.archive, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, into := range []struct {
				s       *Store
				outcome int
			}{{s, c.outcome}, {newStore(t), c.fresh}} {
				_, err := into.s.Load(context.Background(), path, nil)
				switch {
				case err == nil && into.outcome == fails:
					t.Fatalf("load succeeded, want it to fail")
				case err != nil && into.outcome != fails:
					t.Fatalf("load: %v, want it to succeed", err)
				case err != nil:
					t.Log(err)
					assertClearLine(t, err, into.s)
				}
				if into.s != s {
					if imgs, _ := into.s.List(); err != nil && len(imgs) != 0 {
						t.Fatalf("a failed load left images: %+v", imgs)
					}
				}
				assertSound(t, into.s)
			}
			assertIntact(t, s, ref.String(), img)
			// The stored image saves as it did before.
			if got := readTarEntries(t, save(s, ref.String(), DockerArchive)); !sameEntries(got, docker) {
				t.Errorf("docker-archive of the image changed")
			}
			if got := readTarEntries(t, save(s, ref.String(), OCIArchive)); !sameEntries(got, oci) {
				t.Errorf("oci-archive of the image changed")
			}
		})
	}
}

// assertClearLine checks that err is one line about an invalid archive that
// names none of the store's files.
func assertClearLine(t testing.TB, err error, s *Store) {
	t.Helper()
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("load: %v, want an invalid argument", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || strings.Contains(msg, s.root) {
		t.Errorf("load: %q, want one line that names no file of the store", msg)
	}
}

// assertIntact checks that name still resolves to want and every blob the
// image stands on matches its digest.
func assertIntact(t testing.TB, s *Store, name string, want *Image) {
	t.Helper()
	for _, n := range []string{name, want.ID.String()} {
		got, err := s.Get(n)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != want.ID || got.Manifest != want.Manifest || !slices.Equal(got.Layers, want.Layers) {
			t.Fatalf("stored image changed: %+v, want %+v", got, want)
		}
	}
}

// assertSound checks the store's invariants: every blob matches its
// digest; every image's config, manifest and layer blobs are there, the
// manifest names that config and those layers, and each layer's snapshot
// exists; no blob is half written, no layer staged, no transfer's scratch
// space left.
func assertSound(t testing.TB, s *Store) {
	t.Helper()
	blobs, err := s.blobs.list()
	if err != nil {
		t.Fatal(err)
	}
	have := map[digest.Digest]bool{}
	for _, d := range blobs {
		f, err := s.blobs.open(d)
		if err != nil {
			t.Fatal(err)
		}
		v := d.Verifier()
		io.Copy(v, f)
		f.Close()
		if !v.Verified() {
			t.Fatalf("blob %s does not match its digest", d)
		}
		have[d] = true
	}
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if !have[img.ID] || !have[img.Manifest] {
			t.Fatalf("image %s: config or manifest %s missing", img.ID, img.Manifest)
		}
		raw, _ := os.ReadFile(s.blobs.path(img.Manifest))
		var m struct {
			Config struct{ Digest digest.Digest }
			Layers []struct{ Digest digest.Digest }
		}
		if err := json.Unmarshal(raw, &m); err != nil || m.Config.Digest != img.ID || len(m.Layers) != len(img.Layers) {
			t.Fatalf("image %s: manifest %s does not name it: %v %s", img.ID, img.Manifest, err, raw)
		}
		for i, l := range img.Layers {
			if m.Layers[i].Digest != l.Digest || !have[l.Digest] || !s.snaps.Has(l.ChainID) {
				t.Fatalf("image %s: layer %d (%s) missing or not its manifest's", img.ID, i, l.Digest)
			}
		}
	}
	tmps, _ := filepath.Glob(filepath.Join(s.blobs.root, "*", ".tmp-*"))
	for _, dir := range []string{stagingDir, scratchDir} {
		left, _ := filepath.Glob(filepath.Join(s.root, dir, "*"))
		tmps = append(tmps, left...)
	}
	if len(tmps) != 0 {
		t.Fatalf("temporary state left: %v", tmps)
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
func ociParts(t testing.TB, entries []tarEntry) (manifest, config, layer string) {
	t.Helper()
	blob := func(d string) string { return "blobs/" + strings.Replace(d, ":", "/", 1) }
	var idx struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(entryData(entries, "index.json"), &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v", err)
	}
	manifest = blob(idx.Manifests[0].Digest)
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(entryData(entries, manifest), &m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("manifest %s: %v", manifest, err)
	}
	return manifest, blob(m.Config.Digest), blob(m.Layers[0].Digest)
}

// tarEntry is an entry of an archive with its content.
type tarEntry struct {
	tar.Header
	data []byte
}

// readTarEntries returns the entries of the tar archive b in order.
func readTarEntries(t testing.TB, b []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out = append(out, tarEntry{*h, data})
	}
}

// entryData is the content of the entry called name.
func entryData(entries []tarEntry, name string) []byte {
	for _, e := range entries {
		if strings.TrimPrefix(e.Name, "./") == name {
			return e.data
		}
	}
	return nil
}

// sameEntries reports whether a and b have the same files with the same
// content.
func sameEntries(a, b []tarEntry) bool {
	files := func(entries []tarEntry) map[string]string {
		m := map[string]string{}
		for _, e := range entries {
			if e.Typeflag == tar.TypeReg {
				m[strings.TrimPrefix(e.Name, "./")] = string(e.data)
			}
		}
		return m
	}
	return maps.Equal(files(a), files(b))
}

// tarBytes writes entries as a tar archive.
func tarBytes(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if h.Typeflag == 0 {
			h.Typeflag, h.Mode = tar.TypeReg, 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	return buf.Bytes()
}

// nestedIndex returns the oci-archive entries with index.json naming an
// image index (as Docker's containerd store saves) that names the
// manifest for this platform and one for another.
func nestedIndex(t testing.TB, entries []tarEntry, ref string) []tarEntry {
	t.Helper()
	var idx struct {
		Manifests []map[string]any
	}
	if err := json.Unmarshal(entryData(entries, "index.json"), &idx); err != nil {
		t.Fatal(err)
	}
	m := idx.Manifests[0]
	other := maps.Clone(m)
	other["platform"] = map[string]string{"os": "linux", "architecture": "s390x"}
	m["platform"] = map[string]string{"os": "linux", "architecture": runtime.GOARCH}
	delete(m, "annotations")
	delete(other, "annotations")
	child, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		"manifests": []any{other, m}})
	d := digest.FromBytes(child)
	top, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": len(child),
		"annotations": map[string]string{"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": "1"},
	}}})
	var out []tarEntry
	for _, e := range entries {
		if strings.TrimPrefix(e.Name, "./") == "index.json" {
			e.data = top
		}
		out = append(out, e)
	}
	return append(out, tarEntry{tar.Header{Name: "blobs/sha256/" + d.Encoded()}, child})
}

// nestedParts returns the index.json of a nestedIndex archive, its
// manifests and the entry name of the nested index.
func nestedParts(t testing.TB, entries []tarEntry) (top, child []byte, name string) {
	t.Helper()
	var idx struct {
		Manifests []struct{ Digest digest.Digest }
	}
	top = entryData(entries, "index.json")
	if err := json.Unmarshal(top, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, top)
	}
	name = "blobs/sha256/" + idx.Manifests[0].Digest.Encoded()
	return top, entryData(entries, name), name
}
