// Package storetest is the conformance suite of store.Store: every
// backend runs Run against a real instance of itself.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Compacter is implemented by backends whose history can be compacted on
// demand; Run tests the compacted-watch error with it.
type Compacter interface {
	Compact(ctx context.Context, rev int64) error
}

// wait bounds how long the suite waits for something that must happen
// (an event, a lease's expiry). It is a bound against hanging, not a
// measure: passing never depends on being quick.
const wait = 30 * time.Second

// Run runs the suite; open returns a new, empty store for each test (the
// backend closes it in t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"PutCompareAndSwap", testPutCAS},
		{"Delete", testDelete},
		{"ListPrefix", testList},
		{"Txn", testTxn},
		{"WatchOrder", testWatchOrder},
		{"WatchResume", testWatchResume},
		{"WatchCompacted", testWatchCompacted},
		{"WatchCancel", testWatchCancel},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseRevoke", testLeaseRevoke},
		{"ConcurrentWriters", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// checker fails its test on an error and returns the value beside it.
type checker struct{ *testing.T }

func (c checker) fail(err error) {
	c.Helper()
	if err != nil {
		c.Fatal(err)
	}
}

func (c checker) rev(r int64, err error) int64 { c.Helper(); c.fail(err); return r }

func (c checker) kv(kv store.KeyValue, err error) store.KeyValue { c.Helper(); c.fail(err); return kv }

func (c checker) list(kvs []store.KeyValue, rev int64, err error) ([]store.KeyValue, int64) {
	c.Helper()
	c.fail(err)
	return kvs, rev
}

func (c checker) watch(ch <-chan store.Event, err error) <-chan store.Event {
	c.Helper()
	c.fail(err)
	return ch
}

func (c checker) lease(id store.LeaseID, err error) store.LeaseID { c.Helper(); c.fail(err); return id }

func wantErr(t *testing.T, err, class error, what string) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Fatalf("%s: %v, want an error wrapping %q", what, err, class)
	}
}

func get(t *testing.T, s store.Store, key string) store.KeyValue {
	t.Helper()
	return checker{t}.kv(s.Get(context.Background(), key))
}

func testPutCAS(t *testing.T, s store.Store) {
	c := checker{t}
	ctx := context.Background()
	_, err := s.Get(ctx, "/k")
	wantErr(t, err, errdefs.ErrNotFound, "Get of a missing key")
	r1 := c.rev(s.Put(ctx, "/k", []byte("one"), 0))
	if r1 <= 0 {
		t.Fatalf("create returned revision %d", r1)
	}
	_, err = s.Put(ctx, "/k", []byte("again"), 0)
	wantErr(t, err, errdefs.ErrConflict, "create of an existing key")
	kv := get(t, s, "/k")
	if string(kv.Value) != "one" || kv.CreateRevision != r1 || kv.ModRevision != r1 || kv.Key != "/k" {
		t.Fatalf("after create: %+v, want one at %d", kv, r1)
	}
	r2 := c.rev(s.Put(ctx, "/k", []byte("two"), r1))
	if r2 <= r1 {
		t.Fatalf("update returned revision %d after %d", r2, r1)
	}
	_, err = s.Put(ctx, "/k", []byte("stale"), r1)
	wantErr(t, err, errdefs.ErrConflict, "update at a stale revision")
	kv = get(t, s, "/k")
	if string(kv.Value) != "two" || kv.CreateRevision != r1 || kv.ModRevision != r2 {
		t.Fatalf("after update: %+v, want two created at %d, changed at %d", kv, r1, r2)
	}
	r3 := c.rev(s.Put(ctx, "/k", nil, store.Any))
	if kv = get(t, s, "/k"); len(kv.Value) != 0 || kv.ModRevision != r3 {
		t.Fatalf("after unconditional put of nothing: %+v", kv)
	}
	_, err = s.Put(ctx, "/missing", []byte("x"), r3)
	wantErr(t, err, errdefs.ErrConflict, "update of a missing key")
	_, err = s.Put(ctx, "", []byte("x"), store.Any)
	wantErr(t, err, errdefs.ErrInvalidArgument, "put of an empty key")
}

func testDelete(t *testing.T, s store.Store) {
	c := checker{t}
	ctx := context.Background()
	_, err := s.Delete(ctx, "/d", store.Any)
	wantErr(t, err, errdefs.ErrNotFound, "delete of a missing key")
	r1 := c.rev(s.Put(ctx, "/d", []byte("1"), 0))
	r2 := c.rev(s.Put(ctx, "/d", []byte("2"), r1))
	_, err = s.Delete(ctx, "/d", r1)
	wantErr(t, err, errdefs.ErrConflict, "delete at a stale revision")
	get(t, s, "/d")
	r3 := c.rev(s.Delete(ctx, "/d", r2))
	if r3 <= r2 {
		t.Fatalf("delete returned revision %d after %d", r3, r2)
	}
	_, err = s.Get(ctx, "/d")
	wantErr(t, err, errdefs.ErrNotFound, "Get after delete")
	// A key created again starts a new life.
	r4 := c.rev(s.Put(ctx, "/d", []byte("3"), 0))
	if kv := get(t, s, "/d"); kv.CreateRevision != r4 {
		t.Fatalf("recreated key: %+v, want created at %d", kv, r4)
	}
	c.rev(s.Delete(ctx, "/d", store.Any))
}

func keys(kvs []store.KeyValue) []string {
	var ks []string
	for _, kv := range kvs {
		ks = append(ks, kv.Key)
	}
	return ks
}

func testList(t *testing.T, s store.Store) {
	c := checker{t}
	ctx := context.Background()
	var last int64
	for _, k := range []string{"/b/1", "/a/2", "/ab", "/a/1", "/a"} {
		last = c.rev(s.Put(ctx, k, []byte(k), 0))
	}
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"/a/", []string{"/a/1", "/a/2"}},
		{"/ab", []string{"/ab"}},
		{"/a", []string{"/a", "/a/1", "/a/2", "/ab"}},
		{"/c/", nil},
		{"", []string{"/a", "/a/1", "/a/2", "/ab", "/b/1"}},
	} {
		kvs, rev, err := s.List(ctx, tt.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keys(kvs), tt.want) || rev < last {
			t.Errorf("List(%q) = %v at %d, want %v at %d or later", tt.prefix, keys(kvs), rev, tt.want, last)
		}
		for _, kv := range kvs {
			if string(kv.Value) != kv.Key {
				t.Errorf("List(%q): %s has value %q", tt.prefix, kv.Key, kv.Value)
			}
		}
	}
}

func testTxn(t *testing.T, s store.Store) {
	c := checker{t}
	ctx := context.Background()
	r1 := c.rev(s.Txn(ctx, store.OpPut("/t/1", []byte("a"), 0), store.OpPut("/t/2", []byte("b"), 0)))
	if a, b := get(t, s, "/t/1"), get(t, s, "/t/2"); a.ModRevision != r1 || b.ModRevision != r1 {
		t.Fatalf("a transaction's writes at %d and %d, want both at %d", a.ModRevision, b.ModRevision, r1)
	}
	// One failed condition writes nothing.
	_, err := s.Txn(ctx, store.OpPut("/t/3", []byte("c"), 0), store.OpPut("/t/1", []byte("x"), 0))
	wantErr(t, err, errdefs.ErrConflict, "transaction with a failed create")
	_, err = s.Txn(ctx, store.OpPut("/t/3", []byte("c"), 0), store.OpDelete("/t/none", store.Any))
	wantErr(t, err, errdefs.ErrNotFound, "transaction deleting a missing key")
	if _, err := s.Get(ctx, "/t/3"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a failed transaction wrote /t/3: %v", err)
	}
	if kv := get(t, s, "/t/1"); string(kv.Value) != "a" {
		t.Fatalf("a failed transaction changed /t/1 to %q", kv.Value)
	}
	_, err = s.Txn(ctx, store.OpPut("/t/1", nil, store.Any), store.OpDelete("/t/1", store.Any))
	wantErr(t, err, errdefs.ErrInvalidArgument, "transaction writing one key twice")
	_, err = s.Txn(ctx)
	wantErr(t, err, errdefs.ErrInvalidArgument, "empty transaction")
	r2 := c.rev(s.Txn(ctx, store.OpDelete("/t/1", r1), store.OpPut("/t/2", []byte("B"), r1)))
	if _, err := s.Get(ctx, "/t/1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("/t/1 after its delete: %v", err)
	}
	if kv := get(t, s, "/t/2"); string(kv.Value) != "B" || kv.ModRevision != r2 {
		t.Fatalf("/t/2 after the transaction: %+v", kv)
	}
}

// next returns the next event of ch, failing the test if none comes.
func next(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed early")
		}
		if ev.Err != nil {
			t.Fatalf("watch failed: %v", ev.Err)
		}
		return ev
	case <-time.After(wait):
		t.Fatalf("no watch event within %s", wait)
	}
	panic("unreachable")
}

type change struct {
	typ store.EventType
	key string
	val string
	rev int64
}

func (c change) String() string { return fmt.Sprintf("%s %s=%q@%d", c.typ, c.key, c.val, c.rev) }

func expect(t *testing.T, ch <-chan store.Event, want []change) {
	t.Helper()
	for i, w := range want {
		ev := next(t, ch)
		got := change{ev.Type, ev.KV.Key, string(ev.KV.Value), ev.KV.ModRevision}
		if got != w {
			t.Fatalf("event %d: %v, want %v", i, got, w)
		}
	}
}

func testWatchOrder(t *testing.T, s store.Store) {
	c := checker{t}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, rev := c.list(s.List(ctx, "/w/"))
	ch := c.watch(s.Watch(ctx, "/w/", rev))
	r1 := c.rev(s.Put(ctx, "/w/a", []byte("1"), 0))
	c.rev(s.Put(ctx, "/wx", []byte("outside"), 0))
	r2 := c.rev(s.Put(ctx, "/w/b", []byte("2"), 0))
	r3 := c.rev(s.Put(ctx, "/w/a", []byte("3"), r1))
	r4 := c.rev(s.Delete(ctx, "/w/b", r2))
	r5 := c.rev(s.Txn(ctx, store.OpPut("/w/c", []byte("5"), 0), store.OpDelete("/w/a", r3)))
	expect(t, ch, []change{
		{store.EventPut, "/w/a", "1", r1},
		{store.EventPut, "/w/b", "2", r2},
		{store.EventPut, "/w/a", "3", r3},
		{store.EventDelete, "/w/b", "", r4},
		{store.EventPut, "/w/c", "5", r5},
		{store.EventDelete, "/w/a", "", r5},
	})
	// A watch from now on sees only what comes after it.
	now := c.watch(s.Watch(ctx, "/w/", 0))
	r6 := c.rev(s.Put(ctx, "/w/d", []byte("6"), 0))
	expect(t, now, []change{{store.EventPut, "/w/d", "6", r6}})
	expect(t, ch, []change{{store.EventPut, "/w/d", "6", r6}})
}

func testWatchResume(t *testing.T, s store.Store) {
	c := checker{t}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var revs []int64
	for i := range 5 {
		revs = append(revs, c.rev(s.Put(ctx, fmt.Sprintf("/r/%d", i), []byte{byte('a' + i)}, 0)))
	}
	ch := c.watch(s.Watch(ctx, "/r/", revs[1]))
	live := c.rev(s.Delete(ctx, "/r/0", store.Any))
	expect(t, ch, []change{
		{store.EventPut, "/r/2", "c", revs[2]},
		{store.EventPut, "/r/3", "d", revs[3]},
		{store.EventPut, "/r/4", "e", revs[4]},
		{store.EventDelete, "/r/0", "", live},
	})
}

func testWatchCompacted(t *testing.T, s store.Store) {
	c := checker{t}
	compacter, ok := s.(Compacter)
	if !ok {
		t.Skip("the backend cannot compact on demand")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := c.rev(s.Put(ctx, "/c/1", []byte("1"), 0))
	c.rev(s.Put(ctx, "/c/2", []byte("2"), 0))
	last := c.rev(s.Put(ctx, "/c/3", []byte("3"), 0))
	if err := compacter.Compact(ctx, last); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, "/c/", first)
	if err == nil {
		select {
		case ev, ok := <-ch:
			if !ok || ev.Err == nil {
				t.Fatalf("watch from a compacted revision gave %+v (open %v), want an error", ev, ok)
			}
			err = ev.Err
			if _, ok := <-ch; ok {
				t.Fatal("watch went on after its error")
			}
		case <-time.After(wait):
			t.Fatal("watch from a compacted revision neither failed nor ended")
		}
	}
	wantErr(t, err, store.ErrCompacted, "watch from a compacted revision")
	// Listing again and watching from the list's revision works.
	kvs, rev := c.list(s.List(ctx, "/c/"))
	ch = c.watch(s.Watch(ctx, "/c/", rev))
	r := c.rev(s.Put(ctx, "/c/4", []byte("4"), 0))
	expect(t, ch, []change{{store.EventPut, "/c/4", "4", r}})
	if len(kvs) != 3 {
		t.Fatalf("list after compaction: %v", keys(kvs))
	}
}

func testWatchCancel(t *testing.T, s store.Store) {
	c := checker{t}
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.watch(s.Watch(ctx, "/x/", 0))
	cancel()
	deadline := time.After(wait)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel still open after its context was cancelled")
		}
	}
}

func testLeaseExpiry(t *testing.T, s store.Store) {
	c := checker{t}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Long enough for the writes below on a busy machine; the test waits
	// for the expiry itself, however long it takes.
	id := c.lease(s.Grant(ctx, 3*time.Second))
	if err := s.Refresh(ctx, id); err != nil {
		t.Fatalf("refresh of a live lease: %v", err)
	}
	r1 := c.rev(s.Put(ctx, "/l/held", []byte("1"), 0, store.WithLease(id)))
	c.rev(s.Put(ctx, "/l/moved", []byte("1"), 0, store.WithLease(id)))
	c.rev(s.Put(ctx, "/l/moved", []byte("2"), store.Any)) // detached
	c.rev(s.Put(ctx, "/l/free", []byte("1"), 0))
	if kv := get(t, s, "/l/held"); kv.Lease != id {
		t.Fatalf("leased key: lease %d, want %d", kv.Lease, id)
	}
	ch := c.watch(s.Watch(ctx, "/l/", r1))
	// After the three puts, the expiry deletes the key still attached.
	ev := next(t, ch)
	for ; ev.Type == store.EventPut && ev.KV.Key != "/l/held"; ev = next(t, ch) {
	}
	if ev.Type != store.EventDelete || ev.KV.Key != "/l/held" {
		t.Fatalf("event %s %s, want the delete of /l/held", ev.Type, ev.KV.Key)
	}
	if _, err := s.Get(ctx, "/l/held"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("key of an expired lease: %v", err)
	}
	get(t, s, "/l/moved")
	get(t, s, "/l/free")
	wantErr(t, s.Refresh(ctx, id), errdefs.ErrNotFound, "refresh of an expired lease")
	_, err := s.Put(ctx, "/l/late", nil, 0, store.WithLease(id))
	wantErr(t, err, errdefs.ErrNotFound, "put with an expired lease")
}

func testLeaseRevoke(t *testing.T, s store.Store) {
	c := checker{t}
	ctx := context.Background()
	id := c.lease(s.Grant(ctx, time.Hour))
	c.rev(s.Put(ctx, "/v/1", nil, 0, store.WithLease(id)))
	c.rev(s.Put(ctx, "/v/2", nil, 0, store.WithLease(id)))
	if err := s.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if kvs, _ := c.list(s.List(ctx, "/v/")); len(kvs) != 0 {
		t.Fatalf("keys of a revoked lease remain: %v", keys(kvs))
	}
	wantErr(t, s.Revoke(ctx, id), errdefs.ErrNotFound, "revoke of a revoked lease")
	_, err := s.Grant(ctx, 0)
	wantErr(t, err, errdefs.ErrInvalidArgument, "grant of a zero ttl")
}

func testConcurrent(t *testing.T, s store.Store) {
	c := checker{t}
	const writers, increments = 8, 25
	ctx := context.Background()
	c.rev(s.Put(ctx, "/counter", []byte("0"), 0))
	var (
		mu   sync.Mutex
		revs []int64
		wg   sync.WaitGroup
		errs = make(chan error, writers)
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < increments; {
				kv, err := s.Get(ctx, "/counter")
				if err != nil {
					errs <- err
					return
				}
				var n int
				fmt.Sscan(string(kv.Value), &n)
				rev, err := s.Put(ctx, "/counter", []byte(fmt.Sprint(n+1)), kv.ModRevision)
				if errors.Is(err, errdefs.ErrConflict) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				revs = append(revs, rev)
				mu.Unlock()
				done++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if kv := get(t, s, "/counter"); string(kv.Value) != fmt.Sprint(writers*increments) {
		t.Fatalf("counter %s, want %d", kv.Value, writers*increments)
	}
	slices.Sort(revs)
	if len(slices.Compact(revs)) != writers*increments {
		t.Fatalf("%d distinct revisions for %d increments", len(slices.Compact(revs)), writers*increments)
	}
}
