package image

import (
	"bufio"
	"context"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// prepareLayer makes layer l of a pulled or loaded image ready for its
// commit: its blob stored and, unless its snapshot exists, its content
// unpacked into a staging directory, which it returns with the bytes of
// file content it holds. known says the store has the blob and DiffID
// together already; big asks for read-ahead (see bigLayer).
func (s *Store) prepareLayer(ctx context.Context, l v1.Layer, meta Layer, known, big bool, progress *Progress) (string, int64, error) {
	snapshot := s.snaps.Has(meta.ChainID)
	if !snapshot && !s.blobs.has(meta.Digest) {
		return s.streamLayer(ctx, l, meta, big, progress)
	}
	if err := s.fetchLayer(l, meta, progress); err != nil {
		return "", 0, err
	}
	switch {
	case !snapshot:
		return s.stageLayer(ctx, meta) // checks the DiffID
	case !known:
		return "", 0, s.verifyDiffID(ctx, meta) // no unpacking to check it
	}
	return "", 0, nil
}

// bigLayer reports whether layers[i] holds more than half of the
// compressed bytes of the layers: it then unpacks mostly alone, and
// read-ahead gives it the other core.
func bigLayer(layers []Layer, i int) bool {
	var total int64
	for _, l := range layers {
		total += l.Size
	}
	return layers[i].Size*2 > total
}

// streamLayer fetches layer l's blob and unpacks it in the same pass: the
// compressed stream goes to a temporary blob file and to the unpacker at
// once, so unpacking does not wait for the download. Nothing unverified
// is kept: the blob is renamed into the store only once its content
// matches its digest, and the staging directory is returned (to be
// committed) only once the blob is in and the unpacked stream matches its
// DiffID; on any failure both are removed. Until then the unpacker treats
// the content as it treats every layer, as hostile.
func (s *Store) streamLayer(ctx context.Context, l v1.Layer, meta Layer, big bool, progress *Progress) (string, int64, error) {
	dir, err := s.newStagingDir(meta)
	if err != nil {
		return "", 0, err
	}
	usage, err := s.streamInto(ctx, dir, l, meta, big, progress)
	if err != nil {
		os.RemoveAll(dir)
		return "", 0, fmt.Errorf("layer %s: %w", meta.Digest, err)
	}
	return dir, usage, nil
}

func (s *Store) streamInto(ctx context.Context, dir string, l v1.Layer, meta Layer, big bool, progress *Progress) (int64, error) {
	bw, err := s.blobs.newWriter(meta.Digest)
	if err != nil {
		return 0, err
	}
	defer bw.discard()
	rc, err := l.Compressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	got := &counter{r: rc, p: progress, layer: meta.Digest, total: meta.Size}
	src := &streamSource{r: got}
	tee := io.TeeReader(src, bw)
	st, err := applyLayer(ctx, dir, tee, big)
	if err == nil || ctx.Err() == nil && src.err == nil {
		// The rest of the blob, past the end of the compressed stream or
		// of a layer that failed to unpack: a blob that does not match
		// its digest is the error to tell, whatever unpacking made of it.
		if _, cerr := io.Copy(io.Discard, tee); err == nil {
			err = cerr
		}
	}
	// The whole blob came (the download's own check of the digest fails
	// at its end) and does not match: that is the error to tell.
	mismatch := (src.err == nil || got.done == meta.Size) && ctx.Err() == nil && !bw.verified()
	switch {
	case mismatch:
		return 0, fmt.Errorf("blob %s: content does not match its digest: %w", meta.Digest, errdefs.ErrInvalidArgument)
	case src.err != nil:
		return 0, fmt.Errorf("blob %s: %w", meta.Digest, src.err)
	case ctx.Err() != nil:
		return 0, ctx.Err()
	case bw.err != nil:
		return 0, fmt.Errorf("blob %s: %w", meta.Digest, bw.err)
	case corrupt(err):
		return 0, fmt.Errorf("%v (the layer is truncated or corrupt): %w", err, errdefs.ErrInvalidArgument)
	case err != nil:
		return 0, err
	case st.DiffID != meta.DiffID:
		return 0, fmt.Errorf("uncompressed content is %s, the config says %s: %w", st.DiffID, meta.DiffID, errdefs.ErrInvalidArgument)
	}
	if err := bw.commit(); err != nil {
		return 0, fmt.Errorf("blob %s: %w", meta.Digest, err)
	}
	return st.Usage, nil
}

// streamSource keeps the error its reader (the download) failed with.
type streamSource struct {
	r   io.Reader
	err error
}

func (s *streamSource) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// newStagingDir makes a new directory under ROOT/staging for a layer's
// unpacked content.
func (s *Store) newStagingDir(meta Layer) (string, error) {
	base := filepath.Join(s.root, stagingDir)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(base, meta.ChainID.Encoded()[:12]+"-")
	if err != nil {
		return "", err
	}
	// A layer without a "./" entry leaves its root as Docker has it:
	// 0755, not MkdirTemp's 0700, which would lock every other user out of
	// the container's "/".
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// blobWriter writes one blob, as blobStore.write does, for a caller that
// has it as a stream of writes: to a temporary file beside the blob
// (swept, like write's, if the process dies), renamed into place by
// commit only if the content matches the digest. A write error is kept
// and reported by commit; Write itself never fails, so that a tee
// through it keeps feeding its other reader.
type blobWriter struct {
	b    blobStore
	d    digest.Digest
	tmp  *os.File
	w    *bufio.Writer
	h    hash.Hash
	err  error
	done bool
}

func (b blobStore) newWriter(d digest.Digest) (*blobWriter, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob digest %q: %v: %w", d, err, errdefs.ErrInvalidArgument)
	}
	dir := filepath.Dir(b.path(d))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+d.Encoded()[:12]+"-")
	if err != nil {
		return nil, err
	}
	return &blobWriter{b: b, d: d, tmp: tmp, w: bufio.NewWriterSize(tmp, 256<<10), h: d.Algorithm().Hash()}, nil
}

func (w *blobWriter) Write(p []byte) (int, error) {
	w.h.Write(p)
	if w.err == nil {
		_, w.err = w.w.Write(p)
	}
	return len(p), nil
}

func (w *blobWriter) verified() bool {
	return digest.NewDigest(w.d.Algorithm(), w.h) == w.d
}

// commit renames the verified blob into place.
func (w *blobWriter) commit() error {
	if !w.verified() {
		return fmt.Errorf("content does not match its digest: %w", errdefs.ErrInvalidArgument)
	}
	err := w.err
	if err == nil {
		err = w.w.Flush()
	}
	if cerr := w.tmp.Close(); err == nil {
		err = cerr
	}
	w.done = true
	if err == nil {
		err = os.Rename(w.tmp.Name(), w.b.path(w.d))
	}
	if err != nil {
		os.Remove(w.tmp.Name())
	}
	return err
}

// discard removes the temporary file unless commit ran.
func (w *blobWriter) discard() {
	if !w.done {
		w.tmp.Close()
		os.Remove(w.tmp.Name())
	}
}
