package registrytest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the time stamp of every generated config, history entry and tar
// entry, so that the same content always yields the same digests.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Format selects the media types of generated images and indexes.
type Format int

const (
	// Docker is Docker's image manifest v2 schema 2 with its config and
	// gzip'd layer types; indexes are Docker manifest lists.
	Docker Format = iota
	// OCI is the OCI image manifest with OCI config and gzip'd layer
	// types; indexes are OCI image indexes.
	OCI
)

func (f Format) String() string {
	if f == OCI {
		return "OCI"
	}
	return "Docker"
}

func (f Format) mediaTypes() (manifest, config, layer, index types.MediaType) {
	if f == OCI {
		return types.OCIManifestSchema1, types.OCIConfigJSON, types.OCILayer, types.OCIImageIndex
	}
	return types.DockerManifestSchema2, types.DockerConfigJSON, types.DockerLayer, types.DockerManifestList
}

type imageOptions struct {
	format   Format
	platform string
	config   v1.Config
	layers   [][]byte
}

// ImageOption configures NewImage.
type ImageOption func(*imageOptions)

// WithFormat selects Docker (the default) or OCI media types.
func WithFormat(f Format) ImageOption {
	return func(o *imageOptions) { o.format = f }
}

// WithPlatform sets the image's platform, "os/arch[/variant]" such as
// "linux/arm64" or "linux/arm/v7". The default is linux on the test's own
// architecture.
func WithPlatform(platform string) ImageOption {
	return func(o *imageOptions) { o.platform = platform }
}

// WithConfig sets the image's runtime configuration (Entrypoint, Cmd, Env,
// WorkingDir, User, ExposedPorts, Labels …).
func WithConfig(cfg v1.Config) ImageOption {
	return func(o *imageOptions) { o.config = cfg }
}

// WithLayers sets the image's layers, base first. Each is a tar stream,
// plain or gzip'd (FileLayer, BusyboxLayer); plain ones are gzip'd on push.
func WithLayers(layers ...[]byte) ImageOption {
	return func(o *imageOptions) { o.layers = append(o.layers, layers...) }
}

// NewImage builds an image in memory. Without WithLayers it has one layer
// holding a file "random" of random bytes, so that every call yields a
// different image; with the same options and layers the digest is stable.
func NewImage(t testing.TB, opts ...ImageOption) v1.Image {
	t.Helper()
	o := imageOptions{platform: "linux/" + runtime.GOARCH}
	for _, opt := range opts {
		opt(&o)
	}
	img, err := newImage(t, o)
	if err != nil {
		t.Fatalf("registrytest: new image: %v", err)
	}
	return img
}

func newImage(t testing.TB, o imageOptions) (v1.Image, error) {
	manifestType, configType, layerType, _ := o.format.mediaTypes()
	p, err := v1.ParsePlatform(o.platform)
	if err != nil {
		return nil, err
	}
	layers := o.layers
	if len(layers) == 0 {
		random := make([]byte, 1024)
		rand.Read(random)
		layers = [][]byte{FileLayer(t, map[string]string{"random": string(random)})}
	}

	img := mutate.MediaType(empty.Image, manifestType)
	img = mutate.ConfigMediaType(img, configType)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Created:      v1.Time{Time: epoch},
		OS:           p.OS,
		Architecture: p.Architecture,
		Variant:      p.Variant,
		OSVersion:    p.OSVersion,
		Config:       o.config,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, data := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, tarball.WithMediaType(layerType), tarball.WithCompressedCaching)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		adds[i] = mutate.Addendum{Layer: l, MediaType: layerType, History: v1.History{
			Created:   v1.Time{Time: epoch},
			CreatedBy: fmt.Sprintf("registrytest layer %d", i),
		}}
	}
	return mutate.Append(img, adds...)
}

// NewIndex builds an index (format OCI) or manifest list (format Docker) of
// images, each described with the platform of its config.
func NewIndex(t testing.TB, format Format, images ...v1.Image) v1.ImageIndex {
	t.Helper()
	_, _, _, indexType := format.mediaTypes()
	adds := make([]mutate.IndexAddendum, len(images))
	for i, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatalf("registrytest: new index: image %d config: %v", i, err)
		}
		adds[i] = mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: cf.Platform()}}
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, indexType), adds...)
}

// PlatformFile is the file in the layer of each PushMultiPlatform image that
// holds the image's platform ("linux/arm64\n").
const PlatformFile = "platform"

// MultiPlatform describes what PushMultiPlatform pushed.
type MultiPlatform struct {
	// Index is the digest of the index or manifest list.
	Index v1.Hash
	// Images maps each platform ("linux/amd64") to its image manifest's
	// digest.
	Images map[string]v1.Hash
}

// PushMultiPlatform pushes an index of one image per platform (linux/amd64
// and linux/arm64 when none are given) to ref. Each image has a single layer
// whose PlatformFile names its platform, so a test can tell which one was
// selected.
func (r *Registry) PushMultiPlatform(t testing.TB, ref string, format Format, platforms ...string) MultiPlatform {
	t.Helper()
	if len(platforms) == 0 {
		platforms = []string{"linux/amd64", "linux/arm64"}
	}
	mp := MultiPlatform{Images: map[string]v1.Hash{}}
	images := make([]v1.Image, len(platforms))
	for i, p := range platforms {
		images[i] = NewImage(t, WithFormat(format), WithPlatform(p),
			WithLayers(FileLayer(t, map[string]string{PlatformFile: p + "\n"})))
		d, err := images[i].Digest()
		if err != nil {
			t.Fatalf("registrytest: image %s digest: %v", p, err)
		}
		mp.Images[p] = d
	}
	mp.Index = r.PushIndex(t, ref, NewIndex(t, format, images...))
	return mp
}

// PushImage pushes an image with Docker media types, the test's platform and
// the given layers (see WithLayers and NewImage) to ref, and returns its
// manifest digest. ref is "repo[:tag]", relative to the registry (see Ref).
// For other media types or settings use Push(t, ref, NewImage(t, opts...)).
func (r *Registry) PushImage(t testing.TB, ref string, layers ...[]byte) v1.Hash {
	t.Helper()
	return r.Push(t, ref, NewImage(t, WithLayers(layers...)))
}

// PushBusybox pushes an image of BusyboxLayer with Cmd ["sh"] and a standard
// PATH to ref and returns its manifest digest. It skips the test when
// busybox-static is not installed.
func (r *Registry) PushBusybox(t testing.TB, ref string, opts ...ImageOption) v1.Hash {
	t.Helper()
	base := []ImageOption{WithLayers(BusyboxLayer(t)), WithConfig(v1.Config{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	})}
	return r.Push(t, ref, NewImage(t, append(base, opts...)...))
}

// Push pushes img to ref ("repo[:tag]", relative to the registry, see Ref)
// and returns its manifest digest.
func (r *Registry) Push(t testing.TB, ref string, img v1.Image) v1.Hash {
	t.Helper()
	n := r.parse(t, ref)
	if err := remote.Write(n, img, r.RemoteOptions(t)...); err != nil {
		t.Fatalf("registrytest: push %s: %v", n, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("registrytest: digest of %s: %v", n, err)
	}
	return d
}

// PushIndex pushes idx and all its images to ref ("repo[:tag]", relative to
// the registry, see Ref) and returns the index's digest.
func (r *Registry) PushIndex(t testing.TB, ref string, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	n := r.parse(t, ref)
	if err := remote.WriteIndex(n, idx, r.RemoteOptions(t)...); err != nil {
		t.Fatalf("registrytest: push index %s: %v", n, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatalf("registrytest: digest of index %s: %v", n, err)
	}
	return d
}

// Authenticator returns the credentials given to WithAuth, or
// authn.Anonymous.
func (r *Registry) Authenticator() authn.Authenticator {
	if r.Username == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.Username, Password: r.Password}
}

// RemoteOptions returns go-containerregistry remote options that reach this
// registry: its transport (trusting its CA), its credentials and t's context.
// t.Context is canceled before cleanups run, so neither these options nor
// the push helpers work inside t.Cleanup.
func (r *Registry) RemoteOptions(t testing.TB) []remote.Option {
	return []remote.Option{
		remote.WithTransport(r.tr),
		remote.WithAuth(r.Authenticator()),
		remote.WithContext(t.Context()),
	}
}

func (r *Registry) parse(t testing.TB, ref string) name.Reference {
	t.Helper()
	n, err := name.ParseReference(r.Ref(ref))
	if err != nil {
		t.Fatalf("registrytest: reference %q: %v", ref, err)
	}
	return n
}
