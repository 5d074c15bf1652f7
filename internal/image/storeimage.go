package image

import (
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// storedImage is an image of the store as go-containerregistry's v1.Image,
// read from the blobs as they were pulled, so that pushing or saving it
// keeps its digests.
type storedImage struct {
	s        *Store
	rec      *Image
	progress *Progress // hears the bytes read from layer blobs
}

// V1 returns img as a go-containerregistry image backed by the store.
func (s *Store) V1(img *Image) (v1.Image, error) {
	return partial.CompressedToImage(storedImage{s: s, rec: img})
}

func (si storedImage) readBlob(h v1.Hash) ([]byte, error) {
	f, err := si.s.blobs.open(digestOf(h))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (si storedImage) RawManifest() ([]byte, error) {
	return si.readBlob(hashOf(si.rec.Manifest))
}

func (si storedImage) RawConfigFile() ([]byte, error) {
	return si.readBlob(hashOf(si.rec.ID))
}

func (si storedImage) MediaType() (types.MediaType, error) {
	return types.MediaType(si.rec.MediaType), nil
}

func (si storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range si.rec.Layers {
		if l.Digest.String() == h.String() {
			return storedLayer{si: si, l: l}, nil
		}
	}
	if h.String() == si.rec.ID.String() {
		return partial.ConfigLayer(si)
	}
	return nil, &blobMissing{h.String()}
}

type storedLayer struct {
	si storedImage
	l  Layer
}

func (sl storedLayer) Digest() (v1.Hash, error) { return hashOf(sl.l.Digest), nil }
func (sl storedLayer) Size() (int64, error)     { return sl.l.Size, nil }
func (sl storedLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(sl.l.MediaType), nil
}
func (sl storedLayer) Compressed() (io.ReadCloser, error) {
	f, err := sl.si.s.blobs.open(sl.l.Digest)
	if err != nil || sl.si.progress == nil {
		return f, err
	}
	return struct {
		io.Reader
		io.Closer
	}{&counter{r: f, p: sl.si.progress, layer: sl.l.Digest, total: sl.l.Size}, f}, nil
}

type blobMissing struct{ digest string }

func (e *blobMissing) Error() string { return "blob " + e.digest + " is not part of this image" }
