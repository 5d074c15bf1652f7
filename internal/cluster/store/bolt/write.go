package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
	bbolt "go.etcd.io/bbolt"
)

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, rev int64, opts ...store.PutOption) (int64, error) {
	return s.Txn(ctx, store.OpPut(key, value, rev, opts...))
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, rev int64) (int64, error) {
	return s.Txn(ctx, store.OpDelete(key, rev))
}

// Txn implements store.Store.
func (s *Store) Txn(ctx context.Context, ops ...store.Op) (int64, error) {
	if err := store.CheckOps(ops); err != nil {
		return 0, err
	}
	return s.write(ctx, func(tx *bbolt.Tx, rev int64) ([]store.Event, error) {
		kvs, leaseKeys := tx.Bucket(bucketKV), tx.Bucket(bucketLeaseKeys)
		cur := make([]*store.KeyValue, len(ops))
		for i, op := range ops {
			if v := kvs.Get([]byte(op.Key)); v != nil {
				kv := decodeKV([]byte(op.Key), v)
				cur[i] = &kv
			}
			if err := store.Check(op, cur[i]); err != nil {
				return nil, err
			}
			if !op.Delete && op.Lease != store.NoLease && s.leases[op.Lease] == nil {
				return nil, fmt.Errorf("store lease %d: %w", op.Lease, errdefs.ErrNotFound)
			}
		}
		events := make([]store.Event, 0, len(ops))
		for i, op := range ops {
			if c := cur[i]; c != nil && c.Lease != store.NoLease {
				if err := leaseKeys.Delete(leaseKey(c.Lease, op.Key)); err != nil {
					return nil, err
				}
			}
			if op.Delete {
				if err := kvs.Delete([]byte(op.Key)); err != nil {
					return nil, err
				}
				events = append(events, store.Event{Type: store.EventDelete, KV: store.KeyValue{Key: op.Key, ModRevision: rev}})
				continue
			}
			kv := store.KeyValue{Key: op.Key, Value: append([]byte{}, op.Value...), CreateRevision: rev, ModRevision: rev, Lease: op.Lease}
			if cur[i] != nil {
				kv.CreateRevision = cur[i].CreateRevision
			}
			if err := kvs.Put([]byte(op.Key), encodeKV(kv)); err != nil {
				return nil, err
			}
			if op.Lease != store.NoLease {
				if err := leaseKeys.Put(leaseKey(op.Lease, op.Key), []byte{}); err != nil {
					return nil, err
				}
			}
			events = append(events, store.Event{Type: store.EventPut, KV: kv})
		}
		return events, nil
	})
}

// write runs fn in a write transaction at the next revision.
func (s *Store) write(ctx context.Context, fn func(tx *bbolt.Tx, rev int64) ([]store.Event, error)) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	return s.writeLocked(fn)
}

// writeLocked runs fn in a write transaction at revision s.rev+1, logs the
// events fn returns and hands them to the watchers. Without events the
// revision stays as it was (fn may still have written). s.mu is held.
func (s *Store) writeLocked(fn func(tx *bbolt.Tx, rev int64) ([]store.Event, error)) (int64, error) {
	rev, compact := s.rev+1, s.compact
	var events []store.Event
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if events, err = fn(tx, rev); err != nil || len(events) == 0 {
			return err
		}
		meta, log := tx.Bucket(bucketMeta), tx.Bucket(bucketLog)
		if err := meta.Put(metaRev, u64(rev)); err != nil {
			return err
		}
		for i, ev := range events {
			if err := log.Put(logKey(rev, i), encodeEvent(ev)); err != nil {
				return err
			}
		}
		if rev-compact > s.history {
			compact = rev - s.history
			return trimLog(tx, compact)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(events) == 0 {
		return s.rev, nil
	}
	s.rev, s.compact = rev, compact
	for w := range s.watchers {
		w.push(events)
	}
	return rev, nil
}

// Compact drops the events up to rev from the history; watches from
// before rev then get store.ErrCompacted.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errClosed
	case rev > s.rev:
		return fmt.Errorf("store compact to revision %d: the store is at %d: %w", rev, s.rev, errdefs.ErrInvalidArgument)
	case rev <= s.compact:
		return nil
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error { return trimLog(tx, rev) }); err != nil {
		return err
	}
	s.compact = rev
	return nil
}

// trimLog deletes the log's events up to revision rev and records rev as
// the compaction point.
func trimLog(tx *bbolt.Tx, rev int64) error {
	c := tx.Bucket(bucketLog).Cursor()
	for k, _ := c.First(); k != nil && keyRevision(k) <= rev; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(metaCompact, u64(rev))
}

// logKey orders events by revision, then by their place in the
// transaction.
func logKey(rev int64, i int) []byte {
	return binary.BigEndian.AppendUint32(u64(rev), uint32(i))
}

// keyRevision returns the revision of a log key.
func keyRevision(k []byte) int64 { return int64(binary.BigEndian.Uint64(k)) }

// An event in the log: its type, the key's length, the key, its record.
func encodeEvent(ev store.Event) []byte {
	b := []byte{byte(ev.Type)}
	b = binary.BigEndian.AppendUint32(b, uint32(len(ev.KV.Key)))
	b = append(b, ev.KV.Key...)
	return append(b, encodeKV(ev.KV)...)
}

func decodeEvent(b []byte) store.Event {
	n := binary.BigEndian.Uint32(b[1:])
	key := b[5 : 5+n]
	return store.Event{Type: store.EventType(b[0]), KV: decodeKV(key, b[5+n:])}
}

func leaseKey(id store.LeaseID, key string) []byte { return append(u64(int64(id)), key...) }

// Grant implements store.Store.
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (store.LeaseID, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("store lease ttl %s: must be positive: %w", ttl, errdefs.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	var id store.LeaseID
	err := s.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		id = store.LeaseID(getInt(meta, metaLease) + 1)
		if err := meta.Put(metaLease, u64(int64(id))); err != nil {
			return err
		}
		return tx.Bucket(bucketLeases).Put(u64(int64(id)), u64(int64(ttl)))
	})
	if err != nil {
		return 0, err
	}
	s.leases[id] = &lease{ttl: ttl, deadline: time.Now().Add(ttl)}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return id, nil
}

// Refresh implements store.Store.
func (s *Store) Refresh(ctx context.Context, id store.LeaseID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	l := s.leases[id]
	if l == nil {
		return fmt.Errorf("store lease %d: expired or revoked: %w", id, errdefs.ErrNotFound)
	}
	l.deadline = time.Now().Add(l.ttl)
	return nil
}

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, id store.LeaseID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.leases[id] == nil {
		return fmt.Errorf("store lease %d: expired or revoked: %w", id, errdefs.ErrNotFound)
	}
	return s.revokeLocked(id)
}

// revokeLocked deletes lease id and its keys. s.mu is held.
func (s *Store) revokeLocked(id store.LeaseID) error {
	_, err := s.writeLocked(func(tx *bbolt.Tx, rev int64) ([]store.Event, error) {
		var events []store.Event
		kvs := tx.Bucket(bucketKV)
		prefix := u64(int64(id))
		c := tx.Bucket(bucketLeaseKeys).Cursor()
		for k, _ := c.Seek(prefix); k != nil && string(k[:8]) == string(prefix); k, _ = c.Seek(prefix) {
			key := string(k[8:])
			if err := kvs.Delete([]byte(key)); err != nil {
				return nil, err
			}
			if err := c.Delete(); err != nil {
				return nil, err
			}
			events = append(events, store.Event{Type: store.EventDelete, KV: store.KeyValue{Key: key, ModRevision: rev}})
		}
		return events, tx.Bucket(bucketLeases).Delete(prefix)
	})
	if err == nil {
		delete(s.leases, id)
	}
	return err
}

// expireLoop revokes each lease when its deadline passes, until Close.
func (s *Store) expireLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := time.Hour
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		now := time.Now()
		for id, l := range s.leases {
			if wait := l.deadline.Sub(now); wait > 0 {
				next = min(next, wait)
			} else if err := s.revokeLocked(id); err != nil {
				slog.Warn("bolt store: expiring a lease", "lease", id, "err", err)
				next = min(next, time.Second)
			}
		}
		s.mu.Unlock()
		timer.Reset(next)
		select {
		case <-s.done:
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}
