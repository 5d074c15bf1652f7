package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf, which the spec bind-mounts over the image's.
func (e *Engine) writeEtcFiles(c *Container, st *State) error {
	dir := e.dir(c.ID)
	host := c.networkMode() == "host"
	var hosts strings.Builder
	if host {
		b, _ := os.ReadFile("/etc/hosts")
		hosts.Write(b)
	} else {
		hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
		for _, ep := range st.Endpoints {
			fmt.Fprintf(&hosts, "%s\t%s %s\n", ep.IP, c.Config.Hostname, c.Name)
		}
	}
	for _, h := range c.Host.ExtraHosts {
		name, ip, _ := strings.Cut(h, ":")
		fmt.Fprintf(&hosts, "%s\t%s\n", ip, name)
	}
	resolv, err := e.resolvConf(c, st)
	if err != nil {
		return err
	}
	for name, content := range map[string]string{
		"hostname":    c.Config.Hostname + "\n",
		"hosts":       hosts.String(),
		"resolv.conf": resolv,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// resolvConf is the container's resolv.conf: --dns servers, else the
// network's embedded DNS server, else the host's own servers — without
// loopback ones, which mean nothing in the container's network — and
// Docker's public fallback if none remain.
func (e *Engine) resolvConf(c *Container, st *State) (string, error) {
	b, _ := os.ReadFile("/etc/resolv.conf")
	if c.networkMode() == "host" && len(c.Host.DNS) == 0 {
		return string(b), nil
	}
	var servers, rest []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if !strings.HasPrefix(f[1], "127.") && f[1] != "::1" {
				servers = append(servers, f[1])
			}
		} else if len(f) >= 2 && (f[0] == "search" || f[0] == "options") {
			rest = append(rest, line)
		}
	}
	switch {
	case len(c.Host.DNS) > 0:
		servers = c.Host.DNS
	case len(st.Endpoints) > 0 && e.nets != nil:
		if ns, ok := e.nets.Nameserver(context.Background(), st.Endpoints[0].Network); ok {
			servers = []string{ns.String()}
		}
	}
	if len(servers) == 0 {
		servers = []string{"8.8.8.8", "8.8.4.4"}
	}
	var out strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&out, "nameserver %s\n", s)
	}
	for _, r := range rest {
		out.WriteString(r + "\n")
	}
	return out.String(), nil
}
