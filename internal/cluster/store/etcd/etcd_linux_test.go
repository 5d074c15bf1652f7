package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/cluster/store/storetest"
	"github.com/berth-dev/berth/internal/errdefs"
)

// startEtcd runs a real etcd (Debian's etcd-server) on free loopback
// ports with a temporary data directory, both gone when the test ends,
// and returns its etcd:// URI.
func startEtcd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed (Debian: apt-get install etcd-server): skipping the etcd store tests")
	}
	dir := t.TempDir()
	client, peer := "http://"+freeAddr(t), "http://"+freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--name", "berth-test", "--data-dir", dir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "berth-test="+peer, "--logger", "zap", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test binary
	if err := cmd.Start(); err != nil {
		t.Skipf("etcd cannot start: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("etcd's log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(client + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "etcd://" + strings.TrimPrefix(client, "http://")
			}
		}
		select {
		case <-exited:
			t.Fatalf("etcd exited before it answered:\n%s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd did not answer on %s within a minute:\n%s", client, logs.String())
		}
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestStore(t *testing.T) {
	uri := startEtcd(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		// Each test gets a prefix of its own, as another berth cluster
		// sharing the etcd would.
		s, err := Open(context.Background(), uri, WithPrefix(fmt.Sprintf("/test%d/", n.Add(1))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestPrefixesIsolate(t *testing.T) {
	uri := startEtcd(t)
	ctx := context.Background()
	a, err := store.Open(ctx, uri+"/cluster-a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, uri, WithPrefix("/cluster-b/"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.Put(ctx, "/services/web", []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "/services/web", []byte("b"), 0); err != nil {
		t.Fatalf("the same key under another prefix: %v", err)
	}
	kvs, _, err := a.List(ctx, "")
	if err != nil || len(kvs) != 1 || string(kvs[0].Value) != "a" || kvs[0].Key != "/services/web" {
		t.Fatalf("cluster a sees %+v, %v", kvs, err)
	}
}

func TestClosed(t *testing.T) {
	uri := startEtcd(t)
	s, err := Open(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Get(context.Background(), "/k"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Get after Close: %v, want unavailable", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	_, err := Open(context.Background(), "etcd://"+freeAddr(t), WithDialTimeout(time.Second))
	if !errors.Is(err, errdefs.ErrUnavailable) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Open of a port where nothing listens: %v, want one line wrapping unavailable", err)
	}
}
