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

// connect gives the container its network namespace and attaches it to
// its network, recording the endpoint in st. It returns the namespace's
// path, "" for the host's network.
func (e *Engine) connect(ctx context.Context, c *Container, st *State) (string, error) {
	mode := c.networkMode()
	if mode == "host" {
		return "", nil
	}
	path := e.netnsPath(c.ID)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	network.RemoveNS(path)
	if err := network.NewNS(path); err != nil {
		return "", fmt.Errorf("network namespace: %w", err)
	}
	if mode == "none" {
		return path, nil
	}
	ports, err := c.publishedPorts()
	if err != nil {
		return "", err
	}
	ep, err := e.nets.Connect(ctx, mode, network.Attach{
		ContainerID: c.ID, Name: c.Name, Aliases: []string{short(c.ID)}, NetNS: path, Ports: ports,
	})
	if err != nil {
		return "", err
	}
	st.Endpoints = append(st.Endpoints, *ep)
	return path, e.saveState(c.ID, st)
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
// left half-done.
func (e *Engine) disconnect(ctx context.Context, c *Container, st *State) {
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
		for _, n := range nets {
			e.nets.Disconnect(ctx, n, c.ID)
		}
	}
	network.RemoveNS(e.netnsPath(c.ID))
}
