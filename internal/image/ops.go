package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// List returns every image, newest first.
func (s *Store) List() ([]*Image, error) {
	var out []*Image
	err := s.index.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, _ []byte) error {
			img, err := getImage(tx, digest.Digest(k))
			if err != nil {
				return err
			}
			out = append(out, img)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// Get finds the image that name refers to (see resolve).
func (s *Store) Get(name string) (*Image, error) {
	var img *Image
	err := s.index.view(func(tx *bolt.Tx) (err error) {
		img, err = resolve(tx, name)
		return err
	})
	return img, err
}

// Config returns the raw config blob of img.
func (s *Store) Config(img *Image) ([]byte, error) {
	f, err := s.blobs.open(img.ID)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Tag gives the image that src names the additional name dst.
func (s *Store) Tag(src, dst string) error {
	ref, err := ParseReference(dst)
	if err != nil {
		return err
	}
	if ref.Tag() == "" {
		return fmt.Errorf("tag %q: a tag cannot be a digest: %w", dst, errdefs.ErrInvalidArgument)
	}
	return s.index.update(func(tx *bolt.Tx) error {
		img, err := resolve(tx, src)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketTags).Put([]byte(ref.String()), []byte(img.ID))
	})
}

// Remove untags name; when it was the image's last name, or name is an ID,
// the image goes too (an ID with force even if the image has other names;
// a name, as with Docker, only ever takes itself away). It returns
// what was untagged and deleted. Blobs and snapshots no image uses any more
// are removed afterwards. An image that containers use is refused; with
// force its names go but the image stays, unnamed, as long as they use it.
func (s *Store) Remove(name string, force bool) (untagged []string, deleted digest.Digest, err error) {
	img, err := s.Get(name)
	if err != nil {
		return nil, "", err
	}
	users, err := s.usersOf(img.ID)
	if err != nil {
		return nil, "", err
	}
	err = s.index.update(func(tx *bolt.Tx) error {
		f, err := lookup(tx, name)
		if err != nil {
			return err
		}
		img, tags, byTag := f.img, tx.Bucket(bucketTags), f.tag != ""
		if byTag && len(img.Names) > 1 {
			untagged = []string{f.tag}
			return tags.Delete([]byte(f.tag))
		}
		if !byTag && len(img.Names) > 1 && !force {
			return fmt.Errorf("image %s has several names (%v); remove them one by one or use --force: %w", img.ID.Encoded()[:12], img.Names, errdefs.ErrConflict)
		}
		if len(users) > 0 && !force {
			return fmt.Errorf("image %s is used by container %s: remove the container first (-f only untags it): %w",
				name, strings.Join(users, ", "), errdefs.ErrConflict)
		}
		for _, n := range img.Names {
			if err := tags.Delete([]byte(n)); err != nil {
				return err
			}
		}
		untagged = img.Names
		if len(users) > 0 {
			return nil
		}
		deleted = img.ID
		return tx.Bucket(bucketImages).Delete([]byte(img.ID))
	})
	if err != nil || deleted == "" {
		return untagged, deleted, err
	}
	return untagged, deleted, s.gc()
}

// gc removes blobs and snapshots that no image and no build cache entry
// refers to. It holds the store lock exclusively, so no add is between
// writing blobs and recording its image.
func (s *Store) gc() error {
	unlock, err := s.lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	images, err := s.List()
	if err != nil {
		return err
	}
	usedBlobs := map[digest.Digest]bool{}
	usedSnaps := map[digest.Digest]bool{}
	for _, img := range images {
		usedBlobs[img.ID], usedBlobs[img.Manifest] = true, true
		for _, l := range img.Layers {
			usedBlobs[l.Digest], usedSnaps[l.ChainID] = true, true
		}
	}
	// Build cache entries keep their layers for the next build, even
	// after the images that had them are gone (PruneCache frees them).
	if err := s.cacheRefs(usedBlobs, usedSnaps); err != nil {
		return err
	}
	blobs, err := s.blobs.list()
	if err != nil {
		return err
	}
	// No writer runs: temporary state is killed writers'.
	s.removeTemporary()
	for _, d := range blobs {
		if !usedBlobs[d] {
			if err := s.blobs.remove(d); err != nil {
				return err
			}
		}
	}
	snaps, err := s.snaps.List()
	if err != nil {
		return err
	}
	// A snapshot can go only after its children: repeat until a pass
	// removes nothing.
	for removed := true; removed; {
		removed = false
		for _, id := range snaps {
			if usedSnaps[id] || !s.snaps.Has(id) {
				continue
			}
			err := s.snaps.Remove(id)
			switch {
			case err == nil:
				removed = true
			case !errors.Is(err, errdefs.ErrConflict):
				return err
			}
		}
	}
	return nil
}

// Prune removes images without a name (dangling), or with all every
// image, except those containers use. It returns the IDs removed.
func (s *Store) Prune(all bool) ([]digest.Digest, error) {
	var removed []digest.Digest
	var used map[digest.Digest][]string
	if s.users != nil {
		var err error
		if used, err = s.users(); err != nil {
			return nil, err
		}
	}
	err := s.index.update(func(tx *bolt.Tx) error {
		// bbolt forbids deleting while iterating: collect, then delete.
		tx.Bucket(bucketImages).ForEach(func(k, _ []byte) error {
			if len(used[digest.Digest(k)]) > 0 {
				return nil
			}
			if all || len(tagsOf(tx, digest.Digest(k))) == 0 {
				removed = append(removed, digest.Digest(k))
			}
			return nil
		})
		for _, id := range removed {
			for _, n := range tagsOf(tx, id) {
				if err := tx.Bucket(bucketTags).Delete([]byte(n)); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bucketImages).Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, s.gc()
}

// ImportOption configures Import.
type ImportOption func(*importOptions)

type importOptions struct {
	changes []string
	message string
}

// WithChanges applies Dockerfile instructions to the imported image's
// configuration (see ApplyChanges), like `docker import --change`.
func WithChanges(changes ...string) ImportOption {
	return func(o *importOptions) { o.changes = append(o.changes, changes...) }
}

// WithMessage sets the comment of the imported layer's history entry, like
// `docker import --message`.
func WithMessage(msg string) ImportOption {
	return func(o *importOptions) { o.message = msg }
}

// Import makes a one-layer image from a root file system tarball (plain,
// gzip or zstd) and names it ref, like `docker import`. A change that is
// not valid (see ApplyChanges) is an errdefs.ErrInvalidArgument, and
// nothing is stored.
func (s *Store) Import(ctx context.Context, tarPath string, ref Reference, progress *Progress, opts ...ImportOption) (*Image, error) {
	config, o, err := importConfig(opts)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(tarPath); err != nil {
		return nil, fmt.Errorf("import %s: %w", tarPath, err)
	}
	return s.importFile(ctx, tarPath, tarPath, ref, progress, config, o)
}

// ImportReader is Import of a tarball read from r, as `import -` reads
// standard input; errors call it "-". The tarball is read more than once,
// so it is spooled first, under the store's root, where the next command's
// sweep finds it if this one is killed.
func (s *Store) ImportReader(ctx context.Context, r io.Reader, ref Reference, progress *Progress, opts ...ImportOption) (*Image, error) {
	config, o, err := importConfig(opts)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lock(false) // for the spooled tarball
	if err != nil {
		return nil, err
	}
	defer unlock()
	dir, err := s.scratch("import-")
	if err != nil {
		return nil, fmt.Errorf("import -: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("import -: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("import -: reading the tarball: %w", err)
	}
	return s.importFile(ctx, path, "-", ref, progress, config, o)
}

func importConfig(opts []ImportOption) (v1.Config, importOptions, error) {
	var o importOptions
	for _, opt := range opts {
		opt(&o)
	}
	var config v1.Config
	if err := ApplyChanges(&config, o.changes); err != nil {
		return config, o, fmt.Errorf("import: %w", err)
	}
	return config, o, nil
}

// importFile imports the tarball at tarPath, which errors call what.
func (s *Store) importFile(ctx context.Context, tarPath, what string, ref Reference, progress *Progress, config v1.Config, o importOptions) (*Image, error) {
	layer, err := tarball.LayerFromFile(tarPath)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", what, err)
	}
	created := time.Now().UTC()
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: created},
		Comment: o.message,
	}})
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", what, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", goruntime.GOARCH
	cfg.Created = v1.Time{Time: created}
	cfg.Config = config
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	var names []string
	if ref.Tag() != "" {
		names = []string{ref.String()}
	}
	rec, err := s.add(ctx, img, names, "", progress)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", what, err)
	}
	return rec, nil
}
