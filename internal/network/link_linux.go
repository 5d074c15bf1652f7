package network

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// dump runs a netlink dump again, a few times, while the kernel says that
// a change made meanwhile (another container's veth, say) may have left it
// incomplete.
func dump[T any](list func() ([]T, error)) ([]T, error) {
	for range 4 {
		if ts, err := list(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return ts, err
		}
	}
	return list()
}

// hostRoutes returns the host's IPv4 routes in all tables but local.
func hostRoutes() ([]route, error) {
	rs, err := dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("host routes: %w", err)
	}
	names := map[int]string{}
	var out []route
	for _, r := range rs {
		if r.Dst == nil || r.Table == unix.RT_TABLE_LOCAL {
			continue
		}
		p, ok := netipPrefix(r.Dst)
		if !ok {
			continue
		}
		dev, seen := names[r.LinkIndex]
		if !seen {
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				dev = l.Attrs().Name
			}
			names[r.LinkIndex] = dev
		}
		out = append(out, route{dst: p, dev: dev})
	}
	return out, nil
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits).Masked(), true
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

// ensureBridge makes n's bridge exist and be up with the gateway address,
// and turns on what forwarding and published ports need.
func ensureBridge(n *Network) error {
	l, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
		// A fixed address: a bridge otherwise takes the lowest of its
		// ports' and changes it as containers come and go.
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, HardwareAddr: randomMAC()}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("bridge %s: create: %w", n.Bridge, err)
		}
		if l, err = netlink.LinkByName(n.Bridge); err != nil {
			return fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	}
	if l.Type() != "bridge" {
		return fmt.Errorf("network %s: host device %s exists and is a %s, not a bridge: %w", n.Name, n.Bridge, l.Type(), errdefs.ErrConflict)
	}
	// IPv6 would give containers link-local addresses and router
	// solicitations that nothing here answers.
	_ = writeSysctl("net/ipv6/conf/"+n.Bridge+"/disable_ipv6", "1")
	if err := netlink.AddrReplace(l, &netlink.Addr{IPNet: ipNet(n.Gateway, n.Subnet.Bits())}); err != nil {
		return fmt.Errorf("bridge %s: address %s: %w", n.Bridge, n.Gateway, err)
	}
	// Packets to 127.0.0.1 that the output chain sends to a container leave
	// through the bridge with source 127.0.0.1; route_localnet lets them.
	if err := writeSysctl("net/ipv4/conf/"+n.Bridge+"/route_localnet", "1"); err != nil {
		return err
	}
	if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("bridge %s: up: %w", n.Bridge, err)
	}
	return nil
}

// existingLink returns the host device called name, nil if there is none.
func existingLink(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return l, nil
}

// removeLink deletes a host device; a missing one is no error.
func removeLink(name string) error {
	l, err := existingLink(name)
	if l == nil {
		return err
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("link %s: delete: %w", name, err)
	}
	return nil
}

func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", key)
	if cur, err := os.ReadFile(p); err == nil && string(cur) == value+"\n" {
		return nil
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s: %w", key, err)
	}
	return nil
}

func randomMAC() net.HardwareAddr {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	b[0] = b[0]&0xfe | 0x02 // unicast, locally administered
	return b
}

// hostVethName returns a free name <prefix>v<hex> for a host veth end.
func hostVethName(prefix string) string {
	for {
		name := prefix + "v" + randomHex(8)[:15-len(prefix)-1]
		if _, err := netlink.LinkByName(name); err != nil {
			return name
		}
	}
}

// plugVeth makes e's veth pair: the host end on n's bridge, the container
// end named e.IfName in the namespace with the endpoint's address, a
// default route via the gateway, and lo up. It fills in e.MAC.
func plugVeth(n *Network, e *endpoint) error {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	ns, err := netns.GetFromPath(e.NetNS)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", e.NetNS, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", e.NetNS, err)
	}
	defer h.Close()
	if _, err := h.LinkByName(e.IfName); err == nil {
		return fmt.Errorf("container %s: interface %s already exists in its network namespace: %w", short(e.ContainerID), e.IfName, errdefs.ErrConflict)
	}
	// The container end is made in the namespace under its final name, so
	// it never shows on the host.
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: e.HostVeth, MasterIndex: br.Attrs().Index, MTU: br.Attrs().MTU},
		PeerName:      e.IfName,
		PeerNamespace: netlink.NsFd(ns),
	}
	if veth.MTU == 0 {
		veth.MTU = 1500
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s: create: %w", e.HostVeth, err)
	}
	host, err := netlink.LinkByName(e.HostVeth)
	if err != nil {
		return fmt.Errorf("veth %s: %w", e.HostVeth, err)
	}
	// Hairpin: a container reaching its own published port comes back
	// through the port it left by.
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("veth %s: hairpin: %w", e.HostVeth, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("veth %s: up: %w", e.HostVeth, err)
	}
	peer, err := h.LinkByName(e.IfName)
	if err != nil {
		return fmt.Errorf("container %s: interface %s: %w", short(e.ContainerID), e.IfName, err)
	}
	if err := h.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(e.IP, e.Prefix)}); err != nil {
		return fmt.Errorf("container %s: address %s: %w", short(e.ContainerID), e.IP, err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fmt.Errorf("container %s: %s up: %w", short(e.ContainerID), e.IfName, err)
	}
	if err := upLoopback(h); err != nil {
		return err
	}
	// A container on several networks keeps the first one's default route,
	// as with Docker.
	def := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: e.Gateway.AsSlice()}
	if err := h.RouteAdd(def); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("container %s: default route via %s: %w", short(e.ContainerID), e.Gateway, err)
	}
	e.MAC = peer.Attrs().HardwareAddr.String()
	return nil
}

func upLoopback(h *netlink.Handle) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}
