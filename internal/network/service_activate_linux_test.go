package network

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/nftables"
)

// TestServiceActivator covers a service that scales from zero: with no
// backend its TCP connections are redirected to an activator port where
// the test listens, which learns from SO_ORIGINAL_DST and ServiceFor what
// they were for; with one they reach it; and ServiceCounts counts the
// requests of both.
func TestServiceActivator(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	m := env.m
	env.networks("net1")
	remote, hostAddr, _ := env.addRemote()
	nsB, b := env.connect("net1", "b")
	nsC, ce := env.connect("net1", "c")
	serveLines(t, nsB, 8080, "b")
	serveUDP(t, nsB, 5353, "b")

	held := make(chan netip.AddrPort, 10)
	activator := listenActivator(t, held)
	lazy := Service{Name: "lazy", Network: "net1", Activator: activator, Ports: []ServicePort{
		{Port: 80, TargetPort: 8080, HostPort: 18190},
		{Protocol: "udp", Port: 53, TargetPort: 5353},
	}}
	s, err := m.SetService(ctx, lazy)
	if err != nil {
		t.Fatal(err)
	}
	if s.Activator != activator {
		t.Errorf("stored service: %+v", s)
	}
	vip := s.VIP
	vipAddr := func(port int) string { return net.JoinHostPort(vip.String(), fmt.Sprint(port)) }
	local := net.JoinHostPort("127.0.0.1", "18190")
	fromRemote := net.JoinHostPort(hostAddr.String(), "18190")
	requests := func() uint64 {
		t.Helper()
		counts, err := m.ServiceCounts(ctx)
		if err != nil || len(counts) != 1 || counts[0].Name != "lazy" || counts[0].Network != "net1" {
			t.Fatalf("ServiceCounts: %+v, %v", counts, err)
		}
		return counts[0].Requests
	}
	// expectCount fails the test unless the count went up by n (and at most
	// a couple more: retransmissions) since it was last.
	last := requests()
	expectCount := func(what string, n uint64) {
		t.Helper()
		now := requests()
		if now < last+n || now > last+n+2 {
			t.Errorf("requests counted %s: %d, want %d", what, now-last, n)
		}
		last = now
	}

	// Its name answers with the VIP though it has no backend: the
	// activator takes the connections.
	env.dnsQuerier("net1").expect(t, "lazy", vip)

	t.Run("held", func(t *testing.T) {
		for _, c := range []struct{ ns, addr string }{{nsC, vipAddr(80)}, {"", vipAddr(80)}, {"", local}, {remote, fromRemote}} {
			got, err := request(t, c.ns, c.addr, 1)
			if err != nil || fmt.Sprint(got) != "[activator req 0]" {
				t.Errorf("%s from %s without backends: %q, %v; want the activator", c.addr, nsName(c.ns), got, err)
				continue
			}
			dst := <-held
			if want := netip.MustParseAddrPort(c.addr); dst != want {
				t.Errorf("%s from %s: original destination %s", c.addr, nsName(c.ns), dst)
			}
			target, err := m.ServiceFor(ctx, dst)
			if err != nil || target.Service.Name != "lazy" || target.Service.VIP != vip || len(target.Backends) != 0 ||
				target.Port.Port != 80 || target.Port.HostPort != 18190 || target.Port.Protocol != "tcp" {
				t.Errorf("ServiceFor(%s) = %+v, %v", dst, target, err)
			}
		}
		expectCount("while held", 4)
		for _, dst := range []string{vipAddr(81), vipAddr(18190), net.JoinHostPort(hostAddr.String(), "80"), "192.0.2.1:18190"} {
			if target, err := m.ServiceFor(ctx, netip.MustParseAddrPort(dst)); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("ServiceFor(%s) = %+v, %v; want not found", dst, target, err)
			}
		}
		// Only redirected connections reach the activator.
		for _, c := range []struct{ ns, addr string }{
			{remote, net.JoinHostPort(hostAddr.String(), fmt.Sprint(activator))},
			{nsC, net.JoinHostPort(ce.Gateway.String(), fmt.Sprint(activator))},
			{"", net.JoinHostPort("127.0.0.1", fmt.Sprint(activator))},
		} {
			if got, err := request(t, c.ns, c.addr, 1); err == nil {
				t.Errorf("%s from %s reaches the activator directly: %q", c.addr, nsName(c.ns), got)
			}
		}
		if _, err := askUDP(t, nsC, vipAddr(53), "ping"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("udp without backends: %v, want connection refused", err)
		}
		expectCount("for refused UDP", 1)
	})

	t.Run("backend", func(t *testing.T) {
		base := []string{"input", "prerouting", "output", "hostports", "count"}
		before := env.ruleHandles(append(base, "svc-"+vip.String())...)
		lazy.Backends = []string{b.ContainerID}
		if _, err := m.SetService(ctx, lazy); err != nil {
			t.Fatal(err)
		}
		after := env.ruleHandles(append(base, "svc-"+vip.String())...)
		for _, ch := range base {
			if fmt.Sprint(after[ch]) != fmt.Sprint(before[ch]) {
				t.Errorf("chain %s rewritten by a change of backends: %v, then %v", ch, before[ch], after[ch])
			}
		}
		if ch := "svc-" + vip.String(); slices.Equal(after[ch], before[ch]) {
			t.Errorf("chain %s kept by a change of backends: %v", ch, after[ch])
		}
		if got := requests(); got < last {
			t.Errorf("the count went back from %d to %d: the table was remade", last, got)
		}
		for _, c := range []struct{ ns, addr string }{{nsC, vipAddr(80)}, {"", vipAddr(80)}, {"", local}, {remote, fromRemote}} {
			if got, err := request(t, c.ns, c.addr, 1); err != nil || !strings.HasPrefix(strings.Join(got, ""), "b ") {
				t.Errorf("%s from %s with a backend: %q, %v; want the backend", c.addr, nsName(c.ns), got, err)
			}
		}
		select {
		case dst := <-held:
			t.Errorf("the activator got a connection to %s with a backend serving", dst)
		default:
		}
		target, err := m.ServiceFor(ctx, netip.MustParseAddrPort(vipAddr(80)))
		if err != nil || fmt.Sprint(target.Backends) != fmt.Sprint([]netip.Addr{b.IP}) {
			t.Errorf("ServiceFor with a backend: %+v, %v", target, err)
		}
		last = requests()
	})

	t.Run("counts", func(t *testing.T) {
		if got, err := request(t, nsC, vipAddr(80), 5); err != nil || len(got) != 5 {
			t.Errorf("keep-alive requests: %q, %v", got, err)
		}
		for range 3 {
			if _, err := request(t, "", local, 1); err != nil {
				t.Error(err)
			}
		}
		for range 2 {
			if _, err := request(t, remote, fromRemote, 1); err != nil {
				t.Error(err)
			}
		}
		for range 3 {
			if _, err := askUDP(t, nsC, vipAddr(53), "ping"); err != nil {
				t.Error(err)
			}
		}
		expectCount("through the backend", 13)

		// A full rebuild starts the counts from 0; no table counts 0.
		env.connect("net1", "p", PortMapping{HostPort: 18191, ContainerPort: 80})
		if got := requests(); got != 0 {
			t.Errorf("requests after the table was remade: %d, want 0", got)
		}
		if err := deleteTable(env.s.Prefix); err != nil {
			t.Fatal(err)
		}
		if got := requests(); got != 0 {
			t.Errorf("requests without a table: %d, want 0", got)
		}
	})

	t.Run("back to zero", func(t *testing.T) {
		lazy.Backends = nil
		if _, err := m.SetService(ctx, lazy); err != nil {
			t.Fatal(err)
		}
		if got, err := request(t, nsC, vipAddr(80), 1); err != nil || fmt.Sprint(got) != "[activator req 0]" {
			t.Errorf("without backends again: %q, %v; want the activator", got, err)
		}
		if dst := <-held; dst.String() != vipAddr(80) {
			t.Errorf("original destination %s", dst)
		}
	})

	t.Run("remove", func(t *testing.T) {
		if err := m.RemoveService(ctx, "net1", "lazy"); err != nil {
			t.Fatal(err)
		}
		if env.tableMentions(vip) {
			t.Errorf("nftables rules still mention %s", vip)
		}
		if env.tableCompares(binary.BigEndian.AppendUint16(nil, activator)) {
			t.Errorf("nftables rules still mention the activator port %d", activator)
		}
		if objs := env.tableObjects(); len(objs) != 0 {
			t.Errorf("objects remain: %v", objs)
		}
		if counts, err := m.ServiceCounts(ctx); err != nil || len(counts) != 0 {
			t.Errorf("ServiceCounts without services: %+v, %v", counts, err)
		}
	})
}

// listenActivator listens on a free port of every host address and
// answers each line of a connection with "activator LINE", after sending
// the connection's original destination to held.
func listenActivator(t *testing.T, held chan<- netip.AddrPort) uint16 {
	t.Helper()
	return acceptTCP(t, "", 0, func(c net.Conn) {
		dst, err := originalDst(c)
		if err != nil {
			t.Errorf("SO_ORIGINAL_DST: %v", err)
		}
		held <- dst
		answerLines(c, "activator")
	})
}

// originalDst returns a redirected connection's destination before the
// redirect: SO_ORIGINAL_DST, a sockaddr_in.
func originalDst(c net.Conn) (netip.AddrPort, error) {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var mreq *syscall.IPv6Mreq
	var serr error
	if err := rc.Control(func(fd uintptr) {
		mreq, serr = syscall.GetsockoptIPv6Mreq(int(fd), syscall.SOL_IP, 80) // SO_ORIGINAL_DST
	}); err != nil {
		return netip.AddrPort{}, err
	}
	if serr != nil {
		return netip.AddrPort{}, serr
	}
	sa := mreq.Multiaddr
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), binary.BigEndian.Uint16(sa[2:4])), nil
}

// serveLines listens on port in the namespace and answers each line of a
// connection with "reply LINE", as an HTTP server with keep-alive would.
func serveLines(t *testing.T, ns string, port int, reply string) {
	t.Helper()
	acceptTCP(t, ns, port, func(c net.Conn) { answerLines(c, reply) })
}

func answerLines(c net.Conn, reply string) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "%s %s", reply, line); err != nil {
			return
		}
	}
}

// request connects from the namespace to addr and sends n lines ("req 0",
// "req 1"…) one at a time, each after the reply to the one before; it
// returns the replies.
func request(t *testing.T, ns, addr string, n int) ([]string, error) {
	t.Helper()
	var c net.Conn
	var err error
	inNS(t, ns, func() { c, err = net.DialTimeout("tcp4", addr, time.Second) })
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	var out []string
	for i := range n {
		if _, err := fmt.Fprintf(c, "req %d\n", i); err != nil {
			return out, err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return out, err
		}
		out = append(out, strings.TrimSuffix(line, "\n"))
	}
	return out, nil
}

// tableObjects names the stateful objects (counters) of the test's table.
func (env *testEnv) tableObjects() []string {
	c, err := nftables.New()
	if err != nil {
		env.t.Fatal(err)
	}
	objs, err := c.GetObjects(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: env.s.Prefix})
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		env.t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok {
			out = append(out, co.Name)
		} else {
			out = append(out, fmt.Sprintf("%T", o))
		}
	}
	return out
}
