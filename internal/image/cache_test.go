package image

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

func TestCachePutGet(t *testing.T) {
	s := newStore(t)
	if _, err := s.CacheGet("k1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("CacheGet of an empty cache = %v", err)
	}
	e := &CacheEntry{Config: json.RawMessage(`{"architecture":"amd64"}`)}
	if err := s.CachePut("k1", e); err != nil {
		t.Fatal(err)
	}
	got, err := s.CacheGet("k1")
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Errorf("CacheGet = %+v, %v; want %+v", got, err, e)
	}
	// An entry whose layers are gone is a miss.
	gone := &CacheEntry{Config: e.Config, Layers: []Layer{{Digest: digest.FromString("x"), DiffID: digest.FromString("y"), ChainID: digest.FromString("y")}}}
	if err := s.CachePut("k2", gone); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k2", "k3"} {
		if got, err := s.CacheGet(k); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("CacheGet(%s) = %+v, %v; want a miss", k, got, err)
		}
	}
	if err := s.CachePut("", e); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("CachePut without a key = %v", err)
	}
	if n, err := s.PruneCache(); err != nil || n != 2 {
		t.Errorf("PruneCache = %d, %v", n, err)
	}
	if _, err := s.CacheGet("k1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("CacheGet after PruneCache = %v", err)
	}
}

// TestCacheKeepsLayers removes a built image whose layers a cache entry
// names: they stay until PruneCache.
func TestCacheKeepsLayers(t *testing.T) {
	needRoot(t)
	s := newStore(t)
	ctx := context.Background()
	layers := builtLayers(t, s)
	cfg := builtConfig(layers)
	img, err := s.AddImage(ctx, cfg, layers, []string{"localhost/built:1"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(cfg)
	if err := s.CachePut("step", &CacheEntry{Config: raw, Layers: layers}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Remove("localhost/built:1", false); err != nil {
		t.Fatal(err)
	}
	there := func() (n int) {
		for _, l := range layers {
			if s.blobs.has(l.Digest) {
				n++
			}
			if s.snaps.Has(l.ChainID) {
				n++
			}
		}
		return n
	}
	if n := there(); n != 4 {
		t.Errorf("after rmi, %d of 4 blobs and snapshots are left", n)
	}
	if s.blobs.has(img.ID) || s.blobs.has(img.Manifest) {
		t.Error("the removed image's config or manifest is left")
	}
	if e, err := s.CacheGet("step"); err != nil || len(e.Layers) != 2 {
		t.Errorf("CacheGet after rmi = %+v, %v", e, err)
	}
	if n, err := s.PruneCache(); err != nil || n != 1 {
		t.Errorf("PruneCache = %d, %v", n, err)
	}
	if n := there(); n != 0 {
		t.Errorf("after PruneCache, %d blobs and snapshots are left", n)
	}
	if entries, _ := os.ReadDir(s.snaps.Root()); len(entries) > 3 { // .tmp, .lock, sha256
		t.Errorf("snapshot store holds %v", entries)
	}
}
