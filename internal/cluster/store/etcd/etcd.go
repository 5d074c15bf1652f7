// Package etcd is the store.Store of a cluster of machines: keys in an
// etcd cluster (v3 API), under a key prefix so that several berth
// clusters can share one etcd.
//
// Revisions, compare-and-swap, watches and leases are etcd's own, so
// revisions are those of the whole etcd cluster: they grow with other
// users' writes too, and nothing may assume they are consecutive. Lease
// ttls are whole seconds, rounded up, and at least the server's minimum.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"
	"go.uber.org/zap"
)

func init() {
	store.Register("etcd", func(ctx context.Context, uri string) (store.Store, error) {
		return Open(ctx, uri)
	})
}

// DefaultPrefix is the key prefix of a URI without a path.
const DefaultPrefix = "/berth/"

// ParseURI returns the client URLs and the key prefix of
// "etcd://HOST:PORT[,HOST:PORT…][/PREFIX]"; the prefix defaults to
// DefaultPrefix and always begins and ends with "/".
func ParseURI(uri string) (endpoints []string, prefix string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("etcd store %q: %s (want etcd://HOST:PORT[,HOST:PORT…][/PREFIX]): %w", uri, why, errdefs.ErrInvalidArgument)
	}
	rest, ok := strings.CutPrefix(uri, "etcd://")
	if !ok {
		return nil, "", bad("scheme must be etcd")
	}
	hosts, path, _ := strings.Cut(rest, "/")
	if hosts == "" {
		return nil, "", bad("no host")
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || port == "" {
			return nil, "", bad(fmt.Sprintf("%q is not HOST:PORT", h))
		}
		endpoints = append(endpoints, "http://"+h)
	}
	if strings.ContainsAny(path, "?#") {
		return nil, "", bad("no query or fragment")
	}
	prefix = DefaultPrefix
	if path = strings.Trim(path, "/"); path != "" {
		prefix = "/" + path + "/"
	}
	return endpoints, prefix, nil
}

// Option modifies Open.
type Option func(*options)

type options struct {
	prefix      string
	dialTimeout time.Duration
}

// WithPrefix puts the store's keys under prefix instead of the URI's.
func WithPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

// WithDialTimeout bounds how long Open waits for etcd to answer (default
// 5s).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// Store is a store.Store on etcd.
type Store struct {
	cli     *clientv3.Client
	kv      clientv3.KV
	watcher clientv3.Watcher
	where   string // the endpoints and prefix, for errors
}

var _ store.Store = (*Store)(nil)

// Open connects to the etcd cluster that uri names and checks that it
// answers; ctx bounds only that check, not the store's life.
func Open(ctx context.Context, uri string, opts ...Option) (*Store, error) {
	endpoints, prefix, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	o := options{prefix: prefix, dialTimeout: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	where := strings.Join(endpoints, ",") + " " + o.prefix
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: o.dialTimeout, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd store %s: %v: %w", where, err, errdefs.ErrUnavailable)
	}
	s := &Store{cli: cli, kv: namespace.NewKV(cli.KV, o.prefix), watcher: namespace.NewWatcher(cli.Watcher, o.prefix), where: where}
	check, cancel := context.WithTimeout(ctx, o.dialTimeout)
	defer cancel()
	if _, err := s.kv.Get(check, "/", clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd store %s: not answering: %v: %w", where, err, errdefs.ErrUnavailable)
	}
	return s, nil
}

// Close implements store.Store.
func (s *Store) Close() error { return s.cli.Close() }

// fail turns an etcd client error into one of berth's classes.
func (s *Store) fail(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return fmt.Errorf("store lease: expired or revoked: %w", errdefs.ErrNotFound)
	case errors.Is(err, rpctypes.ErrTooManyOps), errors.Is(err, rpctypes.ErrDuplicateKey), errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("etcd store %s: %v: %w", s.where, err, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("etcd store %s: %v: %w", s.where, err, errdefs.ErrUnavailable)
}

func keyValue(kv *mvccpb.KeyValue) store.KeyValue {
	return store.KeyValue{Key: string(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision,
		ModRevision: kv.ModRevision, Lease: store.LeaseID(kv.Lease)}
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.KeyValue, error) {
	if key == "" {
		return store.KeyValue{}, fmt.Errorf("store key: empty: %w", errdefs.ErrInvalidArgument)
	}
	resp, err := s.kv.Get(ctx, key)
	if err != nil {
		return store.KeyValue{}, s.fail(ctx, err)
	}
	if len(resp.Kvs) == 0 {
		return store.KeyValue{}, fmt.Errorf("store key %q: %w", key, errdefs.ErrNotFound)
	}
	return keyValue(resp.Kvs[0]), nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]store.KeyValue, int64, error) {
	resp, err := s.kv.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, s.fail(ctx, err)
	}
	kvs := make([]store.KeyValue, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		kvs = append(kvs, keyValue(kv))
	}
	return kvs, resp.Header.Revision, nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, rev int64, opts ...store.PutOption) (int64, error) {
	return s.Txn(ctx, store.OpPut(key, value, rev, opts...))
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, rev int64) (int64, error) {
	return s.Txn(ctx, store.OpDelete(key, rev))
}

// Txn implements store.Store as one etcd transaction: the conditions are
// its comparisons, the writes its success branch, and its failure branch
// reads the keys back so that the error can name the one that failed.
func (s *Store) Txn(ctx context.Context, ops ...store.Op) (int64, error) {
	if err := store.CheckOps(ops); err != nil {
		return 0, err
	}
	var cmps []clientv3.Cmp
	thens, elses := make([]clientv3.Op, len(ops)), make([]clientv3.Op, len(ops))
	for i, op := range ops {
		switch {
		case op.Revision == 0:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(op.Key), "=", 0))
		case op.Revision > 0:
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(op.Key), "=", op.Revision))
		case op.Delete: // unconditional, but the key must exist
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(op.Key), ">", 0))
		}
		if op.Delete {
			thens[i] = clientv3.OpDelete(op.Key)
		} else {
			thens[i] = clientv3.OpPut(op.Key, string(op.Value), clientv3.WithLease(clientv3.LeaseID(op.Lease)))
		}
		elses[i] = clientv3.OpGet(op.Key)
	}
	resp, err := s.kv.Txn(ctx).If(cmps...).Then(thens...).Else(elses...).Commit()
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	for i, r := range resp.Responses {
		var cur *store.KeyValue
		if kvs := r.GetResponseRange().GetKvs(); len(kvs) > 0 {
			kv := keyValue(kvs[0])
			cur = &kv
		}
		if err := store.Check(ops[i], cur); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("store transaction on %q…: %w", ops[0].Key, errdefs.ErrConflict)
}

// Compact drops the history up to rev — of the whole etcd cluster, all
// prefixes alike; watches from before rev then get store.ErrCompacted.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	_, err := s.kv.Compact(ctx, rev)
	if errors.Is(err, rpctypes.ErrCompacted) {
		return nil
	}
	if errors.Is(err, rpctypes.ErrFutureRev) {
		return fmt.Errorf("store compact to revision %d: beyond the store's: %w", rev, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return s.fail(ctx, err)
	}
	return nil
}

// Grant implements store.Store.
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (store.LeaseID, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("store lease ttl %s: must be positive: %w", ttl, errdefs.ErrInvalidArgument)
	}
	resp, err := s.cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	return store.LeaseID(resp.ID), nil
}

// Refresh implements store.Store.
func (s *Store) Refresh(ctx context.Context, id store.LeaseID) error {
	if _, err := s.cli.KeepAliveOnce(ctx, clientv3.LeaseID(id)); err != nil {
		return s.fail(ctx, err)
	}
	return nil
}

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, id store.LeaseID) error {
	if _, err := s.cli.Revoke(ctx, clientv3.LeaseID(id)); err != nil {
		return s.fail(ctx, err)
	}
	return nil
}
