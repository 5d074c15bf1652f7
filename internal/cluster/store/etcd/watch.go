package etcd

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Watch implements store.Store with an etcd watch that requires a leader
// (so a partitioned member ends it rather than going quiet) and waits for
// etcd to confirm it before returning.
func (s *Store) Watch(ctx context.Context, prefix string, from int64) (<-chan store.Event, error) {
	if from < 0 {
		return nil, fmt.Errorf("store watch from revision %d: %w", from, errdefs.ErrInvalidArgument)
	}
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithCreatedNotify()}
	if from > 0 {
		opts = append(opts, clientv3.WithRev(from+1))
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.watcher.Watch(wctx, prefix, opts...)
	var first clientv3.WatchResponse
	select {
	case resp, ok := <-wch:
		if !ok {
			cancel()
			return nil, s.fail(ctx, fmt.Errorf("watch closed at once"))
		}
		if err := s.watchErr(resp); err != nil {
			cancel()
			return nil, err
		}
		first = resp
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	out := make(chan store.Event)
	go func() {
		defer close(out)
		defer cancel()
		send := func(ev store.Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for resp, ok := first, true; ok; resp, ok = <-wch {
			if err := s.watchErr(resp); err != nil {
				if ctx.Err() == nil {
					send(store.Event{Err: err})
				}
				return
			}
			for _, ev := range resp.Events {
				e := store.Event{Type: store.EventPut, KV: keyValue(ev.Kv)}
				if ev.Type == clientv3.EventTypeDelete {
					e = store.Event{Type: store.EventDelete, KV: store.KeyValue{Key: string(ev.Kv.Key), ModRevision: ev.Kv.ModRevision}}
				}
				if !send(e) {
					return
				}
			}
		}
	}()
	return out, nil
}

// watchErr returns why a watch response ended the watch, if it did.
func (s *Store) watchErr(resp clientv3.WatchResponse) error {
	if resp.CompactRevision != 0 {
		return fmt.Errorf("store watch: etcd compacted up to revision %d: %w", resp.CompactRevision, store.ErrCompacted)
	}
	if err := resp.Err(); err != nil {
		return s.fail(context.Background(), err)
	}
	if resp.Canceled {
		return s.fail(context.Background(), fmt.Errorf("watch cancelled by etcd"))
	}
	return nil
}
