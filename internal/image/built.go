package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	bolt "go.etcd.io/bbolt"
)

// Hold takes the store lock shared, as pulls do, and returns its release:
// while it is held, no garbage collection (Remove, Prune, PruneCache) and
// no sweep of killed writers' temporary state (see sweep.go) runs, so a
// build can make layers and cache entries over minutes and record its
// image at the end. Store methods that add (CommitDiff, AddImage, Pull,
// CachePut…) may be called while holding it; those that collect must not
// be, by the same process: they would wait for the release forever.
func (s *Store) Hold() (release func(), err error) { return s.lock(false) }

// AddImage records an image made of cfg and layers already in the store
// (from CommitDiff, or other images'), under names: full references with a
// tag, possibly none (a dangling image). cfg's RootFS.DiffIDs must be the
// layers' DiffIDs and the layers' chain IDs must follow from them
// (errdefs.ErrInvalidArgument otherwise); every layer's blob and snapshot
// must exist (errdefs.ErrNotFound otherwise). The config blob is cfg as
// JSON, the manifest an OCI image manifest; Docker layer media types are
// given their OCI names, which describe the same bytes.
//
// If an image with the same config, hence the same ID, is stored already,
// as after a build whose steps all left the base image as it was, that
// image keeps its manifest and only gains names.
func (s *Store) AddImage(ctx context.Context, cfg *v1.ConfigFile, layers []Layer, names []string) (*Image, error) {
	if cfg == nil {
		return nil, fmt.Errorf("image config: none given: %w", errdefs.ErrInvalidArgument)
	}
	tags := make([]string, len(names))
	for i, n := range names {
		ref, err := ParseReference(n)
		if err != nil {
			return nil, err
		}
		if ref.Tag() == "" {
			return nil, fmt.Errorf("image name %q: a name needs a tag, not a digest: %w", n, errdefs.ErrInvalidArgument)
		}
		tags[i] = ref.String()
	}
	unlock, err := s.lock(false)
	if err != nil {
		return nil, err
	}
	defer unlock()

	cfg = cfg.DeepCopy()
	if cfg.RootFS.Type == "" {
		cfg.RootFS.Type = "layers"
	}
	rec, err := s.checkLayers(cfg, layers)
	if err != nil {
		return nil, err
	}
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	rec.ID = digest.FromBytes(rawCfg)
	rec.Size += int64(len(rawCfg))
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(rawCfg)), Digest: hashOf(rec.ID)},
	}
	for _, l := range rec.Layers {
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: types.MediaType(l.MediaType), Size: l.Size, Digest: hashOf(l.Digest)})
	}
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("image manifest: %w", err)
	}
	rec.Manifest, rec.MediaType = digest.FromBytes(rawManifest), string(m.MediaType)
	for d, raw := range map[digest.Digest][]byte{rec.ID: rawCfg, rec.Manifest: rawManifest} {
		if _, err := s.blobs.write(d, bytes.NewReader(raw)); err != nil {
			return nil, err
		}
	}
	err = s.index.update(func(tx *bolt.Tx) error {
		if old, err := getImage(tx, rec.ID); err == nil {
			rec = old
		} else if err := putImage(tx, rec); err != nil {
			return err
		}
		for _, n := range tags {
			if err := tx.Bucket(bucketTags).Put([]byte(n), []byte(rec.ID)); err != nil {
				return err
			}
		}
		rec.Names = tagsOf(tx, rec.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// checkLayers checks layers against cfg and the store, and returns the
// start of the image's record: OS, platform, creation time, layers (with
// OCI media types) and their size.
func (s *Store) checkLayers(cfg *v1.ConfigFile, layers []Layer) (*Image, error) {
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("image config lists %d layers, %d given: %w", len(cfg.RootFS.DiffIDs), len(layers), errdefs.ErrInvalidArgument)
	}
	diffIDs := make([]digest.Digest, len(layers))
	for i, d := range cfg.RootFS.DiffIDs {
		diffIDs[i] = digestOf(d)
	}
	chain := identity.ChainIDs(append([]digest.Digest(nil), diffIDs...))
	rec := &Image{OS: cfg.OS, Arch: cfg.Architecture, Variant: cfg.Variant, Created: cfg.Created.Time}
	for i, l := range layers {
		if l.DiffID != diffIDs[i] {
			return nil, fmt.Errorf("layer %d: DiffID %s, the config says %s: %w", i, l.DiffID, diffIDs[i], errdefs.ErrInvalidArgument)
		}
		if l.ChainID != chain[i] {
			return nil, fmt.Errorf("layer %d: chain ID %s, the layers below make it %s: %w", i, l.ChainID, chain[i], errdefs.ErrInvalidArgument)
		}
		mt := ociLayerType(types.MediaType(l.MediaType))
		if !mt.IsLayer() {
			return nil, fmt.Errorf("layer %d: media type %q is not a layer's: %w", i, l.MediaType, errdefs.ErrInvalidArgument)
		}
		if !s.blobs.has(l.Digest) {
			return nil, fmt.Errorf("layer %d: blob %s: %w", i, l.Digest, errdefs.ErrNotFound)
		}
		if !s.snaps.Has(l.ChainID) {
			return nil, fmt.Errorf("layer %d: snapshot %s: %w", i, l.ChainID, errdefs.ErrNotFound)
		}
		l.MediaType = string(mt)
		rec.Layers = append(rec.Layers, l)
		rec.Size += l.Size
	}
	return rec, nil
}

// ociLayerType is the OCI name of a Docker layer media type: an OCI
// manifest should not mix in Docker's, and the bytes are the same.
func ociLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer
	}
	return mt
}
