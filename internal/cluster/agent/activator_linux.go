package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/network"
	"golang.org/x/sys/unix"
)

// activatorTimeout is how long the activator holds a connection for its
// service to have a ready replica before it closes it. Knative's
// activator waits longer (its revision timeout); a client that waited 30 s
// has mostly given up.
const activatorTimeout = 30 * time.Second

// activatorPoll is how often a held connection looks at its service again
// when Publish has not signalled it.
const activatorPoll = 50 * time.Millisecond

// activatorRewake is how often a held connection wakes its service again.
const activatorRewake = 250 * time.Millisecond

// WithActivator makes the agent hold the connections to services that
// scale from zero (api.ServiceEndpoints.Activate) while they have no ready
// replica: it listens on a free TCP port of the host (0.0.0.0, below 1024
// where it can, so that only root may take it; chosen when
// the agent starts; the nftables rules let only redirected connections in),
// which Publish gives such services as network.Service.Activator. For each
// connection it calls wake with the service's name (it must not block;
// again every 250 ms while the connection waits, which is activity),
// waits until the service has a backend (up to 30 s; then it closes the
// connection), and then splices the connection to a backend (dialed from
// the host to BACKEND:TargetPort), until either side ends, passing on each
// direction's end (a half-close). Connections that arrive once a replica
// is ready go straight to it through the kernel balancer, never here.
// Without networks (WithNetworks) it does nothing.
func WithActivator(wake func(service string)) Option {
	return func(o *options) { o.wake = wake }
}

// activator accepts the connections nftables redirects to its listener,
// holds each until its service has a backend, and splices it to one.
type activator struct {
	ln  *net.TCPListener
	log *slog.Logger
	// wake is called with the service's name when a connection comes,
	// and again every activatorRewake while it waits.
	wake func(service string)
	// lookup returns the service port a connection was sent to (its
	// original destination) and the service's backends now.
	lookup func(ctx context.Context, dst netip.AddrPort) (*network.Target, error)
	// changed returns a channel closed when the service's backends may
	// have changed (Publish ran for it).
	changed func(service string) <-chan struct{}
	// origDst returns where the connection was sent before the redirect.
	origDst func(*net.TCPConn) (netip.AddrPort, error)
	timeout time.Duration // activatorTimeout
	poll    time.Duration // activatorPoll

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[*net.TCPConn]struct{} // held and spliced, both ends
	closed bool
}

// activatorPorts is where the activator looks for a free port, from the
// top: below 1024 only root may bind, so that no other user's program can
// take the port (and the connections redirected to it) while no control
// plane runs. A random port above them is the last resort.
const activatorPortLow, activatorPortHigh = 900, 1023

// activatorHeld bounds the connections the activator holds at once; more
// are closed at once.
const activatorHeld = 1024

// startActivator starts a's activator on a free port of the host.
func (a *Agent) startActivator() (*activator, error) {
	var ln *net.TCPListener
	var err error
	for p := activatorPortHigh; p >= activatorPortLow; p-- {
		if ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4zero, Port: p}); err == nil {
			break
		}
	}
	if ln == nil {
		if ln, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4zero}); err != nil {
			return nil, fmt.Errorf("activator listener: %w", err)
		}
	}
	act := &activator{ln: ln, log: a.o.log, wake: a.o.wake, lookup: a.o.nets.ServiceFor, changed: a.changed,
		origDst: originalDst, timeout: activatorTimeout, poll: activatorPoll}
	act.start()
	return act, nil
}

// port returns the port the activator listens on.
func (act *activator) port() uint16 { return uint16(act.ln.Addr().(*net.TCPAddr).Port) }

// start accepts connections until close.
func (act *activator) start() {
	act.ctx, act.cancel = context.WithCancel(context.Background())
	act.conns = map[*net.TCPConn]struct{}{}
	act.wg.Add(1)
	go func() {
		defer act.wg.Done()
		act.serve()
	}()
}

// close stops accepting, closes every connection held or spliced and
// returns once their goroutines ended.
func (act *activator) close() {
	act.cancel()
	act.ln.Close()
	act.mu.Lock()
	act.closed = true
	for c := range act.conns {
		c.Close()
	}
	act.mu.Unlock()
	act.wg.Wait()
}

func (act *activator) serve() {
	for {
		c, err := act.ln.AcceptTCP()
		if err != nil {
			if act.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, most likely: let some close.
			act.log.Warn("agent: activator accepting a connection", "err", err)
			select {
			case <-act.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if act.full() {
			act.log.Warn("agent: activator full: closing a connection", "client", c.RemoteAddr(), "held", activatorHeld)
			c.Close()
			continue
		}
		if !act.track(c) {
			return
		}
		act.wg.Add(1)
		go func() {
			defer act.wg.Done()
			defer act.untrack(c)
			act.hold(c)
		}()
	}
}

// track adds c to the connections close closes; once closed, it closes c
// and returns false.
func (act *activator) track(c *net.TCPConn) bool {
	act.mu.Lock()
	defer act.mu.Unlock()
	if act.closed {
		c.Close()
		return false
	}

	act.conns[c] = struct{}{}
	return true
}

// full reports whether the activator holds as many connections as it may.
func (act *activator) full() bool {
	act.mu.Lock()
	defer act.mu.Unlock()
	return len(act.conns) >= 2*activatorHeld // the held ones and their backends
}

func (act *activator) untrack(c *net.TCPConn) {
	act.mu.Lock()
	delete(act.conns, c)
	act.mu.Unlock()
	c.Close()
}

// hold serves one redirected connection c: it wakes its service, waits for
// a backend and splices c to it.
func (act *activator) hold(c *net.TCPConn) {
	ctx, cancel := context.WithTimeout(act.ctx, act.timeout)
	defer cancel()
	dst, err := act.origDst(c)
	if err != nil {
		act.log.Warn("agent: activator connection", "client", c.RemoteAddr(), "err", err)
		return
	}
	t, err := act.lookup(ctx, dst)
	if err != nil {
		act.log.Warn("agent: activator connection", "client", c.RemoteAddr(), "err", err)
		return
	}
	service := t.Service.Name
	act.wake(service)
	b, err := act.dial(ctx, dst, service)
	if err != nil {
		if act.ctx.Err() == nil {
			act.log.Warn("agent: activator closing a held connection", "service", service, "client", c.RemoteAddr(), "err", err)
		}
		return
	}
	if !act.track(b) {
		return
	}
	defer act.untrack(b)
	splice(c, b)
}

// dial waits until the service at dst has a backend and connects to one,
// picked at random, until ctx ends. It looks again each time Publish
// signals the service, and every poll.
func (act *activator) dial(ctx context.Context, dst netip.AddrPort, service string) (*net.TCPConn, error) {
	tick := time.NewTicker(act.poll)
	defer tick.Stop()
	// A held connection is activity for as long as it waits: the
	// autoscaler must not take the service back to zero meanwhile.
	rewake := time.NewTicker(activatorRewake)
	defer rewake.Stop()
	var last error
	for {
		changed := act.changed(service) // before the lookup, not to miss a change
		t, err := act.lookup(ctx, dst)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", service, err)
		}
		if n := len(t.Backends); n > 0 {
			to := netip.AddrPortFrom(t.Backends[rand.IntN(n)], t.Port.TargetPort)
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", to.String())
			if err == nil {
				return c.(*net.TCPConn), nil
			}
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return nil, fmt.Errorf("service %s: no replica took the connection within %v: %w", service, act.timeout, last)
			}
			return nil, fmt.Errorf("service %s: no replica ready within %v", service, act.timeout)
		case <-changed:
		case <-tick.C:
		case <-rewake.C:
			act.wake(service)
		}
	}
}

// splice copies each direction between c and b until it ends, passes the
// end on (a half-close) and returns once both directions ended. An error
// (a reset, a close) ends both.
func splice(c, b *net.TCPConn) {
	var wg sync.WaitGroup
	cp := func(dst, src *net.TCPConn) {
		defer wg.Done()
		if _, err := io.Copy(dst, src); err != nil {
			c.Close()
			b.Close()
			return
		}
		dst.CloseWrite()
	}
	wg.Add(2)
	go cp(b, c)
	go cp(c, b)
	wg.Wait()
}

// originalDst returns where c was sent before nftables redirected it:
// SO_ORIGINAL_DST, an IPv4 sockaddr_in (the port big-endian in bytes 2–3,
// the address in 4–7), which GetsockoptIPv6Mreq's 16 bytes hold.
func originalDst(c *net.TCPConn) (netip.AddrPort, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	var m *unix.IPv6Mreq
	cerr := rc.Control(func(fd uintptr) {
		m, err = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
	})
	if err = errors.Join(cerr, err); err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	sa := m.Multiaddr
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), binary.BigEndian.Uint16(sa[2:4])), nil
}

// changed returns a channel that Publish closes the next time it runs for
// service.
func (a *Agent) changed(service string) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, ok := a.published[service]
	if !ok {
		ch = make(chan struct{})
		a.published[service] = ch
	}
	return ch
}

// signal wakes the connections held for service: Publish ran for it.
func (a *Agent) signal(service string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ch, ok := a.published[service]; ok {
		close(ch)
		delete(a.published, service)
	}
}

// activatorPort returns the port Publish gives a service as its
// activator: 0 unless it scales from zero and the agent has an activator.
func (a *Agent) activatorPort(activate bool) uint16 {
	if !activate || a.act == nil {
		return 0
	}
	return a.act.port()
}
