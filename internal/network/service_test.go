package network

import (
	"net/netip"
	"strconv"
	"testing"
)

func TestServiceFor(t *testing.T) {
	st := &state{Services: []*Service{
		{Name: "web", Network: "n1", VIP: netip.MustParseAddr("10.1.0.5"), Ports: []ServicePort{
			{Protocol: "tcp", Port: 80, TargetPort: 8080, HostPort: 8080},
			{Protocol: "udp", Port: 53, TargetPort: 5353, HostPort: 5353},
		}},
		{Name: "api", Network: "n2", VIP: netip.MustParseAddr("10.2.0.5"), Ports: []ServicePort{
			{Protocol: "tcp", Port: 443, TargetPort: 8443, HostPort: 9443, HostIP: netip.MustParseAddr("192.0.2.7")},
		}},
	}}
	local := func(a netip.Addr) bool {
		return a.IsLoopback() || a == netip.MustParseAddr("192.0.2.7") || a == netip.MustParseAddr("192.0.2.8")
	}
	for dst, want := range map[string]string{
		"10.1.0.5:80":          "web 80",
		"127.0.0.1:8080":       "web 80",
		"192.0.2.8:8080":       "web 80",
		"192.0.2.7:9443":       "api 443",
		"10.2.0.5:443":         "api 443",
		"[::ffff:10.1.0.5]:80": "web 80",
		"10.1.0.5:8080":        "", // a VIP has its own ports only
		"10.1.0.5:53":          "", // UDP is never redirected
		"127.0.0.1:5353":       "",
		"127.0.0.1:9443":       "", // published on another address
		"198.51.100.1:8080":    "", // not the host's
		"10.2.0.5:80":          "",
	} {
		s, p, ok := st.serviceFor(netip.MustParseAddrPort(dst), local)
		got := ""
		if ok {
			got = s.Name + " " + strconv.Itoa(int(p.Port))
		}
		if got != want {
			t.Errorf("serviceFor(%s) = %q, want %q", dst, got, want)
		}
	}
}
