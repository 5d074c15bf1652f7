package container

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/container/monitorproto"
)

// Details is a container as `docker inspect` shows it, so that templates
// such as {{.State.Pid}} and {{.NetworkSettings.IPAddress}} work as users
// expect.
type Details struct {
	ID              string            `json:"Id"`
	Created         time.Time         `json:"Created"`
	Path            string            `json:"Path"`
	Args            []string          `json:"Args"`
	State           DetailsState      `json:"State"`
	Image           string            `json:"Image"`
	ImageName       string            `json:"ImageName"`
	Name            string            `json:"Name"`
	RestartCount    int               `json:"RestartCount"`
	LogPath         string            `json:"LogPath"`
	HostConfig      DetailsHost       `json:"HostConfig"`
	Mounts          []DetailsMount    `json:"Mounts"`
	Config          DetailsConfig     `json:"Config"`
	NetworkSettings DetailsNetworking `json:"NetworkSettings"`
	Warnings        []string          `json:"Warnings,omitempty"`
}

// DetailsHost is the part of Docker's HostConfig object that berth has.
type DetailsHost struct {
	NetworkMode     string                `json:"NetworkMode"`
	PortBindings    map[string][]PortHost `json:"PortBindings"`
	PublishAllPorts bool                  `json:"PublishAllPorts"`
	RestartPolicy   struct {
		Name              string `json:"Name"`
		MaximumRetryCount int    `json:"MaximumRetryCount"`
	} `json:"RestartPolicy"`
	AutoRemove     bool              `json:"AutoRemove"`
	Binds          []string          `json:"Binds"`
	Tmpfs          map[string]string `json:"Tmpfs,omitempty"`
	Dns            []string          `json:"Dns"`
	ExtraHosts     []string          `json:"ExtraHosts"`
	CapAdd         []string          `json:"CapAdd"`
	CapDrop        []string          `json:"CapDrop"`
	Privileged     bool              `json:"Privileged"`
	ReadonlyRootfs bool              `json:"ReadonlyRootfs"`
	SecurityOpt    []string          `json:"SecurityOpt"`
	Init           bool              `json:"Init"`
	Runtime        string            `json:"Runtime"`
	LogConfig      struct {
		Type   string            `json:"Type"`
		Config map[string]string `json:"Config"`
	} `json:"LogConfig"`
	Memory      int64    `json:"Memory"`
	MemorySwap  int64    `json:"MemorySwap"`
	NanoCpus    int64    `json:"NanoCpus"`
	CpuShares   uint64   `json:"CpuShares"`
	CpusetCpus  string   `json:"CpusetCpus"`
	PidsLimit   int64    `json:"PidsLimit"`
	BlkioWeight uint16   `json:"BlkioWeight"`
	ShmSize     int64    `json:"ShmSize"`
	Ulimits     []Ulimit `json:"Ulimits"`
	Devices     []Device `json:"Devices"`
}

func detailsHost(h HostConfig) DetailsHost {
	d := DetailsHost{
		NetworkMode: h.NetworkMode, PortBindings: map[string][]PortHost{}, PublishAllPorts: h.PublishAll,
		AutoRemove: h.AutoRemove, Dns: h.DNS, ExtraHosts: h.ExtraHosts, CapAdd: h.CapAdd, CapDrop: h.CapDrop,
		Privileged: h.Privileged, ReadonlyRootfs: h.ReadOnly, Init: h.Init, Runtime: h.Runtime,
		Memory: h.Resources.Memory, MemorySwap: h.Resources.MemorySwap, NanoCpus: h.Resources.NanoCPUs,
		CpuShares: h.Resources.CPUShares, CpusetCpus: h.Resources.CpusetCpus, PidsLimit: h.Resources.PidsLimit,
		BlkioWeight: h.Resources.BlkioWeight, ShmSize: h.Resources.ShmSize, Ulimits: h.Ulimits, Devices: h.Devices,
	}
	if d.NetworkMode == "" {
		d.NetworkMode = "bridge"
	}
	if d.Runtime == "" {
		d.Runtime = "berth-runtime"
	}
	d.RestartPolicy.Name, d.RestartPolicy.MaximumRetryCount = h.RestartPolicy.Name, h.RestartPolicy.MaxRetries
	if d.RestartPolicy.Name == "" {
		d.RestartPolicy.Name = "no"
	}
	d.LogConfig.Type, d.LogConfig.Config = "json-file", h.LogOpts
	for _, p := range h.Ports {
		key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
		port := ""
		if p.HostPort != 0 {
			port = strconv.Itoa(int(p.HostPort))
		}
		d.PortBindings[key] = append(d.PortBindings[key], PortHost{HostIP: p.HostIP, HostPort: port})
	}
	for _, m := range h.Mounts {
		switch m.Type {
		case "bind", "volume":
			b := m.Source + ":" + m.Destination
			if m.ReadOnly {
				b += ":ro"
			}
			d.Binds = append(d.Binds, b)
		case "tmpfs":
			if d.Tmpfs == nil {
				d.Tmpfs = map[string]string{}
			}
			d.Tmpfs[m.Destination] = strings.Join(m.Options, ",")
		}
	}
	if h.NoNewPrivs {
		d.SecurityOpt = append(d.SecurityOpt, "no-new-privileges")
	}
	if h.Seccomp == "unconfined" {
		d.SecurityOpt = append(d.SecurityOpt, "seccomp=unconfined")
	}
	return d
}

// DetailsState is Docker's State object.
type DetailsState struct {
	Status     string    `json:"Status"`
	Running    bool      `json:"Running"`
	Paused     bool      `json:"Paused"`
	Restarting bool      `json:"Restarting"`
	OOMKilled  bool      `json:"OOMKilled"`
	Dead       bool      `json:"Dead"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
	Health     *Health   `json:"Health,omitempty"`
}

// DetailsMount is one entry of Docker's Mounts.
type DetailsMount struct {
	Type        string `json:"Type"`
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	RW          bool   `json:"RW"`
}

// DetailsConfig is Docker's Config object.
type DetailsConfig struct {
	Hostname     string              `json:"Hostname"`
	User         string              `json:"User"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Entrypoint   []string            `json:"Entrypoint"`
	WorkingDir   string              `json:"WorkingDir"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Image        string              `json:"Image"`
	Healthcheck  *Healthcheck        `json:"Healthcheck,omitempty"`
}

// DetailsNetworking is Docker's NetworkSettings object.
type DetailsNetworking struct {
	IPAddress   string                    `json:"IPAddress"`
	IPPrefixLen int                       `json:"IPPrefixLen"`
	Gateway     string                    `json:"Gateway"`
	MacAddress  string                    `json:"MacAddress"`
	Ports       map[string][]PortHost     `json:"Ports"`
	Networks    map[string]DetailsNetwork `json:"Networks"`
	SandboxKey  string                    `json:"SandboxKey"`
}

// PortHost is where a container port is published.
type PortHost struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// DetailsNetwork is one of Docker's NetworkSettings.Networks.
type DetailsNetwork struct {
	IPAddress   string   `json:"IPAddress"`
	IPPrefixLen int      `json:"IPPrefixLen"`
	Gateway     string   `json:"Gateway"`
	MacAddress  string   `json:"MacAddress"`
	Aliases     []string `json:"Aliases"`
}

// Inspect returns the details of the container ref names.
func (e *Engine) Inspect(ctx context.Context, ref string) (*Details, error) {
	c, st, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...)
	d := &Details{
		ID: c.ID, Created: c.Created, Image: c.ImageID.String(), ImageName: c.Image, Name: "/" + c.Name,
		RestartCount: st.RestartCount, LogPath: filepath.Join(e.dir(c.ID), monitorproto.LogFile), HostConfig: detailsHost(c.Host),
		State: DetailsState{
			Status: st.Status, Running: st.Status == Running || st.Status == Paused, Paused: st.Status == Paused,
			Restarting: st.Status == Restarting, OOMKilled: st.OOMKilled, Pid: st.Pid, ExitCode: st.ExitCode,
			Error: st.Error, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, Health: st.Health,
		},
		Config: DetailsConfig{
			Hostname: c.Config.Hostname, User: c.Config.User, Env: c.Config.Env, Cmd: c.Config.Cmd,
			Entrypoint: c.Config.Entrypoint, WorkingDir: c.Config.WorkingDir, Labels: c.Config.Labels,
			StopSignal: c.Config.StopSignal, Tty: c.Config.Tty, OpenStdin: c.Config.OpenStdin, Image: c.Image,
			Healthcheck: c.Config.Healthcheck,
		},
		NetworkSettings: DetailsNetworking{Ports: map[string][]PortHost{}, Networks: map[string]DetailsNetwork{}},
		Warnings:        st.Warnings,
	}
	if len(args) > 0 {
		d.Path, d.Args = args[0], args[1:]
	}
	if d.Config.Labels == nil {
		d.Config.Labels = map[string]string{}
	}
	if len(c.Config.ExposedPorts) > 0 {
		d.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range c.Config.ExposedPorts {
			d.Config.ExposedPorts[p] = struct{}{}
			d.NetworkSettings.Ports[p] = nil
		}
	}
	for _, m := range c.Host.Mounts {
		dm := DetailsMount{Type: m.Type, Source: m.Source, Destination: m.Destination, RW: !m.ReadOnly}
		if m.Type == "volume" {
			dm.Name, dm.Source = m.Source, filepath.Join(e.volRoot, m.Source, volumeData)
		}
		d.Mounts = append(d.Mounts, dm)
	}
	if st.Running() {
		switch mode := c.networkMode(); mode {
		case "host":
		case "none":
			d.NetworkSettings.SandboxKey = "/proc/" + strconv.Itoa(st.Pid) + "/ns/net"
		default:
			d.NetworkSettings.SandboxKey = e.netnsPath(c.ID)
		}
	}
	for i, ep := range st.Endpoints {
		n := DetailsNetwork{IPAddress: ep.IP.String(), IPPrefixLen: ep.Prefix, Gateway: ep.Gateway.String(), MacAddress: ep.MAC, Aliases: ep.Aliases}
		d.NetworkSettings.Networks[ep.Network] = n
		if i == 0 {
			ns := &d.NetworkSettings
			ns.IPAddress, ns.IPPrefixLen, ns.Gateway, ns.MacAddress = n.IPAddress, n.IPPrefixLen, n.Gateway, n.MacAddress
		}
		for _, p := range ep.Ports {
			key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
			hostIP := "0.0.0.0"
			if p.HostIP.IsValid() {
				hostIP = p.HostIP.String()
			}
			d.NetworkSettings.Ports[key] = append(d.NetworkSettings.Ports[key], PortHost{HostIP: hostIP, HostPort: strconv.Itoa(int(p.HostPort))})
		}
	}
	return d, nil
}

// PortsString is the PORTS column of `ps`: 0.0.0.0:8080->80/tcp, …
func (d *Details) PortsString() string {
	var out []string
	for ctr, hosts := range d.NetworkSettings.Ports {
		if len(hosts) == 0 {
			out = append(out, ctr)
		}
		for _, h := range hosts {
			out = append(out, fmt.Sprintf("%s:%s->%s", h.HostIP, h.HostPort, ctr))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
