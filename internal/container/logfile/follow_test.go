package logfile

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// follower runs Read with Follow in the background and collects what it
// delivers.
type follower struct {
	mu    sync.Mutex
	lines []string
	done  chan error
}

func follow(ctx context.Context, path string, o ReadOptions) *follower {
	f := &follower{done: make(chan error, 1)}
	o.Follow = true
	go func() {
		f.done <- Read(ctx, path, o, func(e Entry) error {
			f.mu.Lock()
			f.lines = append(f.lines, string(e.Line))
			f.mu.Unlock()
			return nil
		})
	}()
	return f
}

func (f *follower) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

// waitFor waits until the follower has seen n entries.
func (f *follower) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(f.seen()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("follower saw %d entries after 10s, want %d", len(f.seen()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wait waits for Read to return.
func (f *follower) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-f.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return")
		return nil
	}
}

// check compares what the follower saw with want, entry by entry.
func (f *follower) check(t *testing.T, want []string) {
	t.Helper()
	got := f.seen()
	for i := range max(len(got), len(want)) {
		if i >= len(got) || i >= len(want) || got[i] != want[i] {
			t.Fatalf("follower saw %d entries, want %d; first difference at %d", len(got), len(want), i)
		}
	}
}

func TestFollowSeesNewEntriesAndStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := newWriter(t, path, 0, 1)
	s := w.Stream("stdout")
	mustWrite(t, s, "0\n1\n")
	var exited atomic.Bool
	f := follow(context.Background(), path, ReadOptions{Tail: 1, Stop: exited.Load})
	f.waitFor(t, 1)
	mustWrite(t, s, "2\n")
	f.waitFor(t, 2)
	mustWrite(t, s, "3\n4")
	// The writer exits: the held partial line is flushed by Close, and
	// the reader must still deliver it after Stop turns true.
	w.Close()
	exited.Store(true)
	if err := f.wait(t); err != nil {
		t.Fatalf("Read: %v", err)
	}
	f.check(t, []string{"1\n", "2\n", "3\n", "4"})
}

func TestFollowStopsAtContextEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	newWriter(t, path, 0, 1)
	ctx, cancel := context.WithCancel(context.Background())
	f := follow(ctx, path, ReadOptions{Tail: -1})
	time.Sleep(2 * pollInterval)
	cancel()
	if err := f.wait(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Read returned %v, want context.Canceled", err)
	}
}

func TestFollowStopsAfterUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := newWriter(t, path, 0, 1)
	mustWrite(t, w.Stream("stdout"), "before\n")
	f := follow(context.Background(), path, ReadOptions{Tail: -1, Until: time.Now().Add(300 * time.Millisecond)})
	f.waitFor(t, 1)
	if err := f.wait(t); err != nil {
		t.Fatalf("Read: %v", err)
	}
	mustWrite(t, w.Stream("stdout"), "after\n")
	f.check(t, []string{"before\n"})
}

func TestFollowWaitsForLogToAppear(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var exited atomic.Bool
	f := follow(context.Background(), path, ReadOptions{Tail: -1, Stop: exited.Load})
	time.Sleep(2 * pollInterval)
	w := newWriter(t, path, 0, 1)
	mustWrite(t, w.Stream("stderr"), "first\n")
	f.waitFor(t, 1)
	w.Close()
	exited.Store(true)
	if err := f.wait(t); err != nil {
		t.Fatal(err)
	}
	f.check(t, []string{"first\n"})
}

func TestFollowSkipsCutLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeFile(t, path, raw(t, t0, "stdout", "ok\n"), `{"log":"cut`)
	var exited atomic.Bool
	exited.Store(true) // the monitor was killed
	f := follow(context.Background(), path, ReadOptions{Tail: -1, Stop: exited.Load})
	if err := f.wait(t); err != nil {
		t.Fatal(err)
	}
	f.check(t, []string{"ok\n"})
}

// TestFollowAcrossRotation follows a log while it rotates, the writer
// waiting for the follower every few entries so that it never falls more
// than max-file-1 rotations behind; nothing may be lost or repeated.
func TestFollowAcrossRotation(t *testing.T) {
	for _, maxFiles := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("max-file=", maxFiles), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			w := newWriter(t, path, 600, maxFiles) // about 8 entries a file
			s := w.Stream("stdout")
			var exited atomic.Bool
			f := follow(context.Background(), path, ReadOptions{Tail: -1, Stop: exited.Load})
			var want []string
			for i := range 120 {
				line := fmt.Sprintf("entry %04d\n", i)
				want = append(want, line)
				mustWrite(t, s, line)
				if i%6 == 5 {
					f.waitFor(t, i+1)
				}
			}
			w.Close()
			exited.Store(true)
			if err := f.wait(t); err != nil {
				t.Fatal(err)
			}
			f.check(t, want)
		})
	}
}

// TestFollowFastRotation lets the writer rotate as fast as it can while a
// follower that started in the middle of it polls; with enough files kept
// the follower must still see every entry exactly once, in order.
func TestFollowFastRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	const n = 3000
	w := newWriter(t, path, 1000, 300) // about 13 entries a file, none removed
	s := w.Stream("stdout")
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("entry %05d\n", i))
	}
	for _, l := range want[:n/10] {
		mustWrite(t, s, l)
	}
	var exited atomic.Bool
	f := follow(context.Background(), path, ReadOptions{Tail: -1, Stop: exited.Load})
	for i, l := range want[n/10:] {
		mustWrite(t, s, l)
		if i%500 == 0 {
			time.Sleep(pollInterval / 3) // let the follower catch up now and then
		}
	}
	w.Close()
	exited.Store(true)
	if err := f.wait(t); err != nil {
		t.Fatal(err)
	}
	f.check(t, want)
}
