// Package bolt is the embedded store.Store: one bbolt file on one machine,
// berth's default.
//
// The file is opened by one process, the control plane; a second opener
// fails at once with errdefs.ErrUnavailable (bbolt holds a lock on it), and
// everything else goes through that process's API. Every write is a bbolt
// transaction synced to disk before it returns, so a kill -9 loses nothing
// that was acknowledged and the revision counter never goes back.
//
// The file holds the keys with their revisions, a log of the latest
// events (the history Watch resumes from, bounded by WithHistory) and the
// leases. Leases expire in this process: a lease's deadline is kept in
// memory and restarts at its full ttl when the store is opened again (as
// etcd does when a leader changes), so holders get to refresh after a
// restart.
package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
	bbolt "go.etcd.io/bbolt"
)

func init() {
	store.Register("bolt", func(_ context.Context, uri string) (store.Store, error) {
		path, err := ParseURI(uri)
		if err != nil {
			return nil, err
		}
		return Open(path)
	})
}

// ParseURI returns the file path of "bolt:///abs/path" or of a plain path.
func ParseURI(uri string) (string, error) {
	if !strings.Contains(uri, "://") {
		if uri == "" {
			return "", fmt.Errorf("bolt store: empty path: %w", errdefs.ErrInvalidArgument)
		}
		return uri, nil
	}
	u, err := url.Parse(uri)
	switch {
	case err != nil:
		return "", fmt.Errorf("bolt store %q: %w", uri, errdefs.ErrInvalidArgument)
	case u.Scheme != "bolt":
		return "", fmt.Errorf("bolt store %q: scheme must be bolt: %w", uri, errdefs.ErrInvalidArgument)
	case u.Host != "" || u.RawQuery != "" || u.User != nil:
		return "", fmt.Errorf("bolt store %q: want bolt:///ABSOLUTE/PATH (three slashes, no host): %w", uri, errdefs.ErrInvalidArgument)
	case u.Path == "" || !filepath.IsAbs(u.Path):
		return "", fmt.Errorf("bolt store %q: want bolt:///ABSOLUTE/PATH: %w", uri, errdefs.ErrInvalidArgument)
	}
	return u.Path, nil
}

// DefaultHistory is how many revisions of events a store keeps for Watch.
const DefaultHistory = 10000

// Option modifies Open.
type Option func(*options)

type options struct{ history int64 }

// WithHistory keeps the events of the last n revisions (n ≥ 1) for
// watches that resume from a revision; a watcher that falls n events
// behind gets store.ErrCompacted.
func WithHistory(n int) Option { return func(o *options) { o.history = int64(max(n, 1)) } }

var (
	bucketMeta      = []byte("meta")
	bucketKV        = []byte("kv")
	bucketLog       = []byte("log")
	bucketLeases    = []byte("leases")
	bucketLeaseKeys = []byte("leasekeys") // lease ID + key → nothing

	metaRev     = []byte("rev")     // the store's revision
	metaCompact = []byte("compact") // the log holds the events after it
	metaLease   = []byte("lease")   // the last lease ID granted
)

// Store is a store.Store in one bbolt file.
type Store struct {
	db      *bbolt.DB
	history int64

	mu       sync.Mutex // serializes writes, watch registration and the leases
	closed   bool
	rev      int64 // as in metaRev, under mu
	compact  int64 // as in metaCompact, under mu
	watchers map[*watcher]struct{}
	leases   map[store.LeaseID]*lease

	wake chan struct{} // the lease deadlines changed
	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

type lease struct {
	ttl      time.Duration
	deadline time.Time
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in the file at path.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{history: DefaultHistory}
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt store %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("bolt store %s: in use by another process (the control plane opens it alone): %w", path, errdefs.ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt store %s: %w", path, err)
	}
	s := &Store{db: db, history: o.history, watchers: map[*watcher]struct{}{},
		leases: map[store.LeaseID]*lease{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt store %s: %w", path, err)
	}
	s.wg.Add(1)
	go s.expireLoop()
	return s, nil
}

// load creates the buckets and reads the counters and leases.
func (s *Store) load() error {
	now := time.Now()
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketKV, bucketLog, bucketLeases, bucketLeaseKeys} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		s.rev, s.compact = getInt(meta, metaRev), getInt(meta, metaCompact)
		return tx.Bucket(bucketLeases).ForEach(func(k, v []byte) error {
			ttl := time.Duration(binary.BigEndian.Uint64(v))
			s.leases[store.LeaseID(binary.BigEndian.Uint64(k))] = &lease{ttl: ttl, deadline: now.Add(ttl)}
			return nil
		})
	})
}

// Close stops the lease expiry and the watches and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.wg.Wait()
	return s.db.Close()
}

var errClosed = fmt.Errorf("bolt store: closed: %w", errdefs.ErrUnavailable)

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.View(fn)
	if errors.Is(err, bbolt.ErrDatabaseNotOpen) {
		return errClosed
	}
	return err
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.KeyValue, error) {
	if key == "" {
		return store.KeyValue{}, fmt.Errorf("store key: empty: %w", errdefs.ErrInvalidArgument)
	}
	var kv store.KeyValue
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketKV).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("store key %q: %w", key, errdefs.ErrNotFound)
		}
		kv = decodeKV([]byte(key), v)
		return nil
	})
	return kv, err
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]store.KeyValue, int64, error) {
	var (
		kvs []store.KeyValue
		rev int64
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		rev = getInt(tx.Bucket(bucketMeta), metaRev)
		c := tx.Bucket(bucketKV).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			kvs = append(kvs, decodeKV(k, v))
		}
		return nil
	})
	return kvs, rev, err
}

// A key's record: create revision, mod revision, lease, then the value.
const recordHeader = 24

func encodeKV(kv store.KeyValue) []byte {
	b := make([]byte, recordHeader+len(kv.Value))
	binary.BigEndian.PutUint64(b, uint64(kv.CreateRevision))
	binary.BigEndian.PutUint64(b[8:], uint64(kv.ModRevision))
	binary.BigEndian.PutUint64(b[16:], uint64(kv.Lease))
	copy(b[recordHeader:], kv.Value)
	return b
}

// decodeKV copies the record out of bbolt's memory, which is only valid
// in its transaction.
func decodeKV(k, v []byte) store.KeyValue {
	return store.KeyValue{
		Key:            string(k),
		CreateRevision: int64(binary.BigEndian.Uint64(v)),
		ModRevision:    int64(binary.BigEndian.Uint64(v[8:])),
		Lease:          store.LeaseID(binary.BigEndian.Uint64(v[16:])),
		Value:          append([]byte{}, v[recordHeader:]...),
	}
}

func u64(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func getInt(b *bbolt.Bucket, k []byte) int64 {
	if v := b.Get(k); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}
