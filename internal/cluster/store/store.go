// Package store defines Store, the key-value store that holds berth's
// orchestration state, and what its backends share: revisions, the
// compare-and-swap check, watch events, leases and the URI that picks a
// backend.
//
// Every write gets a revision from one counter of the whole store that
// only grows. A key remembers the revision that created it and the one that
// last changed it; writers pass the revision they read so that two of them
// cannot both win (compare-and-swap), and readers list at a revision and
// then watch from it, so that they miss nothing in between. This is etcd's
// model; store/bolt implements it in one file on one machine, store/etcd on
// an etcd cluster, and store/storetest is the suite both pass.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Store is a key-value store with revisions, watches and leases. Keys are
// non-empty strings, conventionally paths ("/services/ID"); values are
// opaque bytes. All methods are safe for concurrent use.
type Store interface {
	// Get returns the key's value and revisions, or an error wrapping
	// errdefs.ErrNotFound when it does not exist.
	Get(ctx context.Context, key string) (KeyValue, error)

	// List returns every key that starts with prefix, in key order, and
	// the store revision they were read at: all of them as they were at
	// that revision. Watching from that revision then misses nothing.
	// An empty prefix lists the whole store.
	List(ctx context.Context, prefix string) ([]KeyValue, int64, error)

	// Put sets key to value if its current state matches rev: 0 means the
	// key must not exist (create only), a positive rev must be the key's
	// ModRevision (update only what was read), Any puts unconditionally.
	// A mismatch returns an error wrapping errdefs.ErrConflict and writes
	// nothing. Put returns the revision of the write. WithLease attaches
	// the key to a lease; a put without it detaches the key from any.
	Put(ctx context.Context, key string, value []byte, rev int64, opts ...PutOption) (int64, error)

	// Delete removes key if its ModRevision is rev, or whatever it is with
	// Any; a mismatch wraps errdefs.ErrConflict, a missing key
	// errdefs.ErrNotFound. Delete returns the revision of the deletion.
	Delete(ctx context.Context, key string, rev int64) (int64, error)

	// Txn applies ops, at most MaxTxnOps on distinct keys, all or none:
	// each op's condition is checked against the state before the
	// transaction, and the first one that fails is returned as Put or
	// Delete would return it. All writes share the returned revision and
	// their events are delivered in the order of ops.
	Txn(ctx context.Context, ops ...Op) (int64, error)

	// Watch delivers, in revision order, every put and delete of a key
	// under prefix with a revision above fromRevision, first those already
	// past and then each as it happens; fromRevision 0 means from now on.
	// The watch is in place when Watch returns. The channel is closed when
	// ctx is done or the store is closed, or after one event whose Err
	// says why the watch ended. Err wraps ErrCompacted when the history
	// after fromRevision is gone or the receiver fell too far behind: the
	// receiver lists again and watches from the list's revision. Watch
	// itself returns ErrCompacted when it can tell at once.
	Watch(ctx context.Context, prefix string, fromRevision int64) (<-chan Event, error)

	// Grant creates a lease that expires ttl after it was granted or last
	// refreshed; a backend may round ttl up (etcd to whole seconds and to
	// its minimum). When a lease expires or is revoked, the keys attached
	// to it are deleted, with delete events.
	Grant(ctx context.Context, ttl time.Duration) (LeaseID, error)

	// Refresh restarts the lease's ttl; a lease that already expired or
	// was revoked gives an error wrapping errdefs.ErrNotFound. A holder
	// refreshes well within ttl (a third of it, say).
	Refresh(ctx context.Context, id LeaseID) error

	// Revoke ends the lease now and deletes its keys; an unknown lease
	// gives an error wrapping errdefs.ErrNotFound.
	Revoke(ctx context.Context, id LeaseID) error

	// Close releases the store; its watches close and later calls fail
	// with errdefs.ErrUnavailable.
	Close() error
}

// KeyValue is a key with its value and revisions.
type KeyValue struct {
	Key   string
	Value []byte
	// CreateRevision is the revision that created the key; ModRevision
	// the one that last changed it (in a delete event, the deletion's).
	CreateRevision int64
	ModRevision    int64
	Lease          LeaseID // NoLease when not attached
}

// LeaseID names a lease.
type LeaseID int64

// NoLease is the lease of a key attached to none.
const NoLease LeaseID = 0

// Any is the revision condition of an unconditional Put or Delete.
const Any int64 = -1

// MaxTxnOps bounds the ops of one Txn (etcd's default limit).
const MaxTxnOps = 128

// ErrCompacted says that a watch cannot start or go on from its revision:
// list again and watch from the list's revision.
var ErrCompacted = errors.New("store history compacted past the watched revision (list again)")

// EventType is what happened to a key.
type EventType int

// Event types.
const (
	EventPut EventType = iota + 1
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	}
	return "error"
}

// Event is one change seen by a watch: a put (KV is the key as written) or
// a delete (KV has the key and the deletion's ModRevision). An event with
// Err set is the watch's last.
type Event struct {
	Type EventType
	KV   KeyValue
	Err  error
}

// PutOption modifies a Put or an OpPut.
type PutOption func(*Op)

// WithLease attaches the key to lease id.
func WithLease(id LeaseID) PutOption { return func(o *Op) { o.Lease = id } }

// Op is one write of a Txn.
type Op struct {
	Delete   bool
	Key      string
	Value    []byte
	Revision int64 // the condition, as Put's and Delete's rev
	Lease    LeaseID
}

// OpPut is Put as an op of a Txn.
func OpPut(key string, value []byte, rev int64, opts ...PutOption) Op {
	op := Op{Key: key, Value: value, Revision: rev}
	for _, o := range opts {
		o(&op)
	}
	return op
}

// OpDelete is Delete as an op of a Txn.
func OpDelete(key string, rev int64) Op { return Op{Delete: true, Key: key, Revision: rev} }

// CheckOps checks the form of a transaction's ops: at least one, at most
// MaxTxnOps, non-empty distinct keys and valid conditions.
func CheckOps(ops []Op) error {
	if len(ops) == 0 || len(ops) > MaxTxnOps {
		return fmt.Errorf("store transaction of %d writes: must have 1 to %d: %w", len(ops), MaxTxnOps, errdefs.ErrInvalidArgument)
	}
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		switch {
		case op.Key == "":
			return fmt.Errorf("store key: empty: %w", errdefs.ErrInvalidArgument)
		case seen[op.Key]:
			return fmt.Errorf("store key %q: written twice in one transaction: %w", op.Key, errdefs.ErrInvalidArgument)
		case op.Revision < Any:
			return fmt.Errorf("store key %q: revision condition %d: %w", op.Key, op.Revision, errdefs.ErrInvalidArgument)
		}
		seen[op.Key] = true
	}
	return nil
}

// Check says whether op's condition holds for the key's current state cur
// (nil when the key does not exist), with the error Put or Delete return.
func Check(op Op, cur *KeyValue) error {
	switch {
	case op.Delete && cur == nil:
		return fmt.Errorf("store key %q: %w", op.Key, errdefs.ErrNotFound)
	case op.Revision == Any:
		return nil
	case op.Revision == 0 && cur != nil:
		return fmt.Errorf("store key %q: exists (revision %d), expected none: %w", op.Key, cur.ModRevision, errdefs.ErrConflict)
	case op.Revision > 0 && cur == nil:
		return fmt.Errorf("store key %q: missing, expected revision %d: %w", op.Key, op.Revision, errdefs.ErrConflict)
	case op.Revision > 0 && cur.ModRevision != op.Revision:
		return fmt.Errorf("store key %q: at revision %d, expected %d: %w", op.Key, cur.ModRevision, op.Revision, errdefs.ErrConflict)
	}
	return nil
}
