package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/network"
)

// Publish makes the node's networks balance the service's traffic over the
// containers of e.Tasks that run here: a service with a virtual IP on each
// of its networks (the default network when it names none), its ports
// published on the host from the first. A network it left (an update
// changed its networks) forgets it first. A service that scales from zero
// (e.Activate) sends its new TCP connections to the activator
// (WithActivator) while it has no backend; Publish then wakes the
// connections held for it. Without networks (WithNetworks) it does nothing.
func (a *Agent) Publish(ctx context.Context, e api.ServiceEndpoints) ([]api.VirtualIP, error) {
	nets := a.o.nets
	if nets == nil {
		return nil, nil
	}
	defer a.signal(e.Service)
	want := map[string]bool{}
	for _, id := range e.Tasks {
		want[id] = true
	}
	ts, err := a.tasks(ctx)
	if err != nil {
		return nil, fmt.Errorf("publish service %s: %w", e.Service, err)
	}
	var backends []string
	for _, t := range ts {
		if want[t.id()] {
			backends = append(backends, t.c.ID)
		}
	}
	names := e.Networks
	if len(names) == 0 {
		names = []string{network.DefaultNetwork}
	}
	// The networks it left first: its published ports may move to
	// another network, and one network's entry would hold them.
	keep := map[string]bool{}
	for _, n := range names {
		if got, err := nets.Get(ctx, n); err == nil {
			keep[got.Name] = true
		}
	}
	if err := a.unpublish(ctx, func(s network.Service) bool { return s.Name != e.Service || keep[s.Network] }); err != nil {
		return nil, err
	}
	var vips []api.VirtualIP
	for i, n := range names {
		s := network.Service{Name: e.Service, Network: n, Backends: backends, ClientAffinity: e.ClientAffinity,
			Activator: a.activatorPort(e.Activate)}
		for _, p := range e.Ports {
			sp := network.ServicePort{Protocol: string(p.Protocol), TargetPort: uint16(p.TargetPort)}
			if i == 0 {
				sp.HostPort = uint16(p.PublishedPort)
			}
			s.Ports = append(s.Ports, sp)
		}
		out, err := nets.SetService(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("publish service %s on network %s: %w", e.Service, n, err)
		}
		vips = append(vips, api.VirtualIP{Network: out.Network, Addr: out.VIP.String()})
	}
	return vips, nil
}

// CheckPorts fails with errdefs.ErrConflict if the node cannot publish
// service's ports on the host: a container, another service or a host
// socket holds one. Without networks it checks nothing.
func (a *Agent) CheckPorts(ctx context.Context, service string, ports []api.PortConfig) error {
	if a.o.nets == nil {
		return nil
	}
	var sps []network.ServicePort
	for _, p := range ports {
		sps = append(sps, network.ServicePort{Protocol: string(p.Protocol), TargetPort: uint16(p.TargetPort), HostPort: uint16(p.PublishedPort)})
	}
	return a.o.nets.CheckHostPorts(ctx, service, sps)
}

// Unpublish removes every service of the node's networks whose name live
// does not report true.
func (a *Agent) Unpublish(ctx context.Context, live func(service string) bool) error {
	if a.o.nets == nil {
		return nil
	}
	return a.unpublish(ctx, func(s network.Service) bool { return live(s.Name) })
}

// unpublish removes the services keep does not keep.
func (a *Agent) unpublish(ctx context.Context, keep func(network.Service) bool) error {
	all, err := a.o.nets.Services(ctx, "")
	if err != nil {
		return fmt.Errorf("list published services: %w", err)
	}
	var errs []error
	for _, s := range slices.DeleteFunc(all, keep) {
		if err := a.o.nets.RemoveService(ctx, s.Network, s.Name); err != nil {
			errs = append(errs, fmt.Errorf("unpublish service %s from network %s: %w", s.Name, s.Network, err))
		}
	}
	return errors.Join(errs...)
}
