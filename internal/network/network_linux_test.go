package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/miekg/dns"
)

func TestNetworks(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	m := env.m

	def, err := m.Get(ctx, DefaultNetwork)
	if err != nil || def.Subnet != env.subnet(0) || def.Bridge != env.s.Prefix+"0" || def.DNS {
		t.Fatalf("default network: %+v, %v", def, err)
	}
	n1, err := m.Create(ctx, Network{Name: "net1", Subnet: env.subnet(1), Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if n1.Gateway != env.subnet(1).Addr().Next() || !n1.DNS || n1.Bridge != env.s.Prefix+"1" || len(n1.ID) != 64 {
		t.Errorf("net1: %+v", n1)
	}
	auto, err := m.Create(ctx, Network{Name: "auto"})
	if err != nil || auto.Subnet.Bits() != 24 || !netip.MustParsePrefix("10.91.0.0/16").Contains(auto.Subnet.Addr()) {
		t.Errorf("auto subnet: %+v, %v", auto, err)
	}
	for _, c := range []struct {
		n    Network
		want error
	}{
		{Network{Name: "net1"}, errdefs.ErrAlreadyExists},
		{Network{Name: "bridge"}, errdefs.ErrAlreadyExists},
		{Network{Name: "host"}, errdefs.ErrInvalidArgument},
		{Network{Name: "bad name"}, errdefs.ErrInvalidArgument},
		{Network{Name: "x", Subnet: env.subnet(1)}, errdefs.ErrConflict},
		{Network{Name: "x", Subnet: netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", env.octet))}, errdefs.ErrConflict},
		{Network{Name: "x", Subnet: env.subnet(2), Gateway: netip.MustParseAddr("10.0.0.1")}, errdefs.ErrInvalidArgument},
		{Network{Name: "x", Gateway: netip.MustParseAddr("10.0.0.1")}, errdefs.ErrInvalidArgument},
		{Network{Name: "x", Driver: "macvlan"}, errdefs.ErrInvalidArgument},
		{Network{Name: "x", Subnet: netip.MustParsePrefix("8.8.8.0/24")}, errdefs.ErrInvalidArgument},
	} {
		if _, err := m.Create(ctx, c.n); !errors.Is(err, c.want) {
			t.Errorf("Create(%+v) = %v, want %v", c.n, err, c.want)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("multi-line error: %q", err)
		}
	}
	byID, err := m.Get(ctx, n1.ID[:8])
	if err != nil || byID.Name != "net1" {
		t.Errorf("Get by ID prefix: %+v, %v", byID, err)
	}
	if _, err := m.Get(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get(nope) = %v", err)
	}
	list, err := m.List(ctx)
	if err != nil || len(list) != 3 || list[0].Name != "bridge" || list[1].Name != "auto" || list[2].Name != "net1" {
		t.Errorf("List: %v", list)
	}
	if ns, ok := m.Nameserver(ctx, "net1"); !ok || ns != n1.Gateway {
		t.Errorf("Nameserver(net1) = %v, %v", ns, ok)
	}
	if _, ok := m.Nameserver(ctx, "bridge"); ok {
		t.Error("the default network has no DNS")
	}
	if err := m.Remove(ctx, "bridge"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Remove(bridge) = %v", err)
	}

	// A network in use keeps its subnet's route on the host; another
	// berth (prefix) must not create a network over it.
	env.connect("net1", "a")
	if err := m.Remove(ctx, "net1"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("Remove(net1) with an endpoint = %v", err)
	}
	other, err := New(Settings{StateDir: t.TempDir(), Prefix: env.s.Prefix + "x", DefaultSubnet: netip.MustParsePrefix("10.90.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Create(ctx, Network{Name: "y", Subnet: env.subnet(1)}); !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "route") {
		t.Errorf("Create over a host route = %v", err)
	}
	if err := m.Disconnect(ctx, "net1", "a-0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if err := m.Disconnect(ctx, "net1", "a-0123456789abcdef"); err != nil {
		t.Errorf("second Disconnect: %v", err)
	}
	if err := m.Remove(ctx, "net1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "net1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("removed network: %v", err)
	}
	if len(env.links()) != 0 || env.tableExists() {
		t.Errorf("after the last endpoint left: links %v, table %v", env.links(), env.tableExists())
	}
}

// TestTraffic covers connectivity, isolation, outbound NAT, published ports
// from every side and the embedded DNS server in one world, since making it
// is what takes time.
func TestTraffic(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	m := env.m
	env.networks("net1", "net2")
	remote, hostAddr, remoteAddr := env.addRemote()
	primary := primaryAddr(t)

	nsA, a := env.connect("net1", "a")
	nsB, b := env.connect("net1", "b",
		PortMapping{HostPort: 18080, ContainerPort: 80},
		PortMapping{ContainerPort: 81},
		PortMapping{HostPort: 18053, ContainerPort: 53, Protocol: "udp"})
	nsC, c := env.connect("net2", "c")
	nsD, d := env.connect(DefaultNetwork, "d")
	if a.IP == b.IP || !env.subnet(1).Contains(a.IP) || a.Gateway != env.subnet(1).Addr().Next() || a.MAC == "" || a.IfName != "eth0" {
		t.Fatalf("endpoints: %+v %+v", a, b)
	}
	auto := b.Ports[1].HostPort
	if auto == 0 || b.Ports[0].HostPort != 18080 || b.Ports[1].Protocol != "tcp" {
		t.Fatalf("ports: %+v", b.Ports)
	}
	serveTCP(t, nsB, 80, "b:80")
	serveTCP(t, nsB, 81, "b:81")
	serveUDP(t, nsB, 53, "b:53")
	serveTCP(t, remote, 9000, "remote")
	serveTCP(t, nsC, 80, "c:80")

	t.Run("same network", func(t *testing.T) {
		if !ping(t, nsA, b.IP) {
			t.Error("a cannot ping b")
		}
		expectTCP(t, nsA, net.JoinHostPort(b.IP.String(), "80"), "b:80 from "+a.IP.String())
		if !ping(t, nsA, a.Gateway) {
			t.Error("a cannot ping its gateway")
		}
	})
	t.Run("isolation", func(t *testing.T) {
		if ping(t, nsA, c.IP) {
			t.Error("a (net1) reaches c (net2)")
		}
		if ping(t, nsD, b.IP) {
			t.Error("d (bridge) reaches b (net1)")
		}
		if _, err := dialTCP(t, nsA, net.JoinHostPort(c.IP.String(), "80")); err == nil {
			t.Error("a (net1) connects to c:80 (net2)")
		}
	})
	t.Run("outbound NAT", func(t *testing.T) {
		// The other host sees the host's address, not the container's.
		expectTCP(t, nsA, net.JoinHostPort(remoteAddr.String(), "9000"), "remote from "+hostAddr.String())
		expectTCP(t, nsD, net.JoinHostPort(remoteAddr.String(), "9000"), "remote from "+hostAddr.String())
	})
	t.Run("published ports", func(t *testing.T) {
		for _, addr := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), primary, hostAddr} {
			expectTCP(t, "", net.JoinHostPort(addr.String(), "18080"), "b:80")
			expectTCP(t, "", net.JoinHostPort(addr.String(), fmt.Sprint(auto)), "b:81")
		}
		// From another host, the container sees the client's address.
		expectTCP(t, remote, net.JoinHostPort(hostAddr.String(), "18080"), "b:80 from "+remoteAddr.String())
		expectTCP(t, remote, net.JoinHostPort(primary.String(), "18080"), "b:80 from "+remoteAddr.String())
		// From containers: the same network, another one, and b itself
		// (hairpin).
		for _, ns := range []string{nsA, nsC, nsD, nsB} {
			expectTCP(t, ns, net.JoinHostPort(primary.String(), "18080"), "b:80")
		}
		c, err := net.Dial("udp4", "127.0.0.1:18053")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 100)
		_, _ = c.Write([]byte("ping"))
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "b:53 ping" {
			t.Errorf("udp 127.0.0.1:18053: %q, %v", buf[:n], err)
		}
	})
	t.Run("port conflicts", func(t *testing.T) {
		ns := env.newNS("x")
		before := env.links()
		_, err := m.Connect(ctx, "net2", Attach{ContainerID: "x", NetNS: ns, Ports: []PortMapping{{HostPort: 18080, ContainerPort: 80}}})
		if !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("port published twice: %v", err)
		}
		l, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := uint16(l.Addr().(*net.TCPAddr).Port)
		_, err = m.Connect(ctx, "net2", Attach{ContainerID: "x", NetNS: ns, Ports: []PortMapping{{HostPort: port, ContainerPort: 80}}})
		if want := fmt.Sprintf("port %d/tcp is already in use on the host", port); !errors.Is(err, errdefs.ErrConflict) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("port in use by a host socket: %v", err)
		}
		if eps, _ := m.Endpoints(ctx, "net2"); len(eps) != 1 || fmt.Sprint(env.links()) != fmt.Sprint(before) {
			t.Errorf("a failed Connect left endpoints %v, links %v (before %v)", eps, env.links(), before)
		}
	})
	t.Run("DNS", func(t *testing.T) {
		testDNS(t, env, a, b)
		// Not from another network's containers.
		msg := new(dns.Msg).SetQuestion("b.", dns.TypeA)
		var err error
		inNS(t, nsC, func() {
			_, _, err = (&dns.Client{Timeout: 500 * time.Millisecond}).Exchange(msg, net.JoinHostPort(a.Gateway.String(), "53"))
		})
		if err == nil {
			t.Error("c (net2) queries net1's DNS server")
		}
	})
	t.Run("disconnect", func(t *testing.T) {
		if err := m.Disconnect(ctx, "net1", "b-0123456789abcdef"); err != nil {
			t.Fatal(err)
		}
		if _, err := dialTCP(t, "", "127.0.0.1:18080"); err == nil {
			t.Error("port 18080 still published")
		}
		if ping(t, nsA, b.IP) {
			t.Error("b still reachable")
		}
		eps, _ := m.Endpoints(ctx, "net1")
		if len(eps) != 1 || eps[0].Name != "a" {
			t.Errorf("endpoints of net1: %+v", eps)
		}
		n1, _ := m.Get(ctx, "net1")
		pidFile := m.dnsPidFile(n1)
		rec, ok := readPidFile(pidFile)
		if !ok {
			t.Fatal("no DNS server for net1")
		}
		for _, e := range []*Endpoint{a, c, d} {
			if err := m.Disconnect(ctx, e.Network, e.ContainerID); err != nil {
				t.Fatal(err)
			}
		}
		if rec.alive() {
			t.Errorf("DNS server %d still runs", rec.pid)
		}
		if _, err := os.Stat(pidFile); err == nil {
			t.Error("DNS pid file remains")
		}
		if l := env.links(); len(l) != 1 || l[0] != env.s.Prefix+"r" { // the remote's
			t.Errorf("links remain: %v", l)
		}
		if env.tableExists() {
			t.Error("nftables table remains")
		}
	})
}

func testDNS(t *testing.T, env *testEnv, a, b *Endpoint) {
	ctx := context.Background()
	server, ok := env.m.Nameserver(ctx, "net1")
	if !ok {
		t.Fatal("net1 has no nameserver")
	}
	addr := net.JoinHostPort(server.String(), "53")
	query := func(proto, name string, qtype uint16) (*dns.Msg, error) {
		msg := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
		resp, _, err := (&dns.Client{Net: proto, Timeout: 2 * time.Second}).Exchange(msg, addr)
		return resp, err
	}
	expectA := func(proto, name string, want ...netip.Addr) {
		t.Helper()
		resp, err := query(proto, name, dns.TypeA)
		if err != nil {
			t.Errorf("%s %s: %v", proto, name, err)
			return
		}
		var got []string
		for _, rr := range resp.Answer {
			if a, ok := rr.(*dns.A); ok {
				got = append(got, a.A.String())
			}
		}
		var w []string
		for _, a := range want {
			w = append(w, a.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s %s: %v (rcode %s), want %v", proto, name, got, dns.RcodeToString[resp.Rcode], w)
		}
	}
	expectA("udp", "b", b.IP)
	expectA("tcp", "B.net1", b.IP)
	expectA("udp", "a", a.IP)
	expectA("udp", "a-0123456789", a.IP) // the short container ID
	if resp, err := query("udp", "b", dns.TypeAAAA); err != nil || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Errorf("AAAA b: %v, %v", resp, err)
	}

	// A container joining later, with an alias, is found without a restart.
	ns := env.newNS("e")
	e, err := env.m.Connect(ctx, "net1", Attach{ContainerID: "e-0123456789abcdef", Name: "e", Aliases: []string{"db", "web"}, NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	expectA("udp", "db", e.IP)
	expectA("udp", "web.net1", e.IP)

	// Other names go to the host's nameservers: here a fake one on the
	// default network's gateway (a host address that is not loopback).
	up := fakeUpstream(t, env)
	resolvConf := filepath.Join(env.s.StateDir, "resolv.conf.test")
	if err := os.WriteFile(resolvConf, []byte("# test\nnameserver 127.0.0.53\nnameserver "+up.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &resolver{timeout: time.Second}
	r.setUpstreams(resolvConf)
	if fmt.Sprint(r.upstreams) != "["+up.String()+":53]" {
		t.Errorf("upstreams %v: loopback ones are used only alone", r.upstreams)
	}
	// The running server reads /etc/resolv.conf; query a second one made
	// from the test's file.
	srv := startResolver(t, env, resolvConf)
	for _, proto := range []string{"udp", "tcp"} {
		msg := new(dns.Msg).SetQuestion("example.test.", dns.TypeA)
		resp, _, err := (&dns.Client{Net: proto, Timeout: 2 * time.Second}).Exchange(msg, srv)
		if err != nil || len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.99" {
			t.Errorf("%s forwarded query: %v, %v", proto, resp, err)
		}
	}
	if err := env.m.Disconnect(ctx, "net1", e.ContainerID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, err := query("udp", "db", dns.TypeA)
		if err == nil && len(resp.Answer) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("db still resolves after its container left: %v", resp)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fakeUpstream serves example.test → 192.0.2.99 on the default network's
// gateway, port 53, and returns that address.
func fakeUpstream(t *testing.T, env *testEnv) netip.Addr {
	t.Helper()
	def, _ := env.m.Get(context.Background(), DefaultNetwork)
	addr := net.JoinHostPort(def.Gateway.String(), "53")
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg).SetReply(req)
		if req.Question[0].Name == "example.test." {
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
				A:   net.ParseIP("192.0.2.99"),
			})
		} else {
			resp.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(resp)
	})
	for _, proto := range []string{"udp", "tcp"} {
		srv := &dns.Server{Addr: addr, Net: proto, Handler: h}
		started := make(chan error, 1)
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() { started <- srv.ListenAndServe() }()
		if err := <-started; err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return def.Gateway
}

// startResolver serves net1's records and forwards with resolvConf on a
// loopback port, in this process, and returns its address.
func startResolver(t *testing.T, env *testEnv, resolvConf string) string {
	t.Helper()
	st, err := env.m.read()
	if err != nil {
		t.Fatal(err)
	}
	r := &resolver{timeout: 2 * time.Second}
	r.setEndpoints("net1", st.endpointsOf("net1"))
	r.setUpstreams(resolvConf)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: r}, {Listener: l, Handler: r}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	time.Sleep(50 * time.Millisecond)
	return pc.LocalAddr().String()
}
