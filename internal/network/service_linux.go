package network

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SetService creates or replaces the service (Network, Name) and returns it
// as stored. The first call allocates the VIP from the network's subnet (an
// address no container has or will get); later calls keep it and replace
// Namespace, Ports and Backends. Backends not connected to the network are
// dropped. The rules change in one nftables transaction, and the VIP is an
// address of the network's bridge while the bridge exists, so that it
// answers ARP.
//
// An unknown network fails with errdefs.ErrNotFound; a host port published
// by a container or another service, or in use by a host socket, with
// errdefs.ErrConflict; a full subnet with errdefs.ErrUnavailable; bad input
// with errdefs.ErrInvalidArgument.
func (m *Manager) SetService(ctx context.Context, s Service) (*Service, error) {
	s, err := normalizeService(s)
	if err != nil {
		return nil, err
	}
	var out Service
	err = m.update(ctx, func(st *state) error {
		n, err := st.find(s.Network)
		if err != nil {
			return err
		}
		s.Network = n.Name
		old := st.service(n.Name, s.Name)
		if err := st.checkHostPorts(s.Name, s.Ports, func(o *Service) bool { return o == old }); err != nil {
			return err
		}
		var backends []string
		for _, id := range s.Backends {
			if st.endpoint(n.Name, id) != nil && !slices.Contains(backends, id) {
				backends = append(backends, id)
			}
		}
		s.Backends = backends

		var prev Service
		var gone []netip.Addr // backends that leave, for forgetUDPFlows
		if old != nil {
			now := st.backendAddrs(&s)
			for _, a := range st.backendAddrs(old) {
				if !slices.Contains(now, a) {
					gone = append(gone, a)
				}
			}
			prev = old.clone()
			s.VIP = old.VIP
			*old = s
		} else {
			if st.LastIP == nil {
				st.LastIP = map[string]netip.Addr{}
			}
			vip, err := allocate(n, st.usedAddrs(n.Name), st.LastIP[n.ID])
			if err != nil {
				return fmt.Errorf("service %s: %w", s.Name, err)
			}
			st.LastIP[n.ID] = vip
			s.VIP = vip
			c := s.clone()
			st.Services = append(st.Services, &c)
		}
		// Stored before any host object exists, so that RemoveService can
		// undo what a dead process made.
		if err := m.write(st); err != nil {
			return err
		}
		herr := addVIPs(n, []netip.Addr{s.VIP})
		if herr == nil {
			herr = m.applyRules(st)
		}
		if herr != nil {
			if old != nil {
				*old = prev
			} else {
				st.removeService(st.service(n.Name, s.Name))
				if err := delVIP(n, s.VIP); err != nil {
					herr = errors.Join(herr, fmt.Errorf("undo: %w", err))
				}
			}
			if err := m.applyRules(st); err != nil {
				herr = errors.Join(herr, fmt.Errorf("undo: %w", err))
			} else if err := m.write(st); err != nil {
				herr = errors.Join(herr, fmt.Errorf("undo: %w", err))
			}
			return fmt.Errorf("service %s: %w", s.Name, herr)
		}
		if err := forgetUDPFlows(gone); err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
		out = st.service(n.Name, s.Name).clone()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// CheckHostPorts fails as SetService would if service name published
// ports on the host: with errdefs.ErrConflict if a container, another
// service, or a host socket holds one of them; ports the service publishes
// already (on any network) are its own.
func (m *Manager) CheckHostPorts(ctx context.Context, name string, ports []ServicePort) error {
	st, err := m.load(ctx)
	if err != nil {
		return err
	}
	return st.checkHostPorts(name, ports, func(o *Service) bool { return o.Name == name })
}

// checkHostPorts checks the host ports of service name against what
// publishes them already, apart from the services mine reports as the
// same one, and against host sockets.
func (st *state) checkHostPorts(name string, ports []ServicePort, mine func(*Service) bool) error {
	for _, p := range ports {
		if p.HostPort == 0 {
			continue
		}
		p.Protocol = strings.ToLower(cmp.Or(p.Protocol, "tcp"))
		if h := st.portHolder(p.published(), mine); h != "" {
			return fmt.Errorf("service %s: port %d/%s is already published by %s: %w", name, p.HostPort, p.Protocol, h, errdefs.ErrConflict)
		}
		// A port the service holds already has no host socket, but DNAT
		// rules that a probe would not see.
		if slices.ContainsFunc(st.Services, func(o *Service) bool {
			return mine(o) && slices.ContainsFunc(o.Ports, func(q ServicePort) bool {
				return q.HostPort == p.HostPort && q.Protocol == p.Protocol && q.HostIP == p.HostIP
			})
		}) {
			continue
		}
		if _, err := probePort(p.HostIP, p.HostPort, p.Protocol); err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
	}
	return nil
}

// RemoveService removes a service's rules, record and VIP. Removing what
// does not exist, on a network that may not exist either, is no error.
func (m *Manager) RemoveService(ctx context.Context, network, name string) error {
	return m.update(ctx, func(st *state) error {
		n, err := st.find(network)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		s := st.service(n.Name, name)
		if s == nil {
			return nil
		}
		st.removeService(s)
		if err := m.applyRules(st); err != nil {
			return err
		}
		return delVIP(n, s.VIP)
	})
}

// ServiceFor returns the service port that dst names — dst as
// SO_ORIGINAL_DST gives it for a redirected connection: a VIP and one of
// its ports (Port), or a host address and a published host port
// (HostPort; a port published on every address matches any local
// address, one with a HostIP only that address) — with the addresses of
// its backends now. Only TCP ports match, as only TCP is redirected. None
// matches: errdefs.ErrNotFound.
func (m *Manager) ServiceFor(ctx context.Context, dst netip.AddrPort) (*Target, error) {
	st, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	s, p, ok := st.serviceFor(dst, isLocal)
	if !ok {
		return nil, fmt.Errorf("service at %s: %w", dst, errdefs.ErrNotFound)
	}
	return &Target{Service: s.clone(), Port: p, Backends: st.backendAddrs(s)}, nil
}

// isLocal reports whether the host routes a to itself, as "fib daddr type
// local" does in the rules.
func isLocal(a netip.Addr) bool {
	rs, err := netlink.RouteGet(a.AsSlice())
	return err == nil && len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL
}

// forgetUDPFlows deletes the conntrack entries of UDP flows DNATed to
// addrs. A UDP flow lives on while its packets keep coming, and would keep
// reaching a backend that left its service, or an address given to another
// container since; TCP connections end on their own.
func forgetUDPFlows(addrs []netip.Addr) error {
	if len(addrs) == 0 {
		return nil
	}
	_, err := netlink.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, udpFlowsTo(addrs))
	if err != nil {
		return fmt.Errorf("conntrack: %w", err)
	}
	return nil
}

// udpFlowsTo matches UDP flows whose destination was rewritten to one of
// its addresses.
type udpFlowsTo []netip.Addr

func (f udpFlowsTo) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP || flow.Forward.DstIP.Equal(flow.Reverse.SrcIP) {
		return false
	}
	a, ok := netip.AddrFromSlice(flow.Reverse.SrcIP)
	return ok && slices.Contains(f, a.Unmap())
}

// addVIPs makes the VIPs /32 addresses of n's bridge, if it exists.
func addVIPs(n *Network, vips []netip.Addr) error {
	if len(vips) == 0 {
		return nil
	}
	br, err := existingLink(n.Bridge)
	if br == nil {
		return err
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(br, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("bridge %s: addresses: %w", n.Bridge, err)
	}
	for _, vip := range vips {
		if slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
			ones, _ := a.Mask.Size()
			return ones == 32 && a.IP.Equal(vip.AsSlice())
		}) {
			continue
		}
		if err := netlink.AddrReplace(br, &netlink.Addr{IPNet: ipNet(vip, 32)}); err != nil {
			return fmt.Errorf("bridge %s: service address %s: %w", n.Bridge, vip, err)
		}
	}
	return nil
}

// delVIP removes a VIP from n's bridge; a missing bridge or address is no
// error.
func delVIP(n *Network, vip netip.Addr) error {
	br, err := existingLink(n.Bridge)
	if br == nil {
		return err
	}
	err = netlink.AddrDel(br, &netlink.Addr{IPNet: ipNet(vip, 32)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("bridge %s: service address %s: %w", n.Bridge, vip, err)
	}
	return nil
}

// serviceVIPs are the VIPs of the services on a network.
func (st *state) serviceVIPs(network string) []netip.Addr {
	var out []netip.Addr
	for _, s := range st.servicesOf(network) {
		out = append(out, s.VIP)
	}
	return out
}
