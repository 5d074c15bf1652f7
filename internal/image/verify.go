package image

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/flate"
	gzip "github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
)

// An image from an archive or a registry is hostile input, and so is every
// piece of it: the store keeps nothing that does not match the digest that
// names it. Blobs are checked as they are written (blobStore.write), a
// layer's uncompressed content against its DiffID as it is unpacked
// (stageLayer), and the rest here: the config against the manifest's
// descriptor, a manifest against the index's, and the DiffID of a layer
// that needs no unpacking because its snapshot exists already.

// verifyConfig checks that img's config is the one its manifest names.
// (A docker-archive's manifest is made from the config it has, so this
// holds there by construction; an OCI layout's names it by digest.)
func verifyConfig(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("image manifest: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("image config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if got := digest.FromBytes(raw); string(got) != m.Config.Digest.String() {
		return fmt.Errorf("image config is %s, its manifest names %s: %w", got, m.Config.Digest, errdefs.ErrInvalidArgument)
	}
	return nil
}

// verifyManifest checks that img's manifest is the one want names.
func verifyManifest(img v1.Image, want v1.Hash) error {
	raw, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("image manifest %s: %v: %w", want, err, errdefs.ErrInvalidArgument)
	}
	if got := digest.FromBytes(raw); string(got) != want.String() {
		return fmt.Errorf("image manifest is %s, the index names %s: %w", got, want, errdefs.ErrInvalidArgument)
	}
	return nil
}

// knownLayers returns the blob/DiffID pairs of the stored images: blobs
// that were verified against those DiffIDs when they were stored.
func (s *Store) knownLayers() (map[[2]digest.Digest]bool, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	known := map[[2]digest.Digest]bool{}
	for _, img := range imgs {
		for _, l := range img.Layers {
			known[[2]digest.Digest{l.Digest, l.DiffID}] = true
		}
	}
	return known, nil
}

// verifyDiffID checks that the stored blob of meta uncompresses to
// meta.DiffID, without unpacking it.
func (s *Store) verifyDiffID(ctx context.Context, meta Layer) error {
	f, err := s.blobs.open(meta.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	stream, closeStream, err := unpackDecompress(f)
	if err != nil {
		return fmt.Errorf("layer %s: %v: %w", meta.Digest, err, errdefs.ErrInvalidArgument)
	}
	defer closeStream()
	d := digest.SHA256.Digester()
	if _, err := io.Copy(d.Hash(), &unpackCounter{ctx: ctx, r: stream}); corrupt(err) {
		return fmt.Errorf("layer %s: %v (the layer is truncated or corrupt): %w", meta.Digest, err, errdefs.ErrInvalidArgument)
	} else if err != nil {
		return fmt.Errorf("layer %s: %v: %w", meta.Digest, err, errdefs.ErrInvalidArgument)
	}
	if got := d.Digest(); got != meta.DiffID {
		return fmt.Errorf("layer %s: uncompressed content is %s, the config says %s: %w", meta.Digest, got, meta.DiffID, errdefs.ErrInvalidArgument)
	}
	return nil
}

// corrupt reports whether err is what reading a truncated or damaged
// compressed stream gives: the content's fault, not the machine's.
func corrupt(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.As(err, new(flate.CorruptInputError))
}
