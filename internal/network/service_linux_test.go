package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
)

// TestServices covers a service's VIP, host port, UDP, backend changes and
// DNS names in one world, since making it is what takes time.
func TestServices(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	m := env.m
	env.networks("net1", "net2")
	remote, hostAddr, _ := env.addRemote()
	primary := primaryAddr(t)
	nsB1, b1 := env.connect("net1", "b1")
	nsB2, b2 := env.connect("net1", "b2")
	nsC, _ := env.connect("net1", "c")
	nsO, _ := env.connect("net2", "o")
	for _, b := range []struct {
		ns, name string
	}{{nsB1, "b1"}, {nsB2, "b2"}} {
		serveTCP(t, b.ns, 8080, b.name)
		serveUDP(t, b.ns, 5353, b.name)
	}

	web := Service{Name: "web", Network: env.mustGet("net1").ID[:12], Ports: []ServicePort{
		{Port: 80, TargetPort: 8080, HostPort: 18180},
		{Protocol: "UDP", Port: 53, TargetPort: 5353},
	}, Backends: []string{b1.ContainerID, "not-connected", b2.ContainerID, b1.ContainerID}}
	s, err := m.SetService(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	vip := s.VIP
	if s.Network != "net1" || s.Namespace != DefaultNamespace || !env.subnet(1).Contains(vip) ||
		vip == b1.IP || vip == b2.IP || vip == b1.Gateway || s.Ports[1].Protocol != "udp" ||
		fmt.Sprint(s.Backends) != fmt.Sprint([]string{b1.ContainerID, b2.ContainerID}) {
		t.Fatalf("stored service: %+v", s)
	}
	if !env.bridgeHas("net1", vip) {
		t.Errorf("bridge has no address %s", vip)
	}
	vipAddr := func(port int) string { return net.JoinHostPort(vip.String(), fmt.Sprint(port)) }
	both := "[b1 b2]"

	t.Run("VIP", func(t *testing.T) {
		if got := backendsSeen(t, nsC, vipAddr(80), 30); got != both {
			t.Errorf("from a container on the network: reached %s, want %s", got, both)
		}
		if got := backendsSeen(t, "", vipAddr(80), 30); got != both {
			t.Errorf("from the host: reached %s, want %s", got, both)
		}
		// Hairpin: a backend reaching its own service.
		if got := backendsSeen(t, nsB1, vipAddr(80), 30); got != both {
			t.Errorf("from backend b1: reached %s, want %s", got, both)
		}
		// Not from another network, and nothing else of the host.
		if _, err := dialTCP(t, nsO, vipAddr(80)); err == nil {
			t.Error("a container of net2 reaches net1's service")
		}
		l, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		port := l.Addr().(*net.TCPAddr).Port
		if _, err := dialTCP(t, nsC, net.JoinHostPort(b1.Gateway.String(), fmt.Sprint(port))); err != nil {
			t.Errorf("host socket on the gateway: %v", err)
		}
		if _, err := dialTCP(t, nsC, vipAddr(port)); err == nil {
			t.Error("a host socket is reachable on the VIP")
		}
	})
	t.Run("host port", func(t *testing.T) {
		for _, a := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), primary, hostAddr} {
			if got := backendsSeen(t, "", net.JoinHostPort(a.String(), "18180"), 30); got != both {
				t.Errorf("host %s:18180: reached %s, want %s", a, got, both)
			}
		}
		if got := backendsSeen(t, remote, net.JoinHostPort(hostAddr.String(), "18180"), 30); got != both {
			t.Errorf("from another host: reached %s, want %s", got, both)
		}
	})
	t.Run("UDP", func(t *testing.T) {
		seen := map[string]bool{}
		for range 30 {
			got, err := askUDP(t, nsC, vipAddr(53), "ping")
			if err != nil {
				t.Fatal(err)
			}
			seen[strings.TrimSuffix(got, " ping")] = true
		}
		if got := sortedKeys(seen); got != both {
			t.Errorf("udp through the VIP reached %s, want %s", got, both)
		}
	})
	t.Run("client affinity", func(t *testing.T) {
		sticky := web
		sticky.ClientAffinity = true
		if _, err := m.SetService(ctx, sticky); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := m.SetService(ctx, web); err != nil {
				t.Fatal(err)
			}
		}()
		for _, c := range []struct{ ns, addr string }{{nsC, vipAddr(80)}, {"", vipAddr(80)}, {remote, net.JoinHostPort(hostAddr.String(), "18180")}} {
			if got := backendsSeen(t, c.ns, c.addr, 20); strings.Contains(got, " ") {
				t.Errorf("%s from %s with client affinity: reached %s, want one", c.addr, nsName(c.ns), got)
			}
		}
	})
	t.Run("DNS", func(t *testing.T) {
		q := env.dnsQuerier("net1")
		q.expect(t, "web", vip)
		q.expect(t, "WEB.default.svc", vip)
		q.expect(t, "web.default.svc.cluster.local.", vip)
		q.expect(t, "tasks.web", b1.IP, b2.IP)
		q.expect(t, "b1", b1.IP) // containers still resolve
	})
	t.Run("backend changes", func(t *testing.T) {
		s2, err := m.SetService(ctx, Service{Name: "web", Network: "net1", Ports: web.Ports, Backends: []string{b1.ContainerID}})
		if err != nil {
			t.Fatal(err)
		}
		if s2.VIP != vip {
			t.Errorf("VIP changed from %s to %s", vip, s2.VIP)
		}
		if got := backendsSeen(t, nsC, vipAddr(80), 20); got != "[b1]" {
			t.Errorf("after b2 left the service: reached %s", got)
		}
		env.dnsQuerier("net1").expect(t, "tasks.web", b1.IP)

		// A UDP flow follows its backend's leaving: the next datagram from
		// the same socket reaches the other one.
		if _, err := m.SetService(ctx, Service{Name: "web", Network: "net1", Ports: web.Ports, Backends: []string{b2.ContainerID}}); err != nil {
			t.Fatal(err)
		}
		var c net.Conn
		inNS(t, nsC, func() { c, err = net.Dial("udp4", vipAddr(53)) })
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ask := func() string {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 100)
			_, _ = c.Write([]byte("ping"))
			n, err := c.Read(buf)
			if err != nil {
				t.Errorf("udp flow: %v", err)
			}
			return string(buf[:n])
		}
		if got := ask(); got != "b2 ping" {
			t.Errorf("udp flow to b2: %q", got)
		}
		if _, err := m.SetService(ctx, Service{Name: "web", Network: "net1", Ports: web.Ports, Backends: []string{b1.ContainerID}}); err != nil {
			t.Fatal(err)
		}
		if got := ask(); got != "b1 ping" {
			t.Errorf("udp flow after b2 left the service: %q, want b1", got)
		}

		// No backend: refused at once, and no address in DNS.
		if _, err := m.SetService(ctx, Service{Name: "web", Network: "net1", Ports: web.Ports}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ ns, addr string }{
			{nsC, vipAddr(80)}, {"", vipAddr(80)}, {"", "127.0.0.1:18180"}, {"", net.JoinHostPort(primary.String(), "18180")},
		} {
			if _, err := dialTCP(t, c.ns, c.addr); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s from %s without backends: %v, want connection refused", c.addr, nsName(c.ns), err)
			}
		}
		if _, err := askUDP(t, nsC, vipAddr(53), "ping"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("udp without backends: %v, want connection refused", err)
		}
		q := env.dnsQuerier("net1")
		q.expect(t, "web")
		q.expect(t, "web.default.svc.cluster.local")
		q.expect(t, "tasks.web")

		// A backend that disconnects leaves the service.
		if _, err := m.SetService(ctx, Service{Name: "web", Network: "net1", Ports: web.Ports, Backends: []string{b1.ContainerID, b2.ContainerID}}); err != nil {
			t.Fatal(err)
		}
		if err := m.Disconnect(ctx, "net1", b2.ContainerID); err != nil {
			t.Fatal(err)
		}
		svcs, err := m.Services(ctx, "net1")
		if err != nil || len(svcs) != 1 || fmt.Sprint(svcs[0].Backends) != fmt.Sprint([]string{b1.ContainerID}) {
			t.Errorf("services after b2 disconnected: %+v, %v", svcs, err)
		}
		if got := backendsSeen(t, nsC, vipAddr(80), 20); got != "[b1]" {
			t.Errorf("after b2 disconnected: reached %s", got)
		}

		// A change of backends rewrites the service's own chains only.
		before := env.ruleHandles("prerouting", "svc-"+vip.String())
		if _, err := m.SetService(ctx, Service{Name: "web", Network: "net1", Ports: web.Ports}); err != nil {
			t.Fatal(err)
		}
		after := env.ruleHandles("prerouting", "svc-"+vip.String())
		if fmt.Sprint(after["prerouting"]) != fmt.Sprint(before["prerouting"]) || len(after["svc-"+vip.String()]) != 0 {
			t.Errorf("rule handles before and after a change of backends: %v, %v", before, after)
		}
		// A table deleted behind berth's back is made whole by the next
		// change.
		if err := deleteTable(env.s.Prefix); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SetService(ctx, Service{Name: "web", Network: "net1", Ports: web.Ports, Backends: []string{b1.ContainerID}}); err != nil {
			t.Fatal(err)
		}
		if got := backendsSeen(t, nsC, vipAddr(80), 20); got != "[b1]" {
			t.Errorf("after the table was deleted and backends changed: reached %s", got)
		}
	})
	t.Run("conflicts", func(t *testing.T) {
		ns := env.newNS("x")
		_, err := m.Connect(ctx, "net2", Attach{ContainerID: "x", NetNS: ns, Ports: []PortMapping{{HostPort: 18180, ContainerPort: 80}}})
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "service web") {
			t.Errorf("container publishing a service's host port: %v", err)
		}
		_, err = m.SetService(ctx, Service{Name: "api", Network: "net2", Ports: []ServicePort{{TargetPort: 80, HostPort: 18180}}})
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "service web") {
			t.Errorf("two services on one host port: %v", err)
		}
		_, pub := env.connect("net2", "p", PortMapping{HostPort: 18181, ContainerPort: 80})
		_, err = m.SetService(ctx, Service{Name: "api", Network: "net2", Ports: []ServicePort{{TargetPort: 80, HostPort: 18181}}})
		if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "container "+short(pub.ContainerID)) {
			t.Errorf("service on a container's host port: %v", err)
		}
		if strings.Contains(fmt.Sprint(err), "\n") {
			t.Errorf("multi-line error: %q", err)
		}
		// A service on a network without endpoints: its host port is held
		// and refuses, and the network stays.
		if _, err := m.Create(ctx, Network{Name: "net3", Subnet: env.subnet(3)}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.SetService(ctx, Service{Name: "idle", Network: "net3", Ports: []ServicePort{{TargetPort: 80, HostPort: 18182}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := dialTCP(t, "", "127.0.0.1:18182"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("host port of a service without backends: %v, want connection refused", err)
		}
		if err := m.Remove(ctx, "net3"); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "service idle") {
			t.Errorf("removing a network with a service: %v", err)
		}
		for _, c := range []struct {
			s    Service
			want error
		}{
			{Service{Name: "bad name", Network: "net1", Ports: []ServicePort{{TargetPort: 80}}}, errdefs.ErrInvalidArgument},
			{Service{Name: "a", Network: "net1", Ports: []ServicePort{{TargetPort: 80, Protocol: "sctp"}}}, errdefs.ErrInvalidArgument},
			{Service{Name: "a", Network: "net1", Ports: []ServicePort{{Port: 80}}}, errdefs.ErrInvalidArgument},
			{Service{Name: "a", Network: "net1", Ports: []ServicePort{{TargetPort: 80}, {Port: 80, TargetPort: 81}}}, errdefs.ErrInvalidArgument},
			{Service{Name: "a", Network: "nope", Ports: []ServicePort{{TargetPort: 80}}}, errdefs.ErrNotFound},
		} {
			if _, err := m.SetService(ctx, c.s); !errors.Is(err, c.want) {
				t.Errorf("SetService(%+v) = %v, want %v", c.s, err, c.want)
			}
		}
		if svcs, _ := m.Services(ctx, ""); len(svcs) != 2 || svcs[0].Name != "web" || svcs[1].Name != "idle" {
			t.Errorf("failed calls left services: %+v", svcs)
		}
	})
	t.Run("remove", func(t *testing.T) {
		if err := m.RemoveService(ctx, "net1", "web"); err != nil {
			t.Fatal(err)
		}
		if err := m.RemoveService(ctx, "net1", "web"); err != nil {
			t.Errorf("second RemoveService: %v", err)
		}
		if err := m.RemoveService(ctx, "nope", "web"); err != nil {
			t.Errorf("RemoveService on an unknown network: %v", err)
		}
		if env.bridgeHas("net1", vip) {
			t.Errorf("bridge keeps %s", vip)
		}
		if env.tableMentions(vip) {
			t.Errorf("nftables rules still mention %s", vip)
		}
		if _, err := dialTCP(t, "", "127.0.0.1:18180"); err == nil {
			t.Error("host port 18180 still published")
		}
		env.dnsQuerier("net1").expectForwarded(t, "web")
	})
}

// TestServiceVIPAllocation fills a small subnet: the VIP is never given to
// a container, and a full subnet fails as Connect does.
func TestServiceVIPAllocation(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	m := env.m
	// Hosts .1 to .6; .1 is the gateway.
	subnet := netip.MustParsePrefix(fmt.Sprintf("10.%d.3.0/29", env.octet))
	if _, err := m.Create(ctx, Network{Name: "small", Subnet: subnet}); err != nil {
		t.Fatal(err)
	}
	_, a := env.connect("small", "a")
	s, err := m.SetService(ctx, Service{Name: "svc", Network: "small", Ports: []ServicePort{{Port: 80, TargetPort: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	if !env.bridgeHas("small", s.VIP) {
		t.Errorf("bridge has no address %s", s.VIP)
	}
	for i := range 3 {
		_, e := env.connect("small", fmt.Sprintf("c%d", i))
		if e.IP == s.VIP {
			t.Errorf("container c%d got the VIP %s", i, e.IP)
		}
		s2, err := m.SetService(ctx, Service{Name: "svc", Network: "small", Backends: []string{e.ContainerID}})
		if err != nil || s2.VIP != s.VIP {
			t.Errorf("SetService again: %+v, %v; VIP was %s", s2, err, s.VIP)
		}
	}
	ns := env.newNS("full")
	if _, err := m.Connect(ctx, "small", Attach{ContainerID: "full", NetNS: ns}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Connect to a full subnet: %v", err)
	}
	if _, err := m.SetService(ctx, Service{Name: "svc2", Network: "small"}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("SetService on a full subnet: %v", err)
	}
	// The bridge is made anew with the VIP when the network is used again.
	for _, e := range []string{a.ContainerID, "c0-0123456789abcdef", "c1-0123456789abcdef", "c2-0123456789abcdef"} {
		if err := m.Disconnect(ctx, "small", e); err != nil {
			t.Fatal(err)
		}
	}
	if links := env.links(); len(links) != 0 {
		t.Errorf("links after the last endpoint left: %v", links)
	}
	env.connect("small", "again")
	if !env.bridgeHas("small", s.VIP) {
		t.Errorf("new bridge has no address %s", s.VIP)
	}
}

// TestServiceScale measures one backend change with 100 services of 3
// backends each defined.
func TestServiceScale(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	env := newEnv(t)
	ctx := context.Background()
	m := env.m
	if _, err := m.Create(ctx, Network{Name: "net1", Subnet: env.subnet(1)}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 4 {
		_, e := env.connect("net1", fmt.Sprintf("b%d", i))
		ids = append(ids, e.ContainerID)
	}
	start := time.Now()
	for i := range 100 {
		s := Service{Name: fmt.Sprintf("svc%d", i), Network: "net1",
			Ports:    []ServicePort{{Port: 80, TargetPort: 8080}, {Protocol: "udp", Port: 53, TargetPort: 5353}},
			Backends: ids[:3]}
		if _, err := m.SetService(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("100 SetService calls creating services: %v", time.Since(start))
	var took []time.Duration
	for i := range 11 {
		s := Service{Name: fmt.Sprintf("svc%d", i), Network: "net1",
			Ports:    []ServicePort{{Port: 80, TargetPort: 8080}, {Protocol: "udp", Port: 53, TargetPort: 5353}},
			Backends: []string{ids[0], ids[1], ids[3]}}
		start := time.Now()
		if _, err := m.SetService(ctx, s); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("one backend change with 100 services × 3 backends (2 ports each): median %v, min %v, max %v",
		took[len(took)/2], took[0], took[len(took)-1])
	// Where the time goes: the table's rebuild, and the state file.
	st, err := m.read()
	if err != nil {
		t.Fatal(err)
	}
	st.Rules = nil
	start = time.Now()
	if err := m.applyRules(st); err != nil {
		t.Fatal(err)
	}
	rules := time.Since(start)
	start = time.Now()
	if err := m.write(st); err != nil {
		t.Fatal(err)
	}
	t.Logf("the whole table rebuilt: %v; the state file written: %v", rules, time.Since(start))
	start = time.Now()
	env.connect("net1", "late")
	t.Logf("Connect with 100 services: %v", time.Since(start))
}

func (env *testEnv) mustGet(name string) *Network {
	n, err := env.m.Get(context.Background(), name)
	if err != nil {
		env.t.Fatal(err)
	}
	return n
}

// bridgeHas reports whether the network's bridge has ip as a /32 address.
func (env *testEnv) bridgeHas(network string, ip netip.Addr) bool {
	l, err := netlink.LinkByName(env.mustGet(network).Bridge)
	if err != nil {
		return false
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		env.t.Fatal(err)
	}
	for _, a := range addrs {
		if ones, _ := a.Mask.Size(); ones == 32 && a.IP.Equal(ip.AsSlice()) {
			return true
		}
	}
	return false
}

// tableMentions reports whether a rule of the test's table compares with
// ip.
func (env *testEnv) tableMentions(ip netip.Addr) bool {
	a := ip.As4()
	return env.tableCompares(a[:])
}

// tableCompares reports whether a rule of the test's table compares with
// data: an address, a port.
func (env *testEnv) tableCompares(data []byte) bool {
	c, err := nftables.New()
	if err != nil {
		env.t.Fatal(err)
	}
	t, err := c.ListTableOfFamily(env.s.Prefix, nftables.TableFamilyIPv4)
	if err != nil {
		return false
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		env.t.Fatal(err)
	}
	for _, ch := range chains {
		if ch.Table.Name != t.Name {
			continue
		}
		rules, err := c.GetRules(t, ch)
		if err != nil {
			env.t.Fatal(err)
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if cmp, ok := e.(*expr.Cmp); ok && bytes.Equal(cmp.Data, data) {
					return true
				}
			}
		}
	}
	return false
}

// backendsSeen connects n times from ns to addr and returns the backends
// that answered ("b1 from …" counts as b1), sorted, as "[b1 b2]".
func backendsSeen(t *testing.T, ns, addr string, n int) string {
	t.Helper()
	seen := map[string]bool{}
	for range n {
		got, err := dialTCP(t, ns, addr)
		if err != nil {
			t.Errorf("%s from %s: %v", addr, nsName(ns), err)
			return fmt.Sprint(sortedKeys(seen))
		}
		name, _, _ := strings.Cut(got, " ")
		seen[name] = true
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

// askUDP sends msg from a new socket in ns to addr and returns the reply.
func askUDP(t *testing.T, ns, addr, msg string) (string, error) {
	t.Helper()
	var c net.Conn
	var err error
	inNS(t, ns, func() { c, err = net.Dial("udp4", addr) })
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// dnsQuerier asks a network's embedded DNS server from the host.
type dnsQuerier struct{ addr string }

func (env *testEnv) dnsQuerier(network string) dnsQuerier {
	server, ok := env.m.Nameserver(context.Background(), network)
	if !ok {
		env.t.Fatalf("%s has no nameserver", network)
	}
	return dnsQuerier{net.JoinHostPort(server.String(), "53")}
}

func (q dnsQuerier) ask(name string) (*dns.Msg, []string, error) {
	msg := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA)
	resp, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(msg, q.addr)
	if err != nil {
		return nil, nil, err
	}
	var got []string
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			got = append(got, a.A.String())
		}
	}
	sort.Strings(got)
	return resp, got, nil
}

// expect fails the test unless name has exactly the addresses want, and is
// answered by the embedded server itself.
func (q dnsQuerier) expect(t *testing.T, name string, want ...netip.Addr) {
	t.Helper()
	resp, got, err := q.ask(name)
	if err != nil {
		t.Errorf("DNS %s: %v", name, err)
		return
	}
	var w []string
	for _, a := range want {
		w = append(w, a.String())
	}
	sort.Strings(w)
	if fmt.Sprint(got) != fmt.Sprint(w) || !resp.Authoritative || resp.Rcode != dns.RcodeSuccess {
		t.Errorf("DNS %s: %v (rcode %s, authoritative %v), want %v", name, got, dns.RcodeToString[resp.Rcode], resp.Authoritative, w)
	}
}

// expectForwarded fails the test if the embedded server answers name
// itself.
func (q dnsQuerier) expectForwarded(t *testing.T, name string) {
	t.Helper()
	resp, got, err := q.ask(name)
	if err == nil && (resp.Authoritative || len(got) > 0) {
		t.Errorf("DNS %s after the service left: %v (authoritative %v)", name, got, resp.Authoritative)
	}
}

// TestFailedUpdateForgetsRules: a change that altered the table but failed
// after it leaves the stored state without its fingerprint of the table,
// so that the next change, even one that changes nothing, puts the rules
// the state asks for back.
func TestFailedUpdateForgetsRules(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	env.networks("net1")
	_, b := env.connect("net1", "b")
	web := Service{Name: "web", Network: "net1", Ports: []ServicePort{{Port: 80, TargetPort: 8080}}, Backends: []string{b.ContainerID}}
	s, err := env.m.SetService(ctx, web)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := env.m.read(); err != nil || st.Rules == nil {
		t.Fatalf("stored state: %v, fingerprint %v", err, st.Rules)
	}
	boom := errors.New("boom")
	err = env.m.update(ctx, func(st *state) error {
		st.removeService(st.service("net1", "web"))
		if err := env.m.applyRules(st); err != nil {
			return err
		}
		return boom // as a failure after the table changed
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update: %v", err)
	}
	if env.tableMentions(s.VIP) {
		t.Fatal("the failed update did not change the table; the test shows nothing")
	}
	if st, err := env.m.read(); err != nil || st.Rules != nil || len(st.Services) != 1 {
		t.Errorf("after the failed update: %v, fingerprint %v, services %d; want none and 1", err, st.Rules, len(st.Services))
	}
	if _, err := env.m.SetService(ctx, web); err != nil {
		t.Fatal(err)
	}
	if !env.tableMentions(s.VIP) {
		t.Error("the service's rules were not put back by the next change")
	}
}
