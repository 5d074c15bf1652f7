package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultNetwork is the name of the network that always exists, as Docker's
// "bridge".
const DefaultNetwork = "bridge"

// Settings configures a Manager.
type Settings struct {
	// StateDir holds networks, IPAM allocations and endpoints (e.g.
	// ROOT/networks).
	StateDir string
	// Prefix names host objects: bridge devices <Prefix>0, <Prefix>1, …,
	// host veth ends <Prefix>v…, and the nftables table <Prefix>. At most 10
	// characters; default "berth".
	Prefix string
	// DefaultSubnet is the subnet of the default network "bridge"; default
	// 10.90.0.0/16 (Podman takes 10.88.0.0/16 and 10.89.0.0/16, Docker
	// 172.17.0.0/16 and up).
	DefaultSubnet netip.Prefix
	// DNSCommand starts the embedded DNS server process for a network; the
	// process calls ServeDNS with the same Settings. Nil disables the
	// embedded DNS server.
	DNSCommand func(network string) *exec.Cmd
	// ResolvConf is the file whose nameservers the embedded DNS server
	// forwards to; default /etc/resolv.conf.
	ResolvConf string
}

// Network is a bridge network.
type Network struct {
	Name    string       `json:"name"`
	ID      string       `json:"id"`
	Driver  string       `json:"driver"` // "bridge"
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	// Bridge is the host's bridge device.
	Bridge string `json:"bridge"`
	// Internal networks have no outbound NAT and no traffic to or from
	// other interfaces.
	Internal bool `json:"internal,omitempty"`
	// DNS is true when containers on the network resolve each other's names
	// through the embedded DNS server: on user-defined networks, not on the
	// default "bridge", as in Docker.
	DNS     bool              `json:"dns,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
}

// PortMapping publishes a container port on the host.
type PortMapping struct {
	HostIP        netip.Addr `json:"hostIP,omitzero"` // zero: all host addresses
	HostPort      uint16     `json:"hostPort"`        // 0: pick a free one
	ContainerPort uint16     `json:"containerPort"`
	Protocol      string     `json:"protocol"` // "tcp" or "udp"
}

func (p PortMapping) String() string {
	s := fmt.Sprintf("%d:%d/%s", p.HostPort, p.ContainerPort, p.Protocol)
	if p.HostIP.IsValid() {
		s = p.HostIP.String() + ":" + s
	}
	return s
}

// Attach describes a container joining a network.
type Attach struct {
	ContainerID string
	// Name is the container's name, resolvable by DNS on networks with DNS.
	Name    string
	Aliases []string
	// NetNS is the path of the container's network namespace (a
	// bind-mounted nsfs file, see NewNS).
	NetNS string
	// IfName is the interface name inside the namespace; default "eth0".
	IfName string
	Ports  []PortMapping
}

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	Network     string        `json:"network"`
	ContainerID string        `json:"containerID"`
	Name        string        `json:"name,omitempty"`
	Aliases     []string      `json:"aliases,omitempty"`
	IfName      string        `json:"ifName"`
	IP          netip.Addr    `json:"ip"`
	Prefix      int           `json:"prefix"`
	Gateway     netip.Addr    `json:"gateway"`
	MAC         string        `json:"mac,omitempty"`
	Ports       []PortMapping `json:"ports,omitempty"` // with chosen host ports filled in
}

// Manager manages the networks and endpoints kept in one state directory.
// Its methods may be called from several goroutines and processes at once.
type Manager struct {
	s Settings
}

// New returns a Manager for s, filling in defaults and creating the state
// directory.
func New(s Settings) (*Manager, error) {
	if s.StateDir == "" {
		return nil, fmt.Errorf("network settings: no state directory: %w", errdefs.ErrInvalidArgument)
	}
	if s.Prefix == "" {
		s.Prefix = "berth"
	}
	if err := validatePrefix(s.Prefix); err != nil {
		return nil, err
	}
	if !s.DefaultSubnet.IsValid() {
		s.DefaultSubnet = netip.MustParsePrefix("10.90.0.0/16")
	}
	if err := validateSubnet(s.DefaultSubnet); err != nil {
		return nil, fmt.Errorf("default network: %w", err)
	}
	if s.ResolvConf == "" {
		s.ResolvConf = "/etc/resolv.conf"
	}
	if err := os.MkdirAll(s.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("network state: %w", err)
	}
	return &Manager{s: s}, nil
}

// Settings returns the Manager's settings with defaults filled in.
func (m *Manager) Settings() Settings { return m.s }

// Create creates the network n and returns it as stored. Name is required.
// Without a Subnet a free /24 is chosen from 10.91.0.0/16; without a Gateway
// the subnet's first address is used. A name in use fails with
// errdefs.ErrAlreadyExists, a subnet overlapping another network or a host
// route with errdefs.ErrConflict, bad input with errdefs.ErrInvalidArgument.
func (m *Manager) Create(ctx context.Context, n Network) (*Network, error) {
	if err := validateName(n.Name); err != nil {
		return nil, err
	}
	switch n.Name {
	case "host", "none":
		return nil, fmt.Errorf("network name %q is reserved: %w", n.Name, errdefs.ErrInvalidArgument)
	}
	switch n.Driver {
	case "", "bridge":
		n.Driver = "bridge"
	default:
		return nil, fmt.Errorf("network %s: driver %q is not supported (only bridge): %w", n.Name, n.Driver, errdefs.ErrInvalidArgument)
	}
	if n.Subnet.IsValid() {
		if err := validateSubnet(n.Subnet); err != nil {
			return nil, err
		}
	} else if n.Gateway.IsValid() {
		return nil, fmt.Errorf("network %s: a gateway needs a subnet: %w", n.Name, errdefs.ErrInvalidArgument)
	}
	for k := range n.Labels {
		if k == "" {
			return nil, fmt.Errorf("network %s: label with an empty key: %w", n.Name, errdefs.ErrInvalidArgument)
		}
	}
	var out *Network
	err := m.update(ctx, func(st *state) error {
		if st.network(n.Name) != nil {
			return fmt.Errorf("network %s: %w", n.Name, errdefs.ErrAlreadyExists)
		}
		routes, err := hostRoutes()
		if err != nil {
			return err
		}
		own := map[string]bool{}
		for _, o := range st.Networks {
			own[o.Bridge] = true
		}
		free := func(p netip.Prefix) error {
			for _, o := range st.Networks {
				if o.Subnet.Overlaps(p) {
					return fmt.Errorf("subnet %s overlaps network %s (%s): %w", p, o.Name, o.Subnet, errdefs.ErrConflict)
				}
			}
			for _, r := range routes {
				if !own[r.dev] && r.dst.Bits() > 0 && r.dst.Overlaps(p) {
					return fmt.Errorf("subnet %s overlaps the host's route to %s on %s: %w", p, r.dst, r.dev, errdefs.ErrConflict)
				}
			}
			return nil
		}
		if n.Subnet.IsValid() {
			if err := free(n.Subnet); err != nil {
				return err
			}
		} else {
			pool := netip.MustParsePrefix("10.91.0.0/16")
			for a := pool.Addr(); pool.Contains(a); a = addN(a, 256) {
				if p := netip.PrefixFrom(a, 24); free(p) == nil {
					n.Subnet = p
					break
				}
			}
			if !n.Subnet.IsValid() {
				return fmt.Errorf("no free /24 left in %s; pass a subnet: %w", pool, errdefs.ErrConflict)
			}
		}
		if !n.Gateway.IsValid() {
			n.Gateway = n.Subnet.Addr().Next()
		}
		if err := validateGateway(n.Subnet, n.Gateway); err != nil {
			return err
		}
		n.ID = randomHex(32)
		n.Bridge = st.freeBridge(m.s.Prefix)
		n.DNS = true
		n.Created = time.Now().UTC()
		st.Networks = append(st.Networks, &n)
		out = &n
		return nil
	})
	if err != nil {
		return nil, err
	}
	c := *out
	return &c, nil
}

// Get returns the network with the given name, full ID or unique ID prefix.
// The default network "bridge" always exists.
func (m *Manager) Get(ctx context.Context, name string) (*Network, error) {
	st, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	n, err := st.find(name)
	if err != nil {
		return nil, err
	}
	c := *n
	return &c, nil
}

// List returns all networks, the default one first and then by name.
func (m *Manager) List(ctx context.Context) ([]*Network, error) {
	st, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Network
	for _, n := range st.Networks {
		c := *n
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == DefaultNetwork) != (out[j].Name == DefaultNetwork) {
			return out[i].Name == DefaultNetwork
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Remove removes a network that no container is connected to; it fails
// with errdefs.ErrConflict while endpoints or services remain and refuses
// the default network.
func (m *Manager) Remove(ctx context.Context, name string) error {
	return m.update(ctx, func(st *state) error {
		n, err := st.find(name)
		if err != nil {
			return err
		}
		if n.Name == DefaultNetwork {
			return fmt.Errorf("network %s is predefined and cannot be removed: %w", n.Name, errdefs.ErrInvalidArgument)
		}
		if eps := st.endpointsOf(n.Name); len(eps) > 0 {
			var ids []string
			for _, e := range eps {
				ids = append(ids, short(e.ContainerID))
			}
			return fmt.Errorf("network %s has %d connected container(s) (%s); disconnect or remove them first: %w",
				n.Name, len(eps), strings.Join(ids, ", "), errdefs.ErrConflict)
		}
		if svcs := st.servicesOf(n.Name); len(svcs) > 0 {
			return fmt.Errorf("network %s is used by service %s; remove the service first: %w", n.Name, svcs[0].Name, errdefs.ErrConflict)
		}
		// Leftovers of a process that died while using the network.
		if err := m.teardownNetwork(n); err != nil {
			return err
		}
		for i, o := range st.Networks {
			if o == n {
				st.Networks = append(st.Networks[:i], st.Networks[i+1:]...)
				break
			}
		}
		delete(st.LastIP, n.ID)
		return nil
	})
}

// Endpoints returns the endpoints of a network, ordered by container ID.
func (m *Manager) Endpoints(ctx context.Context, name string) ([]Endpoint, error) {
	st, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	n, err := st.find(name)
	if err != nil {
		return nil, err
	}
	var out []Endpoint
	for _, e := range st.endpointsOf(n.Name) {
		out = append(out, e.public())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerID < out[j].ContainerID })
	return out, nil
}

// Rename gives the endpoints of container containerID a new name, on every
// network it is attached to: the embedded DNS servers answer for newName,
// and no longer for the old name, from their next query on. An alias equal
// to the old name is renamed with it. A container with no endpoints is no
// error: it takes its name with it when it connects.
func (m *Manager) Rename(ctx context.Context, containerID, newName string) error {
	if containerID == "" {
		return fmt.Errorf("rename: no container ID: %w", errdefs.ErrInvalidArgument)
	}
	if err := validateHostName("container name", newName); err != nil {
		return err
	}
	st, err := m.read()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(st.Endpoints, func(e *endpoint) bool { return e.ContainerID == containerID }) {
		return nil
	}
	return m.update(ctx, func(st *state) error {
		for _, e := range st.Endpoints {
			if e.ContainerID != containerID {
				continue
			}
			for i, al := range e.Aliases {
				if al == e.Name {
					e.Aliases[i] = newName
				}
			}
			e.Name = newName
		}
		return nil
	})
}

// Nameserver returns the embedded DNS server's address for containers on a
// network (its gateway) and true if the network has DNS.
func (m *Manager) Nameserver(ctx context.Context, network string) (netip.Addr, bool) {
	n, err := m.Get(ctx, network)
	if err != nil || !n.DNS {
		return netip.Addr{}, false
	}
	return n.Gateway, true
}

// route is a host route, as hostRoutes returns it.
type route struct {
	dst netip.Prefix
	dev string
}

// defaultNetwork is the network "bridge" made from the settings.
func (m *Manager) defaultNetwork() *Network {
	sum := sha256.Sum256([]byte(DefaultNetwork))
	return &Network{
		Name: DefaultNetwork, ID: hex.EncodeToString(sum[:]), Driver: "bridge",
		Subnet: m.s.DefaultSubnet, Gateway: m.s.DefaultSubnet.Addr().Next(),
		Bridge: m.s.Prefix + "0", Created: time.Now().UTC(),
	}
}

func (m *Manager) path(name ...string) string {
	return filepath.Join(append([]string{m.s.StateDir}, name...)...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// bridgeIndex returns N for a bridge named <prefix>N, or -1.
func bridgeIndex(prefix, name string) int {
	s, ok := strings.CutPrefix(name, prefix)
	if !ok || s == "" {
		return -1
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 {
		return -1
	}
	return i
}
