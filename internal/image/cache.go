package image

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// CacheEntry is what the build cache keeps of one build step. The store
// keeps the blobs and snapshots of its Layers as long as the entry exists,
// whether or not an image still uses them.
//
// An entry holds what its step added: Step, in the builder's own terms
// (the store does not read it), and the layers the step made. Entries
// written before held Config instead, the whole image config after the
// step, with all of its layers: a build of N steps then stored N configs of
// up to N history entries each, which grows as N². CacheGet returns both
// kinds; the builder tells them apart by Config.
type CacheEntry struct {
	Config json.RawMessage `json:"config,omitempty"` // a v1.ConfigFile, in entries of the old kind
	Step   json.RawMessage `json:"step,omitempty"`
	Layers []Layer         `json:"layers"`
}

// CacheGet returns the build cache entry stored under key, or an error
// matching errdefs.ErrNotFound. An entry that cannot be read, or whose
// blobs or snapshots are missing, is not found either: the step runs again
// and its CachePut replaces the entry.
func (s *Store) CacheGet(key string) (*CacheEntry, error) {
	var e *CacheEntry
	err := s.index.view(func(tx *bolt.Tx) error {
		var err error
		e, err = s.cacheGet(tx, key)
		return err
	})
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	return e, err
}

// CacheView calls fn with a get that does what CacheGet does, through one
// opening of the index: opening it costs more than a lookup, and a builder
// may look up thousands of entries in a row. The index stays open with
// bbolt's shared lock until fn returns, so fn must not write to the store
// (the write would wait for the lock, then fail), and should be quick:
// other processes' writes wait.
func (s *Store) CacheView(fn func(get func(key string) (*CacheEntry, error)) error) error {
	return s.index.view(func(tx *bolt.Tx) error {
		return fn(func(key string) (*CacheEntry, error) { return s.cacheGet(tx, key) })
	})
}

func (s *Store) cacheGet(tx *bolt.Tx, key string) (*CacheEntry, error) {
	var e *CacheEntry
	if data := tx.Bucket(bucketCache).Get([]byte(key)); data != nil {
		var got CacheEntry
		if json.Unmarshal(data, &got) == nil { // copies: data lives only as long as tx
			e = &got
		}
	}
	if e != nil {
		for _, l := range e.Layers {
			if !s.blobs.has(l.Digest) || !s.snaps.Has(l.ChainID) {
				e = nil
				break
			}
		}
	}
	if e == nil {
		return nil, fmt.Errorf("build cache entry %q: %w", key, errdefs.ErrNotFound)
	}
	return e, nil
}

// CachePut stores e under key, replacing what was there.
func (s *Store) CachePut(key string, e *CacheEntry) error {
	return s.CachePutAll(map[string]*CacheEntry{key: e})
}

// CachePutAll stores entries, each under its key, replacing what was
// there, in one transaction: a builder that queues the entries of its
// cheap steps writes them with one sync, not one each.
func (s *Store) CachePutAll(entries map[string]*CacheEntry) error {
	data := make(map[string][]byte, len(entries))
	for key, e := range entries {
		if key == "" || e == nil {
			return fmt.Errorf("build cache entry %q: no key or no entry: %w", key, errdefs.ErrInvalidArgument)
		}
		raw, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("build cache entry %q: %w", key, err)
		}
		data[key] = raw
	}
	if len(data) == 0 {
		return nil
	}
	return s.index.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCache)
		for key, raw := range data {
			if err := b.Put([]byte(key), raw); err != nil {
				return err
			}
		}
		return nil
	})
}

// PruneCache removes every build cache entry, then the blobs and snapshots
// that neither an image nor an entry uses; it returns how many entries it
// removed. bbolt keeps the pages it frees for later writes and never
// shrinks its file, so when the cache took much of images.db, the file is
// rewritten without them (see index.compact).
func (s *Store) PruneCache() (int, error) {
	n := 0
	err := s.index.update(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketCache).Stats().KeyN
		if err := tx.DeleteBucket(bucketCache); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketCache)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("build cache: %w", err)
	}
	if err := s.gc(); err != nil {
		return n, err
	}
	unlock, err := s.lock(true)
	if err != nil {
		return n, err
	}
	defer unlock()
	return n, s.index.compact()
}

// cacheRefs marks the blobs and snapshots of the build cache's layers as
// used, for gc. Configs are inside the entries, so no config blob is kept.
func (s *Store) cacheRefs(blobs, snaps map[digest.Digest]bool) error {
	return s.index.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCache).ForEach(func(_, v []byte) error {
			var e struct {
				Layers []Layer `json:"layers"`
			}
			if json.Unmarshal(v, &e) != nil {
				return nil // unreadable: a miss for CacheGet, so it keeps nothing
			}
			for _, l := range e.Layers {
				blobs[l.Digest], snaps[l.ChainID] = true, true
			}
			return nil
		})
	})
}
