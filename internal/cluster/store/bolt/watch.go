package bolt

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
	bbolt "go.etcd.io/bbolt"
)

// watcher queues the events of one Watch between the writers, which never
// wait for it, and its receiver.
type watcher struct {
	prefix string
	after  int64 // the revision the watch starts after
	limit  int   // queued events beyond which the receiver is too far behind

	mu     sync.Mutex
	queue  []store.Event
	err    error
	signal chan struct{} // capacity 1: the queue or err changed
}

// push queues the events under w's prefix.
func (w *watcher) push(events []store.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	n := len(w.queue)
	for _, ev := range events {
		if ev.KV.ModRevision > w.after && strings.HasPrefix(ev.KV.Key, w.prefix) {
			w.queue = append(w.queue, ev)
		}
	}
	if len(w.queue) == n {
		return
	}
	if len(w.queue) > w.limit {
		w.err = fmt.Errorf("watch of %q fell more than %d events behind: %w", w.prefix, w.limit, store.ErrCompacted)
		w.queue = nil
	}
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// Watch implements store.Store.
func (s *Store) Watch(ctx context.Context, prefix string, from int64) (<-chan store.Event, error) {
	if from < 0 {
		return nil, fmt.Errorf("store watch from revision %d: %w", from, errdefs.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, errClosed
	case from > 0 && from < s.compact:
		return nil, fmt.Errorf("store watch from revision %d: history starts after %d: %w", from, s.compact, store.ErrCompacted)
	}
	w := &watcher{prefix: prefix, after: from, signal: make(chan struct{}, 1)}
	if from > 0 && from < s.rev {
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketLog).Cursor()
			for k, v := c.Seek(logKey(from+1, 0)); k != nil; k, v = c.Next() {
				if ev := decodeEvent(v); strings.HasPrefix(ev.KV.Key, prefix) {
					w.queue = append(w.queue, ev)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	w.limit = len(w.queue) + int(s.history)
	s.watchers[w] = struct{}{}
	out := make(chan store.Event)
	s.wg.Add(1)
	go s.serve(ctx, w, out)
	return out, nil
}

// serve delivers w's events on out until ctx is done, the store closes or
// the watcher fails.
func (s *Store) serve(ctx context.Context, w *watcher, out chan<- store.Event) {
	defer s.wg.Done()
	defer close(out)
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	}()
	send := func(ev store.Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
		case <-s.done:
		}
		return false
	}
	for {
		w.mu.Lock()
		batch, err := w.queue, w.err
		w.queue = nil
		w.mu.Unlock()
		for _, ev := range batch {
			if !send(ev) {
				return
			}
		}
		if err != nil {
			send(store.Event{Err: err})
			return
		}
		select {
		case <-w.signal:
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}
