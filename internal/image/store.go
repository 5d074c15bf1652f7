package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/snapshot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Store is berth's image store under one root directory:
//
//	ROOT/blobs/sha256/HEX   manifests, configs and compressed layers
//	ROOT/snapshots/...      one unpacked overlay layer per chain ID
//	ROOT/images.db          image records and tags (bbolt)
//	ROOT/lock               the store lock (see sweep.go)
//	ROOT/staging/...        commands' temporary state (see sweep.go)
//	ROOT/transfers/...
type Store struct {
	root  string
	blobs blobStore
	snaps *snapshot.Store
	index index
	users UsersFunc
}

// UsersFunc returns, for each image ID that containers use, the names of
// those containers.
type UsersFunc func() (map[digest.Digest][]string, error)

// SetUsers tells the store which images containers use: Remove and Prune
// keep those.
func (s *Store) SetUsers(fn UsersFunc) { s.users = fn }

// usersOf returns the containers that use image id.
func (s *Store) usersOf(id digest.Digest) ([]string, error) {
	if s.users == nil {
		return nil, nil
	}
	m, err := s.users()
	return m[id], err
}

// Open opens (creating if needed) the store at root.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("image store %s: %w", root, err)
	}
	snaps, err := snapshot.New(filepath.Join(root, "snapshots"))
	if err != nil {
		return nil, err
	}
	return &Store{
		root:  root,
		blobs: blobStore{root: filepath.Join(root, "blobs")},
		snaps: snaps,
		index: index{path: filepath.Join(root, "images.db")},
	}, nil
}

// Snapshots is the store's snapshot store, where containers find their
// lower directories.
func (s *Store) Snapshots() *snapshot.Store { return s.snaps }

// Progress hears how a transfer goes; a nil *Progress or nil field hears
// nothing.
type Progress struct {
	// Step receives one line per finished step.
	Step func(format string, args ...any)
	// Bytes receives how much of a layer's blob has been fetched.
	Bytes func(layer digest.Digest, done, total int64)
}

func (p *Progress) step(format string, args ...any) {
	if p != nil && p.Step != nil {
		p.Step(format, args...)
	}
}

// counter reports the bytes read through it to a Progress.
type counter struct {
	r     io.Reader
	p     *Progress
	layer digest.Digest
	done  int64
	total int64
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.done += int64(n)
	if c.p != nil && c.p.Bytes != nil {
		c.p.Bytes(c.layer, c.done, c.total)
	}
	return n, err
}

// add stores img — its config, manifest and every layer unpacked into a
// snapshot — and records it under names. The record is written last, so an
// interrupted add leaves no visible image, and a retry reuses the blobs and
// snapshots already complete.
func (s *Store) add(ctx context.Context, img v1.Image, names []string, repoDigest string, progress *Progress) (*Image, error) {
	unlock, err := s.lock(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w", cfgName, err)
	}
	if err := verifyConfig(img); err != nil {
		return nil, err
	}
	known, err := s.knownLayers()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("image layers: %w", err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return nil, fmt.Errorf("image %s: manifest has %d layers, config %d: %w", cfgName, len(layers), len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	rec := &Image{
		ID: digest.Digest(cfgName.String()), OS: cfg.OS, Arch: cfg.Architecture,
		Variant: cfg.Variant, Created: cfg.Created.Time,
	}
	diffIDs := make([]digest.Digest, len(layers))
	for i, d := range cfg.RootFS.DiffIDs {
		diffIDs[i] = digest.Digest(d.String())
	}
	chain := identity.ChainIDs(append([]digest.Digest(nil), diffIDs...))
	rec.Layers = make([]Layer, len(layers))
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		mt, _ := l.MediaType()
		size, _ := l.Size()
		rec.Layers[i] = Layer{Digest: digest.Digest(d.String()), MediaType: string(mt), Size: size, DiffID: diffIDs[i], ChainID: chain[i]}
		rec.Size += size
	}

	// Layers are fetched and unpacked in parallel, each into a staging
	// directory of its own; the snapshots are then committed in order,
	// since a snapshot needs its parent.
	var wg sync.WaitGroup
	errs := make([]error, len(layers))
	staged := make([]string, len(layers))
	usage := make([]int64, len(layers)) // of the staged layers
	committed := make([]chan struct{}, len(layers))
	sem := make(chan struct{}, 4)
	for i, l := range layers {
		committed[i] = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(committed[i])
			sem <- struct{}{}
			meta := rec.Layers[i]
			var err error
			staged[i], usage[i], err = s.prepareLayer(ctx, l, meta, known[[2]digest.Digest{meta.Digest, meta.DiffID}], bigLayer(rec.Layers, i), progress)
			<-sem
			if staged[i] != "" {
				defer os.RemoveAll(staged[i])
				// Write the layer out now, while other layers unpack:
				// each commit syncs the file system before it publishes,
				// and the commits, made in order, then find little left.
				syncStaged(staged[i])
			}
			if i > 0 {
				<-committed[i-1]
				if errs[i-1] != nil && err == nil {
					err = errs[i-1]
				}
			}
			if err == nil {
				err = s.commitLayer(ctx, rec.Layers[i], parentOf(chain, i), staged[i], usage[i], progress)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}

	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	if _, err := s.blobs.write(rec.ID, bytes.NewReader(rawCfg)); err != nil {
		return nil, err
	}
	rec.Size += int64(len(rawCfg))
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	mt, _ := img.MediaType()
	rec.MediaType = string(mt)
	rec.Manifest = digest.FromBytes(rawManifest)
	if _, err := s.blobs.write(rec.Manifest, bytes.NewReader(rawManifest)); err != nil {
		return nil, err
	}
	progress.step("Writing manifest to image destination")
	err = s.index.update(func(tx *bolt.Tx) error {
		if old, err := getImage(tx, rec.ID); err == nil {
			rec.RepoDigests = old.RepoDigests
		}
		if repoDigest != "" && !contains(rec.RepoDigests, repoDigest) {
			rec.RepoDigests = append(rec.RepoDigests, repoDigest)
		}
		if err := putImage(tx, rec); err != nil {
			return err
		}
		for _, n := range names {
			if err := tx.Bucket(bucketTags).Put([]byte(n), []byte(rec.ID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rec.Names = names
	return rec, nil
}

// syncStaged starts and waits for the writing out of the file system that
// holds dir. It is only a head start for the commit's own sync, so it
// reports nothing.
func syncStaged(dir string) {
	if fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		unix.Syncfs(fd)
		unix.Close(fd)
	}
}

func parentOf(chain []digest.Digest, i int) digest.Digest {
	if i == 0 {
		return ""
	}
	return chain[i-1]
}

// fetchLayer stores layer l's compressed blob unless it is there already.
func (s *Store) fetchLayer(l v1.Layer, meta Layer, progress *Progress) error {
	if s.blobs.has(meta.Digest) {
		if progress != nil && progress.Bytes != nil {
			progress.Bytes(meta.Digest, meta.Size, meta.Size)
		}
		return nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", meta.Digest, err)
	}
	defer rc.Close()
	r := &counter{r: rc, p: progress, layer: meta.Digest, total: meta.Size}
	if _, err := s.blobs.write(meta.Digest, r); err != nil {
		return fmt.Errorf("layer %s: %w", meta.Digest, err)
	}
	return nil
}

// stageLayer unpacks a fetched layer into a new directory under
// ROOT/staging and returns it and the bytes of file content it holds.
func (s *Store) stageLayer(ctx context.Context, meta Layer) (string, int64, error) {
	base := filepath.Join(s.root, stagingDir)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", 0, err
	}
	dir, err := os.MkdirTemp(base, meta.ChainID.Encoded()[:12]+"-")
	if err != nil {
		return "", 0, err
	}
	// A layer without a "./" entry leaves its root as Docker has it:
	// 0755, not MkdirTemp's 0700, which would lock every other user out of
	// the container's "/".
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", 0, err
	}
	f, err := s.blobs.open(meta.Digest)
	if err != nil {
		os.RemoveAll(dir)
		return "", 0, err
	}
	defer f.Close()
	st, err := ApplyLayer(ctx, dir, f)
	if corrupt(err) {
		err = fmt.Errorf("%v (the layer is truncated or corrupt): %w", err, errdefs.ErrInvalidArgument)
	}
	if err == nil && st.DiffID != meta.DiffID {
		err = fmt.Errorf("uncompressed content is %s, the config says %s: %w", st.DiffID, meta.DiffID, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", 0, fmt.Errorf("layer %s: %w", meta.Digest, err)
	}
	return dir, st.Usage, nil
}

// commitLayer makes the snapshot of a layer from its staging directory
// (moved in by rename: same file system), which holds usage bytes of file
// content; staged is "" when the snapshot existed already.
func (s *Store) commitLayer(ctx context.Context, meta Layer, parent digest.Digest, staged string, usage int64, progress *Progress) error {
	short := meta.Digest.Encoded()[:12]
	if staged == "" {
		progress.step("Copying blob %s skipped: already exists", short)
		return nil
	}
	err := s.snaps.Commit(ctx, meta.ChainID, parent, func(dir string) error {
		entries, err := os.ReadDir(staged)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := os.Rename(filepath.Join(staged, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
		// The layer's own root entry may have set the directory's mode,
		// owner, times and opaque marker: carry them over.
		return copyDirAttrs(staged, dir)
	}, snapshot.WithSize(usage))
	if err != nil {
		return fmt.Errorf("layer %s: %w", meta.Digest, err)
	}
	progress.step("Copying blob %s done", short)
	return nil
}
