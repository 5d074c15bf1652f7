package image

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// TestPruneCacheShrinksIndex fills the build cache, then prunes it: the
// index file gives the space back, and what else it holds stays.
func TestPruneCacheShrinksIndex(t *testing.T) {
	s := newStore(t)
	id := digest.FromString("an image")
	err := s.index.update(func(tx *bolt.Tx) error {
		if err := putImage(tx, &Image{ID: id, OS: "linux"}); err != nil {
			return err
		}
		return tx.Bucket(bucketTags).Put([]byte("localhost/kept:1"), []byte(id))
	})
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]*CacheEntry{}
	for i := 0; i < 4000; i++ {
		entries[fmt.Sprint("key", i)] = &CacheEntry{Step: []byte(fmt.Sprintf(`{"history":[{"created_by":%q}]}`, bytes.Repeat([]byte("x"), 2000)))}
	}
	if err := s.CachePutAll(entries); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(s.index.path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	if before < 8<<20 {
		t.Fatalf("images.db is %d bytes with 8 MB of entries", before)
	}
	if n, err := s.PruneCache(); err != nil || n != 4000 {
		t.Fatalf("PruneCache = %d, %v", n, err)
	}
	if after := size(); after > 256<<10 {
		t.Fatalf("after PruneCache, images.db is %d bytes (%d before)", after, before)
	}
	if _, err := os.Stat(s.index.path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("the compaction's copy is left: %v", err)
	}
	err = s.index.view(func(tx *bolt.Tx) error {
		img, err := getImage(tx, id)
		if err == nil && (img.OS != "linux" || len(img.Names) != 1) {
			err = fmt.Errorf("image record %+v", img)
		}
		return err
	})
	if err != nil {
		t.Fatalf("after compaction: %v", err)
	}
	if _, err := s.CacheGet("key1"); err == nil {
		t.Error("an entry survived PruneCache")
	}
	if err := s.CachePut("new", &CacheEntry{Step: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	// A prune that frees little leaves the file alone.
	before = size()
	if _, err := s.PruneCache(); err != nil {
		t.Fatal(err)
	}
	if size() != before {
		t.Errorf("a small prune rewrote images.db")
	}
}

// TestIndexReplacedWhileWaiting opens the index while another holder has
// it locked and replaces the file, as compaction does: the waiting update
// must land in the new file, not in the old one that is gone.
func TestIndexReplacedWhileWaiting(t *testing.T) {
	s := newStore(t)
	if err := s.CachePut("first", &CacheEntry{Step: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	holder, err := s.index.open(false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.CachePut("second", &CacheEntry{Step: []byte(`{}`)}) }()
	time.Sleep(200 * time.Millisecond) // the update has opened the old file and waits for its lock
	// Replace the file with a copy, as compaction does, then let go.
	tmp := s.index.path + ".compact"
	src, _ := os.Open(s.index.path)
	dst, _ := os.Create(tmp)
	io.Copy(dst, src)
	src.Close()
	dst.Close()
	if err := os.Rename(tmp, s.index.path); err != nil {
		t.Fatal(err)
	}
	holder.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"first", "second"} {
		if _, err := s.CacheGet(k); err != nil {
			t.Errorf("CacheGet(%s) after the replacement: %v", k, err)
		}
	}
}
