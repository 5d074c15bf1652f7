package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Image is the record of one stored image. Its ID is its config's digest,
// as with Docker and Podman.
type Image struct {
	ID          digest.Digest `json:"id"`
	Manifest    digest.Digest `json:"manifest"`
	MediaType   string        `json:"mediaType"`
	Layers      []Layer       `json:"layers"`
	OS          string        `json:"os"`
	Arch        string        `json:"architecture"`
	Variant     string        `json:"variant,omitempty"`
	Created     time.Time     `json:"created"`
	Size        int64         `json:"size"` // compressed layers plus config
	RepoDigests []string      `json:"repoDigests,omitempty"`
	Names       []string      `json:"-"` // tags, filled from the tag index
}

// Layer is one layer of an image.
type Layer struct {
	Digest    digest.Digest `json:"digest"` // of the blob as stored (compressed)
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	DiffID    digest.Digest `json:"diffID"`  // of the uncompressed tar
	ChainID   digest.Digest `json:"chainID"` // the snapshot's key
}

var (
	bucketImages = []byte("images")
	bucketTags   = []byte("tags")
	bucketCache  = []byte("buildcache") // build step results, see CacheEntry
)

// index is the embedded database of image records and tags. It is opened
// per operation, so that several berth processes can use the store: bbolt
// holds a file lock while it is open.
type index struct{ path string }

func (x index) update(fn func(tx *bolt.Tx) error) error {
	db, err := x.open(false)
	if err != nil {
		return fmt.Errorf("image index %s: %w", x.path, err)
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketTags, bucketCache} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return fn(tx)
	})
}

// view runs fn in a read-only transaction on the index opened read-only,
// with bbolt's shared lock (update takes it exclusively): a read commits
// and syncs nothing. An index that does not exist yet, or lacks a bucket,
// is read through update, which makes them.
func (x index) view(fn func(tx *bolt.Tx) error) error {
	db, err := x.open(true)
	if errors.Is(err, os.ErrNotExist) {
		return x.update(fn)
	}
	if err != nil {
		return fmt.Errorf("image index %s: %w", x.path, err)
	}
	missing := false
	err = db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketTags, bucketCache} {
			if tx.Bucket(b) == nil {
				missing = true
				return nil
			}
		}
		return fn(tx)
	})
	db.Close()
	if missing {
		return x.update(fn)
	}
	return err
}

func getImage(tx *bolt.Tx, id digest.Digest) (*Image, error) {
	data := tx.Bucket(bucketImages).Get([]byte(id))
	if data == nil {
		return nil, fmt.Errorf("image %s: %w", id, errdefs.ErrNotFound)
	}
	var img Image
	if err := json.Unmarshal(data, &img); err != nil {
		return nil, fmt.Errorf("image %s: corrupt record: %w", id, err)
	}
	img.Names = tagsOf(tx, id)
	return &img, nil
}

func putImage(tx *bolt.Tx, img *Image) error {
	data, err := json.Marshal(img)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketImages).Put([]byte(img.ID), data)
}

func tagsOf(tx *bolt.Tx, id digest.Digest) []string {
	var names []string
	tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		if string(v) == string(id) {
			names = append(names, string(k))
		}
		return nil
	})
	sort.Strings(names)
	return names
}

// resolve finds the image that s names (see lookup).
func resolve(tx *bolt.Tx, s string) (*Image, error) {
	f, err := lookup(tx, s)
	return f.img, err
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
