package image

import (
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// CacheEntry is the result of one build step: the image config after the
// step and its layers. The store keeps the layers' blobs and snapshots as
// long as the entry exists, whether or not an image still uses them.
type CacheEntry struct {
	Config json.RawMessage `json:"config"` // a v1.ConfigFile
	Layers []Layer         `json:"layers"`
}

// CacheGet returns the build cache entry stored under key, or an error
// matching errdefs.ErrNotFound. An entry that cannot be read, or whose
// blobs or snapshots are missing, is not found either: the step runs again
// and its CachePut replaces the entry.
func (s *Store) CacheGet(key string) (*CacheEntry, error) {
	var e *CacheEntry
	err := s.index.view(func(tx *bolt.Tx) error {
		if data := tx.Bucket(bucketCache).Get([]byte(key)); data != nil {
			var got CacheEntry
			if json.Unmarshal(data, &got) == nil { // copies: data lives only as long as tx
				e = &got
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
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
	if key == "" || e == nil {
		return fmt.Errorf("build cache entry %q: no key or no entry: %w", key, errdefs.ErrInvalidArgument)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("build cache entry %q: %w", key, err)
	}
	return s.index.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCache).Put([]byte(key), data)
	})
}

// PruneCache removes every build cache entry, then the blobs and snapshots
// that neither an image nor an entry uses; it returns how many entries it
// removed.
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
	return n, s.gc()
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
