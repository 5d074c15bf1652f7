package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Connect attaches a container's network namespace to a network: it makes
// the bridge if needed, allocates an address, plugs a veth pair, publishes
// the ports and starts the network's DNS server. Whatever it made is undone
// if it fails; if the process dies half-way, Disconnect cleans up.
func (m *Manager) Connect(ctx context.Context, network string, a Attach) (*Endpoint, error) {
	if a.ContainerID == "" {
		return nil, fmt.Errorf("connect: no container ID: %w", errdefs.ErrInvalidArgument)
	}
	if a.IfName == "" {
		a.IfName = "eth0"
	}
	if err := validateIfName(a.IfName); err != nil {
		return nil, err
	}
	if a.Name != "" {
		if err := validateHostName("container name", a.Name); err != nil {
			return nil, err
		}
	}
	for _, al := range a.Aliases {
		if err := validateHostName("network alias", al); err != nil {
			return nil, err
		}
	}
	if a.NetNS == "" {
		return nil, fmt.Errorf("container %s: no network namespace: %w", short(a.ContainerID), errdefs.ErrInvalidArgument)
	}
	if _, err := os.Stat(a.NetNS); err != nil {
		return nil, fmt.Errorf("container %s: network namespace: %w", short(a.ContainerID), err)
	}
	ports, err := normalizePorts(a.Ports)
	if err != nil {
		return nil, err
	}
	var out Endpoint
	err = m.update(ctx, func(st *state) error {
		n, err := st.find(network)
		if err != nil {
			return err
		}
		if st.endpoint(n.Name, a.ContainerID) != nil {
			return fmt.Errorf("container %s is already connected to network %s: %w", short(a.ContainerID), n.Name, errdefs.ErrAlreadyExists)
		}
		if ports, err = reservePorts(st, ports); err != nil {
			return err
		}
		// Service VIPs are taken too.
		used := st.usedAddrs(n.Name)
		if st.LastIP == nil {
			st.LastIP = map[string]netip.Addr{}
		}
		ip, err := allocate(n, used, st.LastIP[n.ID])
		if err != nil {
			return err
		}
		st.LastIP[n.ID] = ip
		e := &endpoint{
			Endpoint: Endpoint{
				Network: n.Name, ContainerID: a.ContainerID, Name: a.Name,
				Aliases: append([]string(nil), a.Aliases...), IfName: a.IfName,
				IP: ip, Prefix: n.Subnet.Bits(), Gateway: n.Gateway, Ports: ports,
			},
			NetNS:    a.NetNS,
			HostVeth: hostVethName(m.s.Prefix),
		}
		// Stored before any host object exists, so that Disconnect can
		// undo what a dead process made.
		st.Endpoints = append(st.Endpoints, e)
		if err := m.write(st); err != nil {
			return err
		}
		if err := m.plug(st, n, e); err != nil {
			if uerr := m.release(st, n, e); uerr != nil {
				err = errors.Join(err, fmt.Errorf("undo: %w", uerr))
			} else if uerr := m.write(st); uerr != nil {
				err = errors.Join(err, fmt.Errorf("undo: %w", uerr))
			}
			return err
		}
		out = e.public()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func (m *Manager) plug(st *state, n *Network, e *endpoint) error {
	if err := ensureBridge(n); err != nil {
		return err
	}
	// A bridge made anew needs the network's service addresses.
	if err := addVIPs(n, st.serviceVIPs(n.Name)); err != nil {
		return err
	}
	if err := plugVeth(n, e); err != nil {
		return err
	}
	if err := m.applyRules(st); err != nil {
		return err
	}
	if n.DNS {
		return m.ensureDNS(n)
	}
	return nil
}

// Disconnect detaches a container from a network: it removes the veth
// pair, the endpoint's rules and its address, and, with the network's last
// endpoint, the bridge and the DNS server. Disconnecting what is not
// connected is no error.
func (m *Manager) Disconnect(ctx context.Context, network, containerID string) error {
	return m.update(ctx, func(st *state) error {
		n, err := st.find(network)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		e := st.endpoint(n.Name, containerID)
		if e == nil {
			return nil
		}
		return m.release(st, n, e)
	})
}

// release undoes what plug made for e (or any part of it) and drops e from
// st.
func (m *Manager) release(st *state, n *Network, e *endpoint) error {
	// Deleting a link costs tens of milliseconds (the kernel waits for a
	// grace period). When the container's namespace is gone already, the
	// kernel deletes both ends of the veth pair with it, in the
	// background.
	if _, err := os.Stat(e.NetNS); err == nil || e.NetNS == "" {
		if err := removeLink(e.HostVeth); err != nil {
			return err
		}
	}
	st.removeEndpoint(e)
	// The rules below must not send service traffic to a released address.
	backend := st.dropBackend(n.Name, e.ContainerID)
	if len(st.endpointsOf(n.Name)) == 0 {
		if err := m.teardownNetwork(n); err != nil {
			return err
		}
	}
	if err := m.applyRules(st); err != nil {
		return err
	}
	if backend {
		return forgetUDPFlows([]netip.Addr{e.IP})
	}
	return nil
}

// teardownNetwork removes the host objects of a network without endpoints.
func (m *Manager) teardownNetwork(n *Network) error {
	m.stopDNS(n)
	return removeLink(n.Bridge)
}

// reservePorts checks that the host ports of a new endpoint are free, both
// among published ports (of containers and services) and host sockets, and
// picks free ports for those with HostPort 0.
func reservePorts(st *state, ports []PortMapping) ([]PortMapping, error) {
	out := make([]PortMapping, 0, len(ports))
	for _, p := range ports {
		if p.HostPort != 0 {
			if h := st.portHolder(p, nil); h != "" {
				return nil, fmt.Errorf("port %d/%s is already published by %s: %w", p.HostPort, p.Protocol, h, errdefs.ErrConflict)
			}
			if _, err := probePort(p.HostIP, p.HostPort, p.Protocol); err != nil {
				return nil, err
			}
			out = append(out, p)
			continue
		}
		for tries := 0; ; tries++ {
			port, err := probePort(p.HostIP, 0, p.Protocol)
			if err != nil {
				return nil, err
			}
			p.HostPort = port
			taken := st.portHolder(p, nil) != ""
			for _, q := range out {
				taken = taken || q.HostPort == p.HostPort && q.Protocol == p.Protocol
			}
			for _, q := range ports {
				taken = taken || q.HostPort == p.HostPort && q.Protocol == p.Protocol
			}
			if !taken {
				break
			}
			if tries == 100 {
				return nil, fmt.Errorf("no free host port for %d/%s: %w", p.ContainerPort, p.Protocol, errdefs.ErrUnavailable)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// probePort binds a host socket to ip:port (all addresses for a zero ip)
// and returns the bound port: a port in use by a host program would be
// shadowed by the published one.
func probePort(ip netip.Addr, port uint16, proto string) (uint16, error) {
	host := "0.0.0.0"
	if ip.IsValid() {
		host = ip.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	var bound net.Addr
	var err error
	if proto == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp4", addr); err == nil {
			bound = c.LocalAddr()
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", addr); err == nil {
			bound = l.Addr()
			l.Close()
		}
	}
	switch {
	case err == nil:
		_, p, _ := net.SplitHostPort(bound.String())
		n, _ := strconv.Atoi(p)
		return uint16(n), nil
	case errors.Is(err, unix.EADDRINUSE):
		return 0, fmt.Errorf("port %d/%s is already in use on the host: %w", port, proto, errdefs.ErrConflict)
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return 0, fmt.Errorf("host address %s is not an address of this host: %w", host, errdefs.ErrInvalidArgument)
	}
	return 0, fmt.Errorf("port %d/%s: %w", port, proto, err)
}
