package cli

import (
	"fmt"
	"github.com/berth-dev/berth/internal/container"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	"github.com/spf13/cobra"
)

// newNetworkCommand is berth's `network` command group.
func newNetworkCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	cmd.AddCommand(newNetworkCreate(g), newNetworkLs(g), newNetworkInspect(g), newNetworkRm(g),
		newNetworkPrune(g), newNetworkDNSServe(g), newNetworkConnect(g, true), newNetworkConnect(g, false))
	return cmd
}

func newNetworkCreate(g *globals) *cobra.Command {
	var subnet, gateway, driver string
	var internal bool
	var labels []string
	cmd := &cobra.Command{
		Use:   "create [flags] NAME",
		Short: "Create a bridge network",
		Args:  exactArg("network name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := network.Network{Name: args[0], Driver: driver, Internal: internal}
			var err error
			if subnet != "" {
				if n.Subnet, err = netip.ParsePrefix(subnet); err != nil {
					return fmt.Errorf("--subnet %q: not a CIDR subnet such as 10.89.5.0/24: %w", subnet, errdefs.ErrInvalidArgument)
				}
			}
			if gateway != "" {
				if n.Gateway, err = netip.ParseAddr(gateway); err != nil {
					return fmt.Errorf("--gateway %q: not an IP address: %w", gateway, errdefs.ErrInvalidArgument)
				}
			}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				if k == "" {
					return fmt.Errorf("--label %q: use KEY=VALUE: %w", kv, errdefs.ErrInvalidArgument)
				}
				if n.Labels == nil {
					n.Labels = map[string]string{}
				}
				n.Labels[k] = v
			}
			m, err := g.networks()
			if err != nil {
				return err
			}
			out, err := m.Create(cmd.Context(), n)
			if err != nil {
				return err
			}
			fmt.Println(out.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&subnet, "subnet", "", "IPv4 subnet in CIDR form (default: a free /24 from 10.89.0.0/16)")
	f.StringVar(&gateway, "gateway", "", "gateway address (default: the subnet's first address)")
	f.BoolVar(&internal, "internal", false, "no traffic to or from outside the network")
	f.StringArrayVar(&labels, "label", nil, "set a label KEY=VALUE")
	f.StringVarP(&driver, "driver", "d", "bridge", "network driver (only bridge)")
	return cmd
}

// networkRow is one line of `network ls`, with Docker's --format names
// (and berth's Subnet and Gateway).
type networkRow struct {
	ID, Name, Driver, Scope, Subnet, Gateway, IPv6, Internal, Labels, CreatedAt string
}

func newNetworkLs(g *globals) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:     "ls [flags]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if quiet {
				format = "{{.ID}}"
			}
			out, err := parseListFormat(format, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Subnet}}", map[string]string{"ID": "NETWORK ID"})
			if err != nil {
				return err
			}
			m, err := g.networks()
			if err != nil {
				return err
			}
			nets, err := m.List(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([]networkRow, len(nets))
			for i, n := range nets {
				id := n.ID
				if !noTrunc {
					id = id[:12]
				}
				rows[i] = networkRow{ID: id, Name: n.Name, Driver: n.Driver, Scope: "local", Subnet: n.Subnet.String(),
					Gateway: n.Gateway.String(), IPv6: "false", Internal: strconv.FormatBool(n.Internal),
					Labels: joinLabels(n.Labels), CreatedAt: n.Created.String()}
			}
			return printList(os.Stdout, out, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "print only network IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "show full network IDs")
	f.StringVar(&format, "format", "", `Go template per network, e.g. {{.Name}}; "table …" with titles; json`)
	return cmd
}

// inspectNetwork is Docker's shape of `network inspect`.
type inspectNetwork struct {
	Name       string                      `json:"Name"`
	ID         string                      `json:"Id"`
	Created    time.Time                   `json:"Created"`
	Scope      string                      `json:"Scope"`
	Driver     string                      `json:"Driver"`
	EnableIPv6 bool                        `json:"EnableIPv6"`
	IPAM       inspectIPAM                 `json:"IPAM"`
	Internal   bool                        `json:"Internal"`
	DNSEnabled bool                        `json:"DNSEnabled"`
	Containers map[string]inspectContainer `json:"Containers"`
	// Services are the network's virtual addresses, in the shape Docker
	// gives a swarm network's.
	Services map[string]inspectService `json:"Services,omitempty"`
	Options  map[string]string         `json:"Options"`
	Labels   map[string]string         `json:"Labels"`
}

type inspectIPAM struct {
	Driver string              `json:"Driver"`
	Config []map[string]string `json:"Config"`
}

type inspectContainer struct {
	Name        string   `json:"Name"`
	MacAddress  string   `json:"MacAddress"`
	IPv4Address string   `json:"IPv4Address"`
	IPv6Address string   `json:"IPv6Address"`
	Aliases     []string `json:"Aliases,omitempty"`
	Ports       []string `json:"Ports,omitempty"`
}

type inspectService struct {
	Namespace string        `json:"Namespace"`
	VIP       string        `json:"VIP"`
	Ports     []string      `json:"Ports"`
	Tasks     []inspectTask `json:"Tasks"`
}

type inspectTask struct {
	Name       string `json:"Name"`
	EndpointID string `json:"EndpointID"` // the container's ID
	EndpointIP string `json:"EndpointIP"`
}

// inspectServices returns the services of a network for inspect, nil if it
// has none.
func inspectServices(svcs []network.Service, eps []network.Endpoint) map[string]inspectService {
	if len(svcs) == 0 {
		return nil
	}
	out := map[string]inspectService{}
	for _, s := range svcs {
		is := inspectService{Namespace: s.Namespace, VIP: s.VIP.String(), Ports: []string{}, Tasks: []inspectTask{}}
		for _, p := range s.Ports {
			port := fmt.Sprintf("%d->%d/%s", p.Port, p.TargetPort, p.Protocol)
			if p.HostPort != 0 {
				host := ""
				if p.HostIP.IsValid() {
					host = p.HostIP.String() + ":"
				}
				port += fmt.Sprintf(" (host %s%d)", host, p.HostPort)
			}
			is.Ports = append(is.Ports, port)
		}
		for _, id := range s.Backends {
			for _, e := range eps {
				if e.ContainerID == id {
					is.Tasks = append(is.Tasks, inspectTask{Name: e.Name, EndpointID: id, EndpointIP: e.IP.String()})
				}
			}
		}
		out[s.Name] = is
	}
	return out
}

func newNetworkInspect(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [--format TEMPLATE] NETWORK...",
		Short: "Show networks' details as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseInspectFormat(format)
			if err != nil {
				return err
			}
			m, err := g.networks()
			if err != nil {
				return err
			}
			out := []inspectNetwork{}
			for _, a := range args {
				n, err := m.Get(cmd.Context(), a)
				if err != nil {
					return err
				}
				eps, err := m.Endpoints(cmd.Context(), n.Name)
				if err != nil {
					return err
				}
				svcs, err := m.Services(cmd.Context(), n.Name)
				if err != nil {
					return err
				}
				in := inspectNetwork{
					Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
					IPAM: inspectIPAM{Driver: "default", Config: []map[string]string{
						{"Subnet": n.Subnet.String(), "Gateway": n.Gateway.String()}}},
					Internal: n.Internal, DNSEnabled: n.DNS, Containers: map[string]inspectContainer{},
					Services: inspectServices(svcs, eps),
					Options:  map[string]string{"com.docker.network.bridge.name": n.Bridge},
					Labels:   n.Labels,
				}
				if in.Labels == nil {
					in.Labels = map[string]string{}
				}
				for _, e := range eps {
					c := inspectContainer{Name: e.Name, MacAddress: e.MAC, Aliases: e.Aliases,
						IPv4Address: netip.PrefixFrom(e.IP, e.Prefix).String()}
					for _, p := range e.Ports {
						c.Ports = append(c.Ports, p.String())
					}
					in.Containers[e.ContainerID] = c
				}
				out = append(out, in)
			}
			return printInspect(os.Stdout, f, out)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template applied to each network, e.g. {{.IPAM.Config}}; json")
	return cmd
}

func newNetworkRm(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK...",
		Aliases: []string{"remove"},
		Short:   "Remove networks",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.networks()
			if err != nil {
				return err
			}
			var firstErr error
			for _, a := range args {
				if err := m.Remove(cmd.Context(), a); err != nil {
					fmt.Fprintln(os.Stderr, "berth: "+err.Error())
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				fmt.Println(a)
			}
			if firstErr != nil {
				return &errdefs.StatusError{Status: errdefs.ExitCode(firstErr)}
			}
			return nil
		},
	}
}

func newNetworkPrune(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [-f]",
		Short: "Remove all user-defined networks no container uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			var r container.PruneReport
			if err := e.PruneNetworks(cmd.Context(), &r); err != nil {
				return err
			}
			if len(r.Networks) > 0 {
				fmt.Println("Deleted Networks:")
				for _, d := range r.Networks {
					fmt.Println(d)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation (berth never asks)")
	return cmd
}

// newNetworkDNSServe is the embedded DNS server process that network
// connections start; it exits when its network has no endpoints.
func newNetworkDNSServe(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "dns-serve NETWORK",
		Short:  "Serve a network's embedded DNS (started by berth itself)",
		Hidden: true,
		Args:   exactArg("network name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.networks()
			if err != nil {
				return err
			}
			return network.ServeDNS(cmd.Context(), m.Settings(), args[0])
		},
	}
}

// newNetworkConnect is `network connect` (or, with connect false,
// `network disconnect`) NETWORK CONTAINER.
func newNetworkConnect(g *globals, connect bool) *cobra.Command {
	use, short := "connect NETWORK CONTAINER", "Join a container to a network"
	if !connect {
		use, short = "disconnect NETWORK CONTAINER", "Take a container off a network"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			if connect {
				return e.ConnectNetwork(cmd.Context(), args[1], args[0])
			}
			return e.DisconnectNetwork(cmd.Context(), args[1], args[0])
		},
	}
}
