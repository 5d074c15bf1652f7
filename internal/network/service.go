package network

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultNamespace is the namespace of a Service that names none.
const DefaultNamespace = "default"

// Service is a load-balanced virtual address on one network: connections to
// VIP:Port (and to the host's HostPort) are spread by nftables over the
// backends' addresses, TargetPort. The embedded DNS server of the network
// answers NAME, NAME.NAMESPACE.svc and NAME.NAMESPACE.svc.cluster.local
// with the VIP while the service has a backend, and tasks.NAME with the
// backends' own addresses.
type Service struct {
	// Name is the service's DNS name, unique on its network.
	Name string `json:"name"`
	// Namespace is "" or "default" for the default namespace.
	Namespace string `json:"namespace,omitempty"`
	// Network is a network's name or ID on input; stored as its name.
	Network string `json:"network"`
	// VIP is allocated from the network's subnet by SetService and kept
	// for the service's life; ignored on input.
	VIP   netip.Addr    `json:"vip"`
	Ports []ServicePort `json:"ports,omitempty"`
	// Backends are the IDs of containers with an endpoint on Network: the
	// ready replicas. Others are dropped when stored, and a container
	// leaves every service when it disconnects from the network.
	Backends []string `json:"backends,omitempty"`
	// ClientAffinity sends a client's connections to one backend (a hash
	// of its address picks it) while the backends stay the same, rather
	// than to one at random for each connection.
	ClientAffinity bool `json:"clientAffinity,omitempty"`
	// Activator, when not 0, is a local TCP port: while the service has no
	// backends, new TCP connections to its VIP's ports and its host ports
	// are redirected there (nftables redirect: to the address they arrived
	// on, or 127.0.0.1 from the host itself) instead of refused, so that a
	// process listening there can hold them while a replica starts. UDP is
	// still refused. Only connections redirected there may reach the port.
	Activator uint16 `json:"activator,omitempty"`
}

// Target is what a connection redirected to an activator was meant for.
type Target struct {
	Service  Service
	Port     ServicePort
	Backends []netip.Addr // the backends' addresses on Service.Network, now; empty while it has none
}

// ServiceCount is how much traffic reached one service.
type ServiceCount struct {
	Network, Name string
	// Requests counts, since the rules were last made, the TCP segments
	// with data pushed (PSH) from clients to the service's VIP ports and
	// host ports on connections that were answered (a forged segment
	// counts for nothing) — about one per HTTP request, keep-alive or not —
	// and the UDP datagrams to them; counted in the kernel before any NAT, so that
	// connections held by an activator count too. It may go back to a
	// lower number when the table is remade: readers take a drop as a
	// restart from 0.
	Requests uint64
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Protocol   string     `json:"protocol"`           // tcp (default) or udp
	Port       uint16     `json:"port"`               // on the VIP; 0 means TargetPort
	TargetPort uint16     `json:"targetPort"`         // on the backends; required
	HostPort   uint16     `json:"hostPort,omitempty"` // published on the host; 0: not published
	HostIP     netip.Addr `json:"hostIP,omitzero"`    // zero: all host addresses, as PortMapping.HostIP
}

// published is the port as a host port mapping, for conflict checks.
func (p ServicePort) published() PortMapping {
	return PortMapping{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.TargetPort, Protocol: p.Protocol}
}

func (s *Service) clone() Service {
	c := *s
	c.Ports = slices.Clone(s.Ports)
	c.Backends = slices.Clone(s.Backends)
	return c
}

// normalizeService checks s and fills in defaults: the namespace, the
// protocols and the VIP ports.
func normalizeService(s Service) (Service, error) {
	if err := validateHostName("service name", s.Name); err != nil {
		return s, err
	}
	if s.Namespace == "" {
		s.Namespace = DefaultNamespace
	}
	if err := validateHostName("service namespace", s.Namespace); err != nil {
		return s, err
	}
	if s.Network == "" {
		return s, fmt.Errorf("service %s: no network: %w", s.Name, errdefs.ErrInvalidArgument)
	}
	ports := make([]ServicePort, len(s.Ports))
	for i, p := range s.Ports {
		p.Protocol = strings.ToLower(p.Protocol)
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return s, fmt.Errorf("service %s: port %d: protocol %q must be tcp or udp: %w", s.Name, p.Port, p.Protocol, errdefs.ErrInvalidArgument)
		}
		if p.TargetPort == 0 {
			return s, fmt.Errorf("service %s: port %d/%s: target port 0: %w", s.Name, p.Port, p.Protocol, errdefs.ErrInvalidArgument)
		}
		if p.Port == 0 {
			p.Port = p.TargetPort
		}
		if p.HostIP.IsValid() {
			p.HostIP = p.HostIP.Unmap()
			if !p.HostIP.Is4() {
				return s, fmt.Errorf("service %s: host address %s: only IPv4 is supported: %w", s.Name, p.HostIP, errdefs.ErrInvalidArgument)
			}
			if p.HostIP.IsUnspecified() {
				p.HostIP = netip.Addr{}
			}
		}
		if p.HostIP.IsValid() && p.HostPort == 0 {
			return s, fmt.Errorf("service %s: port %d/%s: a host address needs a host port: %w", s.Name, p.Port, p.Protocol, errdefs.ErrInvalidArgument)
		}
		for _, q := range ports[:i] {
			if q.Port == p.Port && q.Protocol == p.Protocol {
				return s, fmt.Errorf("service %s: port %d/%s is given twice: %w", s.Name, p.Port, p.Protocol, errdefs.ErrInvalidArgument)
			}
			if p.HostPort != 0 && q.HostPort == p.HostPort && q.Protocol == p.Protocol && ipsOverlap(p.HostIP, q.HostIP) {
				return s, fmt.Errorf("service %s: host port %d/%s is published twice: %w", s.Name, p.HostPort, p.Protocol, errdefs.ErrInvalidArgument)
			}
		}
		ports[i] = p
	}
	s.Ports = ports
	return s, nil
}

// servicesOf returns the services of a network ("" for all).
func (st *state) servicesOf(network string) []*Service {
	var out []*Service
	for _, s := range st.Services {
		if network == "" || s.Network == network {
			out = append(out, s)
		}
	}
	return out
}

func (st *state) service(network, name string) *Service {
	for _, s := range st.Services {
		if s.Network == network && s.Name == name {
			return s
		}
	}
	return nil
}

func (st *state) removeService(s *Service) {
	st.Services = slices.DeleteFunc(st.Services, func(o *Service) bool { return o == s })
}

// dropBackend takes a container that leaves a network out of the
// services on it, and reports whether it was a backend of any.
func (st *state) dropBackend(network, containerID string) bool {
	was := false
	for _, s := range st.servicesOf(network) {
		n := len(s.Backends)
		s.Backends = slices.DeleteFunc(s.Backends, func(id string) bool { return id == containerID })
		was = was || len(s.Backends) != n
	}
	return was
}

// usedAddrs are the addresses of a network that allocate must not hand
// out: its endpoints' and its services' VIPs.
func (st *state) usedAddrs(network string) map[netip.Addr]bool {
	used := map[netip.Addr]bool{}
	for _, e := range st.endpointsOf(network) {
		used[e.IP] = true
	}
	for _, s := range st.servicesOf(network) {
		used[s.VIP] = true
	}
	return used
}

// backendAddrs returns the addresses of s's backends that are connected.
func (st *state) backendAddrs(s *Service) []netip.Addr {
	var out []netip.Addr
	for _, id := range s.Backends {
		if e := st.endpoint(s.Network, id); e != nil {
			out = append(out, e.IP)
		}
	}
	return out
}

// portHolder names what publishes host port p already, apart from the
// services skip reports true for (nil: none): "container ID" or "service
// NAME", or "".
func (st *state) portHolder(p PortMapping, skip func(*Service) bool) string {
	clash := func(q PortMapping) bool {
		return q.HostPort == p.HostPort && q.Protocol == p.Protocol && ipsOverlap(q.HostIP, p.HostIP)
	}
	for _, e := range st.Endpoints {
		for _, q := range e.Ports {
			if clash(q) {
				return "container " + short(e.ContainerID)
			}
		}
	}
	for _, s := range st.Services {
		if skip != nil && skip(s) {
			continue
		}
		for _, q := range s.Ports {
			if q.HostPort != 0 && clash(q.published()) {
				return "service " + s.Name + " (network " + s.Network + ")"
			}
		}
	}
	return ""
}

// serviceFor finds the TCP port of a service that dst names: a VIP and
// one of its ports, or an address and a host port published on it (on
// every address: one that local reports as the host's). A VIP is never a
// host port's address: the rules take connections to a VIP as its own
// before they look at host ports.
func (st *state) serviceFor(dst netip.AddrPort, local func(netip.Addr) bool) (*Service, ServicePort, bool) {
	addr := dst.Addr().Unmap()
	for _, s := range st.Services {
		if s.VIP != addr {
			continue
		}
		for _, p := range s.Ports {
			if p.Protocol == "tcp" && p.Port == dst.Port() {
				return s, p, true
			}
		}
		return nil, ServicePort{}, false
	}
	for _, s := range st.Services {
		for _, p := range s.Ports {
			if p.Protocol != "tcp" || p.HostPort == 0 || p.HostPort != dst.Port() {
				continue
			}
			if p.HostIP == addr || !p.HostIP.IsValid() && local(addr) {
				return s, p, true
			}
		}
	}
	return nil, ServicePort{}, false
}

// sortServices orders services by network and name.
func sortServices(svcs []Service) {
	sort.Slice(svcs, func(i, j int) bool {
		if svcs[i].Network != svcs[j].Network {
			return svcs[i].Network < svcs[j].Network
		}
		return svcs[i].Name < svcs[j].Name
	})
}

// Services lists the services of a network, or of all networks for "", by
// network and name. An unknown network fails with errdefs.ErrNotFound.
func (m *Manager) Services(ctx context.Context, network string) ([]Service, error) {
	st, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	name := ""
	if network != "" {
		n, err := st.find(network)
		if err != nil {
			return nil, err
		}
		name = n.Name
	}
	var out []Service
	for _, s := range st.servicesOf(name) {
		out = append(out, s.clone())
	}
	sortServices(out)
	return out, nil
}
