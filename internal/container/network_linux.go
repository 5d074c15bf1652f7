package container

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
)

// Networks is what the engine needs from internal/network's Manager.
type Networks interface {
	// Get returns the network name names, or an error matching
	// errdefs.ErrNotFound.
	Get(ctx context.Context, name string) (*network.Network, error)
	// Connect attaches a container's network namespace to a network and
	// publishes its ports; on error nothing of it remains.
	Connect(ctx context.Context, network string, a network.Attach) (*network.Endpoint, error)
	// Disconnect undoes Connect; it is no error if there is nothing to
	// undo.
	Disconnect(ctx context.Context, network, containerID string) error
	// Rename gives the container's endpoints, on every network, the name
	// newName (and aliases equal to their old name with it), so that DNS
	// answers for it instead; it is no error if there are none.
	Rename(ctx context.Context, containerID, newName string) error
	// Nameserver returns the embedded DNS server's address for containers
	// on the network, if it has one.
	Nameserver(ctx context.Context, network string) (netip.Addr, bool)
}

// networkMode is the container's network mode with the default filled in.
func (c *Container) networkMode() string {
	if c.Host.NetworkMode == "" || c.Host.NetworkMode == "default" {
		return network.DefaultNetwork
	}
	return c.Host.NetworkMode
}

func (e *Engine) validateNetwork(c *Container) error {
	mode := c.networkMode()
	if mode == "host" || mode == "none" {
		if len(c.Host.Ports) > 0 || c.Host.PublishAll {
			return fmt.Errorf("ports cannot be published with --network %s: %w", mode, errdefs.ErrInvalidArgument)
		}
		return nil
	}
	if e.nets == nil {
		return fmt.Errorf("network %s: networking is not available here: %w", mode, errdefs.ErrUnavailable)
	}
	_, err := e.nets.Get(context.Background(), mode)
	return err
}

func (e *Engine) netnsPath(id string) string { return filepath.Join(e.runRoot, "netns", id) }

// connect gives the container its network namespace (at netnsPath) and
// attaches it to its networks, recording the endpoints in st. The host's
// network needs neither; with none the runtime makes the namespace.
func (e *Engine) connect(ctx context.Context, c *Container, st *State) error {
	mode := c.networkMode()
	if mode == "host" || mode == "none" {
		return nil
	}
	path := e.netnsPath(c.ID)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	network.RemoveNS(path)
	if err := network.NewNS(path); err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	ports, err := c.publishedPorts()
	if err != nil {
		return err
	}
	ep, err := e.nets.Connect(ctx, mode, network.Attach{
		ContainerID: c.ID, Name: c.Name, Aliases: []string{short(c.ID)}, NetNS: path, Ports: ports,
	})
	if err != nil {
		return err
	}
	st.Endpoints = append(st.Endpoints, *ep)
	for _, n := range c.Host.ExtraNetworks {
		ep, err := e.nets.Connect(ctx, n, network.Attach{
			ContainerID: c.ID, Name: c.Name, Aliases: []string{short(c.ID)}, NetNS: path, IfName: fmt.Sprintf("eth%d", len(st.Endpoints)),
		})
		if err != nil {
			return err
		}
		st.Endpoints = append(st.Endpoints, *ep)
	}
	return e.saveState(c.ID, st)
}

// ConnectNetwork joins the container ref names to network name: at once if
// it runs, and whenever it starts.
func (e *Engine) ConnectNetwork(ctx context.Context, ref, name string) error {
	return e.changeNetworks(ctx, ref, name, func(c *Container, st *State, n *network.Network) error {
		mode := c.networkMode()
		if mode == "host" || mode == "none" {
			return fmt.Errorf("container %s uses --network %s and cannot join other networks: %w", c.Name, mode, errdefs.ErrConflict)
		}
		if mode == n.Name || slices.Contains(c.Host.ExtraNetworks, n.Name) {
			return fmt.Errorf("container %s is already on network %s: %w", c.Name, n.Name, errdefs.ErrAlreadyExists)
		}
		if st.Status == Running || st.Status == Paused {
			ep, err := e.nets.Connect(ctx, n.Name, network.Attach{
				ContainerID: c.ID, Name: c.Name, Aliases: []string{short(c.ID)}, NetNS: e.netnsPath(c.ID), IfName: fmt.Sprintf("eth%d", len(st.Endpoints)),
			})
			if err != nil {
				return err
			}
			if _, err := e.updateState(c.ID, func(s *State) error { s.Endpoints = append(s.Endpoints, *ep); return nil }); err != nil {
				return err
			}
		}
		c.Host.ExtraNetworks = append(c.Host.ExtraNetworks, n.Name)
		return nil
	})
}

// DisconnectNetwork takes the container ref names off network name.
func (e *Engine) DisconnectNetwork(ctx context.Context, ref, name string) error {
	return e.changeNetworks(ctx, ref, name, func(c *Container, _ *State, n *network.Network) error {
		switch {
		case c.networkMode() == n.Name:
			// As Docker: off its first network, the container has none.
			c.Host.NetworkMode, c.Host.Ports, c.Host.PublishAll = "none", nil, false
		case slices.Contains(c.Host.ExtraNetworks, n.Name):
			c.Host.ExtraNetworks = slices.DeleteFunc(c.Host.ExtraNetworks, func(x string) bool { return x == n.Name })
		default:
			return fmt.Errorf("container %s is not on network %s: %w", c.Name, n.Name, errdefs.ErrNotFound)
		}
		if err := e.nets.Disconnect(ctx, n.Name, c.ID); err != nil {
			return err
		}
		_, err := e.updateState(c.ID, func(s *State) error {
			s.Endpoints = slices.DeleteFunc(s.Endpoints, func(ep network.Endpoint) bool { return ep.Network == n.Name })
			return nil
		})
		return err
	})
}

// changeNetworks runs fn on the container ref names and network name,
// holding the container's start lock, and saves the record fn changed.
func (e *Engine) changeNetworks(ctx context.Context, ref, name string, fn func(*Container, *State, *network.Network) error) error {
	id, err := e.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	unlock, err := e.lockFile(id, "start.lock")
	if err != nil {
		return err
	}
	defer unlock()
	c, st, err := e.load(id)
	if err != nil {
		return err
	}
	if e.nets == nil {
		return fmt.Errorf("networking is not available here: %w", errdefs.ErrUnavailable)
	}
	n, err := e.nets.Get(ctx, name)
	if err != nil {
		return err
	}
	if err := fn(c, st, n); err != nil {
		return err
	}
	return writeJSON(filepath.Join(e.dir(id), recordFile), c)
}

// publishedPorts are -p's bindings and, with -P, every exposed port on a
// free host port.
func (c *Container) publishedPorts() ([]network.PortMapping, error) {
	var out []network.PortMapping
	for _, p := range c.Host.Ports {
		pm := network.PortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return nil, fmt.Errorf("port %d: host address %q: %w", p.ContainerPort, p.HostIP, errdefs.ErrInvalidArgument)
			}
			pm.HostIP = ip
		}
		out = append(out, pm)
	}
	if c.Host.PublishAll {
		for _, ep := range c.Config.ExposedPorts {
			port, proto, _ := strings.Cut(ep, "/")
			n, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				continue
			}
			if proto == "" {
				proto = "tcp"
			}
			if !slices.ContainsFunc(out, func(p network.PortMapping) bool { return p.ContainerPort == uint16(n) && p.Protocol == proto }) {
				out = append(out, network.PortMapping{ContainerPort: uint16(n), Protocol: proto})
			}
		}
	}
	return out, nil
}

// disconnect undoes connect, including a connect that a killed command
// left half-done. The namespace goes first: the kernel then removes the
// container's ends of its veth pairs with it.
func (e *Engine) disconnect(ctx context.Context, c *Container, st *State) {
	network.RemoveNS(e.netnsPath(c.ID))
	if e.nets != nil {
		nets := []string{}
		if st != nil {
			for _, ep := range st.Endpoints {
				nets = append(nets, ep.Network)
			}
		}
		if mode := c.networkMode(); mode != "host" && mode != "none" && !slices.Contains(nets, mode) {
			nets = append(nets, mode)
		}
		for _, n := range c.Host.ExtraNetworks {
			if !slices.Contains(nets, n) {
				nets = append(nets, n)
			}
		}
		for _, n := range nets {
			e.nets.Disconnect(ctx, n, c.ID)
		}
	}
}

// renameEndpoints moves the running container's names from old to c.Name:
// in the records of its networks (their DNS), in its state, and in its own
// /etc/hosts, whose lines for its addresses name it. The caller holds the
// container's lock.
func (e *Engine) renameEndpoints(ctx context.Context, c *Container, st *State, old string) error {
	if e.nets == nil {
		return nil
	}
	if err := e.nets.Rename(ctx, c.ID, c.Name); err != nil {
		return err
	}
	if len(st.Endpoints) == 0 {
		return nil
	}
	ips := map[string]bool{}
	for i := range st.Endpoints {
		ep := &st.Endpoints[i]
		for j, al := range ep.Aliases {
			if al == ep.Name {
				ep.Aliases[j] = c.Name
			}
		}
		ep.Name = c.Name
		ips[ep.IP.String()] = true
	}
	if err := e.saveState(c.ID, st); err != nil {
		e.nets.Rename(ctx, c.ID, old)
		return err
	}
	// Written in place, for the file is bind-mounted into the container;
	// at worst the container still finds itself under its old name.
	hosts := filepath.Join(e.dir(c.ID), "hosts")
	b, err := os.ReadFile(hosts)
	if err != nil {
		return nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	changed := false
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 || !ips[f[0]] {
			continue
		}
		for j := 1; j < len(f); j++ {
			if f[j] == old {
				f[j], changed = c.Name, true
			}
		}
		lines[i] = f[0] + "\t" + strings.Join(f[1:], " ") + "\n"
	}
	if changed {
		os.WriteFile(hosts, []byte(strings.Join(lines, "")), 0o644)
	}
	return nil
}
