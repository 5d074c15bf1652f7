package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// fakeService stands for the network package and Publish: the service
// "web" the activator looks up, its backends, and the signal of a change.
type fakeService struct {
	mu       sync.Mutex
	missing  bool
	port     uint16 // the backends' TargetPort
	backends []netip.Addr
	ch       chan struct{}
	wakes    chan string
}

func newFakeService(port uint16, backends ...netip.Addr) *fakeService {
	return &fakeService{port: port, backends: backends, ch: make(chan struct{}), wakes: make(chan string, 16)}
}

func (f *fakeService) lookup(_ context.Context, dst netip.AddrPort) (*network.Target, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.missing {
		return nil, fmt.Errorf("service at %s: %w", dst, errdefs.ErrNotFound)
	}
	return &network.Target{Service: network.Service{Name: "web", Network: "default"},
		Port: network.ServicePort{Protocol: "tcp", Port: 80, TargetPort: f.port}, Backends: slices.Clone(f.backends)}, nil
}

func (f *fakeService) changed(string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ch
}

// publish gives the service backends and signals the change, as Publish.
func (f *fakeService) publish(backends ...netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backends = backends
	close(f.ch)
	f.ch = make(chan struct{})
}

func (f *fakeService) wake(service string) {
	select {
	case f.wakes <- service:
	default:
	}
}

// startTestActivator starts an activator on 127.0.0.1 over f, closed at
// the end of the test. A connection's original destination is its own.
func startTestActivator(t *testing.T, f *fakeService, timeout, poll time.Duration) *activator {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	act := &activator{ln: ln, log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), wake: f.wake,
		lookup: f.lookup, changed: f.changed, timeout: timeout, poll: poll,
		origDst: func(c *net.TCPConn) (netip.AddrPort, error) { return c.LocalAddr().(*net.TCPAddr).AddrPort(), nil }}
	act.start()
	t.Cleanup(act.close)
	return act
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// backend starts a TCP server on 127.0.0.1 that runs serve on each
// connection and closes it after; it returns its address and port.
func backend(t *testing.T, serve func(*net.TCPConn)) (netip.Addr, uint16) {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	return ap.Addr(), ap.Port()
}

// echo sends back what it reads, then ends its side.
func echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

func dialActivator(t *testing.T, act *activator) *net.TCPConn {
	t.Helper()
	c, err := net.DialTCP("tcp4", nil, act.ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func awaitWake(t *testing.T, f *fakeService) {
	t.Helper()
	select {
	case s := <-f.wakes:
		if s != "web" {
			t.Fatalf("woke %q, want web", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the service was not woken")
	}
}

// readAll reads c to its end within d.
func readAll(t *testing.T, c *net.TCPConn, d time.Duration) (string, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestActivatorHoldsUntilPublished(t *testing.T) {
	addr, port := backend(t, echo)
	f := newFakeService(port)
	// Polling never comes in time: only Publish's signal lets it through.
	act := startTestActivator(t, f, 10*time.Second, time.Hour)
	c := dialActivator(t, act)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	awaitWake(t, f)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v before the service had a backend; want it held", n, err)
	}

	// While it waits, it wakes the service again and again.
	awaitWake(t, f)
	f.publish(addr)
	got, err := readAll(t, c, 5*time.Second)
	if err != nil || got != "ping" {
		t.Fatalf("read %q, %v; want the echo of ping", got, err)
	}
	for len(f.wakes) > 0 {
		<-f.wakes
	}
	time.Sleep(2 * activatorRewake)
	select {
	case s := <-f.wakes:
		t.Errorf("woke %s again once the connection was served", s)
	default:
	}
}

func TestActivatorHalfClose(t *testing.T) {
	// The backend speaks first and ends its side; the client still sends
	// after that.
	got := make(chan string, 1)
	addr, port := backend(t, func(c *net.TCPConn) {
		c.Write([]byte("hello"))
		c.CloseWrite()
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	f := newFakeService(port, addr)
	act := startTestActivator(t, f, 10*time.Second, activatorPoll)
	c := dialActivator(t, act)
	if s, err := readAll(t, c, 5*time.Second); err != nil || s != "hello" {
		t.Fatalf("read %q, %v; want hello and the backend's end", s, err)
	}
	if _, err := c.Write([]byte("bye")); err != nil {
		t.Fatalf("writing after the backend ended its side: %v", err)
	}
	c.CloseWrite()
	select {
	case s := <-got:
		if s != "bye" {
			t.Fatalf("the backend read %q, want bye", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client's end did not reach the backend")
	}
	awaitWake(t, f)
	eventually(t, func() bool {
		act.mu.Lock()
		defer act.mu.Unlock()
		return len(act.conns) == 0
	}, "the activator to let go of both ends")
}

func TestActivatorRetriesARefusedBackend(t *testing.T) {
	// A backend published before it listens (its readiness raced it):
	// the connection waits for it rather than fail.
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ap := ln.Addr().(*net.TCPAddr)
	ln.Close()
	f := newFakeService(uint16(ap.Port), ap.AddrPort().Addr())
	act := startTestActivator(t, f, 10*time.Second, 20*time.Millisecond)
	c := dialActivator(t, act)
	c.Write([]byte("ping"))
	c.CloseWrite()
	time.Sleep(200 * time.Millisecond)
	ln, err = net.ListenTCP("tcp4", ap)
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", ap.Port, err)
	}
	defer ln.Close()
	go func() {
		if b, err := ln.AcceptTCP(); err == nil {
			echo(b)
			b.Close()
		}
	}()
	if s, err := readAll(t, c, 5*time.Second); err != nil || s != "ping" {
		t.Fatalf("read %q, %v; want the echo of ping", s, err)
	}
}

func TestActivatorTimeout(t *testing.T) {
	f := newFakeService(1)
	act := startTestActivator(t, f, 300*time.Millisecond, 20*time.Millisecond)
	c := dialActivator(t, act)
	start := time.Now()
	s, err := readAll(t, c, 5*time.Second)
	if d := time.Since(start); s != "" || errors.Is(err, os.ErrDeadlineExceeded) || d < 250*time.Millisecond {
		t.Fatalf("read %q, %v after %v; want the connection closed after 300ms", s, err, d)
	}
	awaitWake(t, f)
}

func TestActivatorUnknownService(t *testing.T) {
	f := newFakeService(1)
	f.missing = true
	act := startTestActivator(t, f, 10*time.Second, activatorPoll)
	c := dialActivator(t, act)
	if s, err := readAll(t, c, 2*time.Second); s != "" || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %q, %v; want the connection closed at once", s, err)
	}
	select {
	case s := <-f.wakes:
		t.Fatalf("woke %s for no service", s)
	default:
	}
}

func TestActivatorCloseDropsHeld(t *testing.T) {
	f := newFakeService(1)
	act := startTestActivator(t, f, 10*time.Second, activatorPoll)
	c := dialActivator(t, act)
	awaitWake(t, f)
	closed := make(chan struct{})
	go func() {
		act.close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return while a connection was held")
	}
	if s, err := readAll(t, c, 2*time.Second); s != "" || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %q, %v; want the held connection closed", s, err)
	}
	if _, err := net.DialTCP("tcp4", nil, act.ln.Addr().(*net.TCPAddr)); err == nil {
		t.Fatal("the activator still accepts connections after close")
	}
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestOriginalDst(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a network namespace of its own and nftables")
	}
	type result struct {
		dst netip.AddrPort
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, and its
		// namespace with it.
		runtime.LockOSThread()
		dst, err := redirectedDst()
		done <- result{dst, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := netip.MustParseAddrPort("127.0.0.2:80"); r.dst != want {
		t.Fatalf("original destination %s, want %s", r.dst, want)
	}
}

// redirectedDst, in a network namespace of its own, redirects a connection
// to 127.0.0.2:80 to a listener with nftables and returns originalDst of
// the connection the listener accepts. It must run on a locked thread.
func redirectedDst() (netip.AddrPort, error) {
	var none netip.AddrPort
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return none, fmt.Errorf("network namespace: %w", err)
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return none, fmt.Errorf("loopback: %w", err)
	}
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return none, err
	}
	defer ln.Close()
	ns, err := netns.Get()
	if err != nil {
		return none, err
	}
	defer ns.Close()
	nft, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return none, err
	}
	tb := nft.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "activator"})
	out := nft.AddChain(&nftables.Chain{Name: "output", Table: tb, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	nft.AddRule(&nftables.Rule{Table: tb, Chain: out, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{127, 0, 0, 2}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(80)},
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(ln.Addr().(*net.TCPAddr).Port))},
		&expr.Redir{RegisterProtoMin: 1},
	}})
	if err := nft.Flush(); err != nil {
		return none, fmt.Errorf("nftables: %w", err)
	}
	c, err := net.DialTimeout("tcp4", "127.0.0.2:80", 5*time.Second)
	if err != nil {
		return none, err
	}
	defer c.Close()
	ln.SetDeadline(time.Now().Add(5 * time.Second))
	a, err := ln.AcceptTCP()
	if err != nil {
		return none, err
	}
	defer a.Close()
	return originalDst(a)
}
