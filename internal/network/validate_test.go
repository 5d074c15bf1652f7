package network

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"web": true, "my_net.1-a": true, "0net": true,
		"": false, "-net": false, "_x": false, "a b": false, "a/b": false, "ünï": false,
	} {
		if err := validateName(name); (err == nil) != ok {
			t.Errorf("validateName(%q) = %v, want ok=%v", name, err, ok)
		} else if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("validateName(%q): %v is not InvalidArgument", name, err)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for p, ok := range map[string]bool{"berth": true, "bt1a2b": true, "abcdefghij": true,
		"abcdefghijk": false, "1bt": false, "Bt": false, "b-t": false} {
		if err := validatePrefix(p); (err == nil) != ok {
			t.Errorf("validatePrefix(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

func TestValidateSubnet(t *testing.T) {
	for s, ok := range map[string]bool{
		"10.88.0.0/16": true, "172.20.0.0/24": true, "192.168.5.0/30": true, "100.64.0.0/10": true,
		"10.88.0.1/16": false, // host bits
		"10.0.0.0/31":  false, // too small
		"8.8.8.0/24":   false, // public
		"127.0.0.0/8":  false,
		"0.0.0.0/0":    false,
		"fd00::/64":    false,
		"172.0.0.0/8":  false, // wider than 172.16/12
	} {
		if err := validateSubnet(netip.MustParsePrefix(s)); (err == nil) != ok {
			t.Errorf("validateSubnet(%s) = %v, want ok=%v", s, err, ok)
		}
	}
	sub := netip.MustParsePrefix("10.1.2.0/24")
	for g, ok := range map[string]bool{"10.1.2.1": true, "10.1.2.254": true, "10.1.2.0": false, "10.1.2.255": false, "10.1.3.1": false} {
		if err := validateGateway(sub, netip.MustParseAddr(g)); (err == nil) != ok {
			t.Errorf("validateGateway(%s) = %v, want ok=%v", g, err, ok)
		}
	}
}

func TestAllocate(t *testing.T) {
	n := &Network{Name: "n", Subnet: netip.MustParsePrefix("10.1.2.0/29"), Gateway: netip.MustParseAddr("10.1.2.1")}
	a := netip.MustParseAddr
	used := map[netip.Addr]bool{}
	var got []string
	last := netip.Addr{}
	for range 5 {
		ip, err := allocate(n, used, last)
		if err != nil {
			t.Fatal(err)
		}
		used[ip], last = true, ip
		got = append(got, ip.String())
	}
	want := []string{"10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocations %v, want %v", got, want)
		}
	}
	if _, err := allocate(n, used, last); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("full subnet: %v", err)
	}
	// A released address is not reused while others are free: allocation
	// goes on after the last one and wraps around.
	delete(used, a("10.1.2.3"))
	delete(used, a("10.1.2.6"))
	if ip, _ := allocate(n, used, a("10.1.2.4")); ip != a("10.1.2.6") {
		t.Errorf("after .4: %s, want 10.1.2.6", ip)
	}
	if ip, _ := allocate(n, used, a("10.1.2.6")); ip != a("10.1.2.3") {
		t.Errorf("after .6: %s, want 10.1.2.3 (wrapped)", ip)
	}
	// Gateway elsewhere than first.
	n.Gateway = a("10.1.2.6")
	if ip, _ := allocate(n, map[netip.Addr]bool{}, a("10.1.2.5")); ip != a("10.1.2.1") {
		t.Errorf("gateway .6: %s, want 10.1.2.1", ip)
	}
}

func TestNormalizePorts(t *testing.T) {
	p, err := normalizePorts([]PortMapping{{HostPort: 80, ContainerPort: 80}, {HostPort: 80, ContainerPort: 80, Protocol: "UDP"}})
	if err != nil || p[0].Protocol != "tcp" || p[1].Protocol != "udp" {
		t.Fatalf("%v %v", p, err)
	}
	for _, bad := range [][]PortMapping{
		{{HostPort: 80, ContainerPort: 0}},
		{{HostPort: 80, ContainerPort: 80, Protocol: "sctp"}},
		{{HostPort: 80, ContainerPort: 80}, {HostPort: 80, ContainerPort: 81}},
		{{HostIP: netip.MustParseAddr("::1"), HostPort: 80, ContainerPort: 80}},
	} {
		if _, err := normalizePorts(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("normalizePorts(%v) = %v, want InvalidArgument", bad, err)
		}
	}
	// Different host addresses may share a port.
	if _, err := normalizePorts([]PortMapping{
		{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 80, ContainerPort: 80},
		{HostIP: netip.MustParseAddr("127.0.0.2"), HostPort: 80, ContainerPort: 81},
	}); err != nil {
		t.Error(err)
	}
}

func TestResolverRecords(t *testing.T) {
	r := &resolver{}
	r.setEndpoints("Net1", []*endpoint{
		{Endpoint: Endpoint{ContainerID: "0123456789abcdef", Name: "Web", Aliases: []string{"www"}, IP: netip.MustParseAddr("10.1.2.3")}},
		{Endpoint: Endpoint{ContainerID: "fedcba9876543210", Name: "web2", Aliases: []string{"www"}, IP: netip.MustParseAddr("10.1.2.4")}},
	})
	for name, n := range map[string]int{"web": 1, "web.net1": 1, "www": 2, "0123456789ab": 1, "www.net1": 2, "db": 0} {
		if got := len(r.names[name]); got != n {
			t.Errorf("%s: %d addresses, want %d", name, got, n)
		}
	}
	if p := r.ptrs["3.2.1.10.in-addr.arpa."]; len(p) != 1 || p[0] != "Web." {
		t.Errorf("PTR: %v", p)
	}
}
