package network

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The patterns compile on first use: every berth process, each monitor
// too, runs all package initialisers at start.
var (
	nameRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })
	prefixRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`) })
	ifnameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`) })
)

// privateRanges are the subnets a network may use: RFC 1918, shared
// address space (RFC 6598) and the benchmarking range (RFC 2544).
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("198.18.0.0/15"),
}

func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("network name is empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(name) > 128 || !nameRE().MatchString(name) {
		return fmt.Errorf("network name %q is invalid: use letters, digits, '_', '.' and '-', starting with a letter or digit: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

func validatePrefix(p string) error {
	if !prefixRE().MatchString(p) {
		return fmt.Errorf("network prefix %q is invalid: 1 to 10 lowercase letters and digits, starting with a letter: %w", p, errdefs.ErrInvalidArgument)
	}
	return nil
}

func validateSubnet(p netip.Prefix) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("subnet %s: only IPv4 subnets are supported: %w", p, errdefs.ErrInvalidArgument)
	}
	if p.Masked() != p {
		return fmt.Errorf("subnet %s has host bits set; did you mean %s?: %w", p, p.Masked(), errdefs.ErrInvalidArgument)
	}
	if p.Bits() > 30 || p.Bits() < 8 {
		return fmt.Errorf("subnet %s: the prefix length must be between /8 and /30: %w", p, errdefs.ErrInvalidArgument)
	}
	for _, r := range privateRanges {
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return nil
		}
	}
	return fmt.Errorf("subnet %s is not in a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, 198.18.0.0/15): %w", p, errdefs.ErrInvalidArgument)
}

func validateGateway(subnet netip.Prefix, gw netip.Addr) error {
	if !subnet.Contains(gw) || gw == subnet.Addr() || gw == lastAddr(subnet) {
		return fmt.Errorf("gateway %s is not a host address of subnet %s: %w", gw, subnet, errdefs.ErrInvalidArgument)
	}
	return nil
}

func validateIfName(name string) error {
	if !ifnameRE().MatchString(name) || name == "lo" {
		return fmt.Errorf("interface name %q is invalid: up to 15 letters, digits, '_', '.' or '-': %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// validateHostName checks a container name or alias that DNS will answer
// for.
func validateHostName(what, name string) error {
	if len(name) > 253 || !nameRE().MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("%s %q is invalid: use letters, digits, '_', '.' and '-': %w", what, name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// normalizePorts fills in protocols and checks a container's port
// mappings, including against each other.
func normalizePorts(ports []PortMapping) ([]PortMapping, error) {
	out := make([]PortMapping, len(ports))
	for i, p := range ports {
		p.Protocol = strings.ToLower(p.Protocol)
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return nil, fmt.Errorf("port %s: protocol must be tcp or udp: %w", p, errdefs.ErrInvalidArgument)
		}
		if p.ContainerPort == 0 {
			return nil, fmt.Errorf("port %s: container port 0: %w", p, errdefs.ErrInvalidArgument)
		}
		if p.HostIP.IsValid() {
			p.HostIP = p.HostIP.Unmap()
			if !p.HostIP.Is4() {
				return nil, fmt.Errorf("port %s: only IPv4 host addresses are supported: %w", p, errdefs.ErrInvalidArgument)
			}
			if p.HostIP.IsUnspecified() {
				p.HostIP = netip.Addr{}
			}
		}
		for _, q := range out[:i] {
			if p.HostPort != 0 && q.HostPort == p.HostPort && q.Protocol == p.Protocol && ipsOverlap(p.HostIP, q.HostIP) {
				return nil, fmt.Errorf("port %d/%s is published twice: %w", p.HostPort, p.Protocol, errdefs.ErrInvalidArgument)
			}
		}
		out[i] = p
	}
	return out, nil
}

// ipsOverlap reports whether two host addresses of port mappings (zero
// meaning all) can receive the same packets.
func ipsOverlap(a, b netip.Addr) bool {
	return !a.IsValid() || !b.IsValid() || a == b
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func addN(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// allocate returns the first free host address of n after last, wrapping
// around; the gateway and the addresses in used are taken.
func allocate(n *Network, used map[netip.Addr]bool, last netip.Addr) (netip.Addr, error) {
	first, end := n.Subnet.Addr().Next(), lastAddr(n.Subnet)
	a := first
	if last.IsValid() && n.Subnet.Contains(last) && last.Next() != end {
		a = last.Next()
	}
	if a == n.Subnet.Addr() {
		a = first
	}
	start := a
	for {
		if a != n.Gateway && !used[a] {
			return a, nil
		}
		if a = a.Next(); a == end {
			a = first
		}
		if a == start {
			return netip.Addr{}, fmt.Errorf("network %s: no free address left in %s: %w", n.Name, n.Subnet, errdefs.ErrUnavailable)
		}
	}
}
