package snapshot

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

const (
	fsDir    = "fs"
	metaFile = "meta.json"
	tmpDir   = ".tmp"
	lockDir  = ".lock"

	// maxDepth bounds a parent chain; overlayfs itself stacks at most 500
	// lower directories.
	maxDepth = 500
)

// Info describes a committed snapshot.
type Info struct {
	ChainID digest.Digest `json:"-"`
	// Parent is the chain ID of the snapshot below this one, empty for a
	// base layer.
	Parent digest.Digest `json:"parent,omitempty"`
	// Size is the number of bytes of file content in the diff, hard links
	// counted once.
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

// Store is an overlay snapshot store rooted at one directory. Its methods
// are safe for concurrent use by goroutines and by processes sharing the
// root.
type Store struct {
	root string
}

// New opens the store at root, creating it if needed, and removes what
// killed commits and removals left behind.
func New(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot store %q: %w", root, err)
	}
	for _, d := range []string{abs, filepath.Join(abs, tmpDir), filepath.Join(abs, lockDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("snapshot store: %w", err)
		}
	}
	// Committed layers hold set-user-ID programs: keep other users out.
	if err := os.Chmod(abs, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	s := &Store{root: abs}
	s.sweep()
	return s, nil
}

// Root returns the store's absolute root directory.
func (s *Store) Root() string { return s.root }

// dir returns the directory of the snapshot id, whether or not it exists.
func (s *Store) dir(id digest.Digest) (string, error) {
	if err := id.Validate(); err != nil {
		return "", fmt.Errorf("chain ID %q: %w", id, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.root, id.Algorithm().String(), id.Encoded()), nil
}

// name is id as one path component, for .tmp and .lock.
func name(id digest.Digest) string { return id.Algorithm().String() + "-" + id.Encoded() }

// Has reports whether the snapshot id is committed.
func (s *Store) Has(id digest.Digest) bool {
	d, err := s.dir(id)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(d, metaFile))
	return err == nil
}

// Path returns the diff directory of the snapshot id, the directory to give
// overlayfs as a lowerdir. It does not check that the snapshot exists, and
// returns "" for a malformed chain ID. The directory must be treated as
// read-only: a committed snapshot is shared by every image that has it.
func (s *Store) Path(id digest.Digest) string {
	d, err := s.dir(id)
	if err != nil {
		return ""
	}
	return filepath.Join(d, fsDir)
}

// Info returns the snapshot id's metadata, or an error matching
// errdefs.ErrNotFound if it is not committed.
func (s *Store) Info(id digest.Digest) (Info, error) {
	d, err := s.dir(id)
	if err != nil {
		return Info{}, err
	}
	b, err := os.ReadFile(filepath.Join(d, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("snapshot %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("snapshot %s: %w", id, err)
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return Info{}, fmt.Errorf("snapshot %s: corrupt %s: %w", id, metaFile, err)
	}
	info.ChainID = id
	return info, nil
}

// Parent returns the chain ID of the snapshot below id, "" for a base
// layer, or an error matching errdefs.ErrNotFound if id is not committed.
func (s *Store) Parent(id digest.Digest) (digest.Digest, error) {
	info, err := s.Info(id)
	return info.Parent, err
}

// Lowerdirs returns the diff directories of id and all its ancestors,
// topmost first: the value of overlay's lowerdir= option, joined by ":".
// It fails with errdefs.ErrNotFound if any snapshot on the way is missing.
func (s *Store) Lowerdirs(id digest.Digest) ([]string, error) {
	var dirs []string
	for cur := id; cur != ""; {
		if len(dirs) == maxDepth {
			return nil, fmt.Errorf("snapshot %s: more than %d layers: %w", id, maxDepth, errdefs.ErrInvalidArgument)
		}
		info, err := s.Info(cur)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, s.Path(cur))
		cur = info.Parent
	}
	return dirs, nil
}

// Walk calls fn for every committed snapshot, in no particular order, and
// stops at the first error fn returns. Snapshots committed or removed while
// Walk runs may or may not be seen.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	algos, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("snapshot store: %w", err)
	}
	for _, a := range algos {
		if !a.IsDir() || strings.HasPrefix(a.Name(), ".") {
			continue
		}
		ids, err := os.ReadDir(filepath.Join(s.root, a.Name()))
		if err != nil {
			return fmt.Errorf("snapshot store: %w", err)
		}
		for _, e := range ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			id := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), e.Name())
			info, err := s.Info(id)
			if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalidArgument) {
				continue // removed meanwhile, or not ours
			}
			if err != nil {
				return err
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// List returns the chain IDs of all committed snapshots, every child before
// its parent, so that removing them in this order never meets
// errdefs.ErrConflict.
func (s *Store) List() ([]digest.Digest, error) {
	parents := make(map[digest.Digest]digest.Digest)
	err := s.Walk(context.Background(), func(info Info) error {
		parents[info.ChainID] = info.Parent
		return nil
	})
	if err != nil {
		return nil, err
	}
	// depth is the number of ancestors a snapshot has in the store.
	depth := make(map[digest.Digest]int, len(parents))
	var depthOf func(id digest.Digest, n int) int
	depthOf = func(id digest.Digest, n int) int {
		p, ok := parents[id]
		if !ok || p == "" || n > maxDepth {
			return 0
		}
		if d, ok := depth[id]; ok {
			return d
		}
		d := 1 + depthOf(p, n+1)
		depth[id] = d
		return d
	}
	ids := make([]digest.Digest, 0, len(parents))
	for id := range parents {
		depthOf(id, 0)
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b digest.Digest) int {
		if c := cmp.Compare(depth[b], depth[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return ids, nil
}

// CommitOption changes how Commit makes a snapshot.
type CommitOption func(*commitOptions)

type commitOptions struct {
	size int64 // -1: measure the diff
}

// WithSize tells Commit the snapshot's Info.Size: the bytes of
// regular-file content that apply leaves in the diff, each inode counted
// once. A caller that wrote the diff and counted as it went (an unpacker)
// spares Commit the walk over the whole tree that measuring takes; the
// figure is recorded as given, not checked. Without it, or with a negative
// n, Commit measures.
func WithSize(n int64) CommitOption {
	return func(o *commitOptions) { o.size = n }
}

// Commit creates the snapshot id on top of parent ("" for a base layer) by
// calling apply with an empty directory that becomes the snapshot's diff.
//
// apply runs in a fresh temporary directory under the store's root, and the
// snapshot becomes visible, atomically, only after apply returned nil and
// the data was synced to disk. If apply fails, its error is returned as it
// is and nothing is left behind; if the process is killed, the next New or
// Commit removes the leftovers, and no reader ever sees a partial snapshot.
//
// Commit is idempotent: if id is already committed, or another goroutine or
// process commits it meanwhile, Commit returns nil without calling apply
// (concurrent Commits of one id wait for each other, so apply runs once).
// It fails with errdefs.ErrNotFound if parent is not committed,
// errdefs.ErrConflict if id exists with another parent, and
// errdefs.ErrInvalidArgument for a malformed chain ID. While Commit runs,
// parent cannot be removed.
func (s *Store) Commit(ctx context.Context, id, parent digest.Digest, apply func(dir string) error, opts ...CommitOption) (err error) {
	o := commitOptions{size: -1}
	for _, opt := range opts {
		opt(&o)
	}
	final, err := s.dir(id)
	if err != nil {
		return err
	}
	if parent != "" {
		if _, err := s.dir(parent); err != nil {
			return err
		}
		if parent == id {
			return fmt.Errorf("snapshot %s: is its own parent: %w", id, errdefs.ErrInvalidArgument)
		}
	}
	if s.Has(id) {
		return s.checkParent(id, parent)
	}

	l, err := s.lock(ctx, id, true)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	defer l.unlock()
	if parent != "" {
		// A shared lock keeps Remove(parent) out until the child is in.
		pl, err := s.lock(ctx, parent, false)
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", parent, err)
		}
		defer pl.unlock()
		if !s.Has(parent) {
			return fmt.Errorf("parent snapshot %s: %w", parent, errdefs.ErrNotFound)
		}
	}
	if s.Has(id) {
		return s.checkParent(id, parent)
	}
	s.sweep()

	// Under the lock, a temporary directory of this id is a killed attempt's.
	tmp := filepath.Join(s.root, tmpDir, name(id))
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("snapshot %s: removing a killed commit: %w", id, err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	diff := filepath.Join(tmp, fsDir)
	if err := os.Mkdir(diff, 0o755); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	if err := apply(diff); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	size := o.size
	if size < 0 {
		if size, err = usage(diff); err != nil {
			return fmt.Errorf("snapshot %s: measuring: %w", id, err)
		}
	}
	meta, err := json.Marshal(Info{Parent: parent, Size: size, Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, metaFile), meta, 0o600); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	// Flush the data before the rename publishes it, so that a crash of
	// the machine cannot leave a visible snapshot with empty files.
	if err := syncFS(tmp); err != nil {
		return fmt.Errorf("snapshot %s: sync: %w", id, err)
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	return syncDir(filepath.Dir(final))
}

// checkParent verifies that the committed snapshot id has parent.
func (s *Store) checkParent(id, parent digest.Digest) error {
	info, err := s.Info(id)
	if err != nil {
		return err
	}
	if info.Parent != parent {
		return fmt.Errorf("snapshot %s exists with parent %q, not %q: %w", id, info.Parent, parent, errdefs.ErrConflict)
	}
	return nil
}

// Remove deletes the snapshot id. It fails with errdefs.ErrNotFound if id is
// not committed and with errdefs.ErrConflict if another snapshot has id as
// its parent (remove children first). The snapshot disappears atomically;
// if the process is killed while its files are deleted, the next New or
// Commit finishes the job. Remove waits while a child of id is being
// committed.
func (s *Store) Remove(id digest.Digest) error {
	ctx := context.Background()
	final, err := s.dir(id)
	if err != nil {
		return err
	}
	l, err := s.lock(ctx, id, true)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	defer l.unlock()
	if !s.Has(id) {
		return fmt.Errorf("snapshot %s: %w", id, errdefs.ErrNotFound)
	}
	errChild := errors.New("child")
	var child digest.Digest
	err = s.Walk(ctx, func(info Info) error {
		if info.Parent == id {
			child = info.ChainID
			return errChild
		}
		return nil
	})
	if errors.Is(err, errChild) {
		return fmt.Errorf("snapshot %s is the parent of %s: %w", id, child, errdefs.ErrConflict)
	}
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.root, tmpDir, name(id))
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	if err := os.Rename(final, tmp); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	return nil
}

// sweep removes temporary directories and lock files that no live process
// holds: the leftovers of killed commits and removals. It is best effort;
// whatever it cannot remove now, a later sweep will.
func (s *Store) sweep() {
	entries, _ := os.ReadDir(filepath.Join(s.root, tmpDir))
	locks, _ := os.ReadDir(filepath.Join(s.root, lockDir))
	for _, e := range append(entries, locks...) {
		algo, enc, ok := strings.Cut(e.Name(), "-")
		id := digest.NewDigestFromEncoded(digest.Algorithm(algo), enc)
		if !ok || id.Validate() != nil {
			continue
		}
		l, err := s.tryLock(id)
		if err != nil {
			continue // in use
		}
		os.RemoveAll(filepath.Join(s.root, tmpDir, name(id)))
		l.unlock()
	}
}
