package bolt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/cluster/store/storetest"
	"github.com/berth-dev/berth/internal/errdefs"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestParseURI(t *testing.T) {
	for _, tt := range []struct{ uri, want, err string }{
		{"/var/lib/berth/state.db", "/var/lib/berth/state.db", ""},
		{"state.db", "state.db", ""},
		{"bolt:///var/lib/berth/state.db", "/var/lib/berth/state.db", ""},
		{"bolt://host/state.db", "", "three slashes"},
		{"bolt://", "", "want bolt:///ABSOLUTE/PATH"},
		{"bolt:///a?x=1", "", "three slashes"},
		{"etcd://h:1", "", "scheme must be bolt"},
		{"", "", "empty path"},
	} {
		got, err := ParseURI(tt.uri)
		if tt.err == "" && (err != nil || got != tt.want) || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, errdefs.ErrInvalidArgument)) {
			t.Errorf("ParseURI(%q) = %q, %v; want %q, error with %q", tt.uri, got, err, tt.want, tt.err)
		}
	}
}

func TestOpenURI(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := store.Open(ctx, "bolt://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*Store); !ok {
		t.Fatalf("store.Open(bolt://…) opened a %T", s)
	}
	for _, uri := range []string{"", "nosuch://x", "bolt://relative"} {
		if _, err := store.Open(ctx, uri); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("store.Open(%q): %v, want an invalid-argument error", uri, err)
		}
	}
}

func TestSecondOpenerRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want in use / unavailable", err)
	}
}

func TestLeaseSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Grant(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "/n/1", []byte("x"), 0, store.WithLease(id)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Refresh(ctx, id); err != nil {
		t.Fatalf("refresh after reopen: %v", err)
	}
	if kv, err := s.Get(ctx, "/n/1"); err != nil || kv.Lease != id {
		t.Fatalf("leased key after reopen: %+v, %v", kv, err)
	}
	if err := s.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "/n/1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("key of a revoked lease after reopen: %v", err)
	}
	next, err := s.Grant(ctx, time.Hour)
	if err != nil || next <= id {
		t.Fatalf("lease granted after reopen: %d, %v; want above %d", next, err, id)
	}
}

func TestBoundedHistory(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), WithHistory(3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var revs []int64
	for i := range 6 {
		rev, err := s.Put(ctx, fmt.Sprintf("/h/%d", i), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}
	// The log keeps the last three revisions: a watch may resume after
	// revs[2], not after revs[1].
	if _, err := s.Watch(ctx, "/h/", revs[1]); !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("watch from before the history: %v, want ErrCompacted", err)
	}
	ch, err := s.Watch(ctx, "/h/", revs[2])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range revs[3:] {
		if ev := <-ch; ev.Err != nil || ev.KV.ModRevision != want {
			t.Fatalf("resumed watch: %+v, want revision %d", ev, want)
		}
	}
	// A receiver that reads nothing while more than the history happens
	// is told to list again rather than holding writers back.
	slow, err := s.Watch(ctx, "/h/", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.Put(ctx, fmt.Sprintf("/h/more/%d", i), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	var last store.Event
	for ev := range slow {
		last = ev
	}
	if !errors.Is(last.Err, store.ErrCompacted) {
		t.Fatalf("slow watcher's last event: %+v, want ErrCompacted", last)
	}
}

// TestKillNine writes from a child process, kills it with SIGKILL and
// checks that every write the child saw acknowledged is there and that the
// revision counter did not go back.
func TestKillNine(t *testing.T) {
	if path := os.Getenv("BERTH_BOLT_CRASH_DB"); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "state.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillNine$")
	cmd.Env = append(os.Environ(), "BERTH_BOLT_CRASH_DB="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int64{}
	var last int64
	lines := bufio.NewScanner(out)
	for lines.Scan() && len(acked) < 300 {
		var key string
		var rev int64
		if _, err := fmt.Sscan(lines.Text(), &key, &rev); err != nil {
			continue
		}
		acked[key], last = rev, rev
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("the child acknowledged only %d writes", len(acked))
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	for key, rev := range acked {
		kv, err := s.Get(ctx, key)
		if err != nil || kv.ModRevision != rev {
			t.Fatalf("acknowledged %s at %d, after kill -9: %+v, %v", key, rev, kv, err)
		}
	}
	_, rev, err := s.List(ctx, "")
	if err != nil || rev < last {
		t.Fatalf("revision after kill -9: %d, %v; the child had reached %d", rev, err, last)
	}
	if next, err := s.Put(ctx, "/after", nil, 0); err != nil || next <= rev {
		t.Fatalf("write after kill -9 at %d, %v; want above %d", next, err, rev)
	}
}

// crashChild writes keys with a lease and a watch running until it is
// killed, printing each acknowledged write.
func crashChild(path string) {
	s, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	id, _ := s.Grant(ctx, time.Hour)
	if _, err := s.Watch(ctx, "/", 0); err != nil {
		os.Exit(1)
	}
	for i := 0; ; i++ {
		key := fmt.Sprintf("/crash/%d", i)
		rev, err := s.Txn(ctx, store.OpPut(key, []byte(key), 0, store.WithLease(id)), store.OpPut("/crash/last", []byte(key), store.Any))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(key, rev)
	}
}

func TestWatchFromFutureRevision(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch, err := s.Watch(ctx, "/f/", 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Put(ctx, fmt.Sprintf("/f/%d", i), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	if ev := <-ch; ev.KV.ModRevision != 3 || ev.KV.Key != "/f/2" {
		t.Fatalf("watch from revision 2: first event %+v, want /f/2 at 3", ev)
	}
}
