package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
)

// blobStore keeps blobs by digest under root/ALGO/HEX. A blob is written to
// a temporary file, verified against its digest, and renamed into place:
// readers never see a partial or wrong blob, and concurrent writers of one
// blob both succeed.
type blobStore struct{ root string }

func (b blobStore) path(d digest.Digest) string {
	return filepath.Join(b.root, d.Algorithm().String(), d.Encoded())
}

func (b blobStore) has(d digest.Digest) bool {
	_, err := os.Stat(b.path(d))
	return err == nil
}

func (b blobStore) open(d digest.Digest) (*os.File, error) {
	f, err := os.Open(b.path(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	return f, err
}

// write stores r's content as blob d, failing if the content does not
// match d.
func (b blobStore) write(d digest.Digest, r io.Reader) (int64, error) {
	if err := d.Validate(); err != nil {
		return 0, fmt.Errorf("blob digest %q: %v: %w", d, err, errdefs.ErrInvalidArgument)
	}
	dir := filepath.Dir(b.path(d))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+d.Encoded()[:12]+"-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	// Big writes: a layer comes from the network a few KB at a time.
	v := d.Verifier()
	w := bufio.NewWriterSize(tmp, 256<<10)
	n, err := io.Copy(io.MultiWriter(w, v), r)
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("blob %s: %w", d, err)
	}
	if !v.Verified() {
		return n, fmt.Errorf("blob %s: content does not match its digest: %w", d, errdefs.ErrInvalidArgument)
	}
	if err := os.Rename(tmp.Name(), b.path(d)); err != nil {
		return n, fmt.Errorf("blob %s: %w", d, err)
	}
	return n, nil
}

func (b blobStore) remove(d digest.Digest) error {
	err := os.Remove(b.path(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// list returns the digests of all blobs.
func (b blobStore) list() ([]digest.Digest, error) {
	var out []digest.Digest
	algos, err := os.ReadDir(b.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, a := range algos {
		entries, err := os.ReadDir(filepath.Join(b.root, a.Name()))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), e.Name())
			if d.Validate() == nil {
				out = append(out, d)
			}
		}
	}
	return out, nil
}
