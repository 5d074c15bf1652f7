package container

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// PublishedPort is a container port published on the host, as the
// container's network endpoints hold it while it runs.
type PublishedPort struct {
	ContainerPort uint16
	Protocol      string     // tcp or udp
	HostIP        netip.Addr // invalid: every host address
	HostPort      uint16
}

// String is Docker's form of the host side: 0.0.0.0:8080.
func (p PublishedPort) String() string {
	if p.HostIP.IsValid() {
		return netip.AddrPortFrom(p.HostIP, p.HostPort).String()
	}
	return "0.0.0.0:" + strconv.Itoa(int(p.HostPort))
}

// Ports returns the published ports of the container ref names, by
// container port; a container that is not running publishes none.
func (e *Engine) Ports(ctx context.Context, ref string) ([]PublishedPort, error) {
	_, st, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	var out []PublishedPort
	if !st.Running() {
		return nil, nil
	}
	for _, ep := range st.Endpoints {
		for _, p := range ep.Ports {
			out = append(out, PublishedPort{ContainerPort: p.ContainerPort, Protocol: p.Protocol, HostIP: p.HostIP, HostPort: p.HostPort})
		}
	}
	slices.SortFunc(out, func(a, b PublishedPort) int {
		return cmp.Or(cmp.Compare(a.ContainerPort, b.ContainerPort), cmp.Compare(a.Protocol, b.Protocol),
			a.HostIP.Compare(b.HostIP), cmp.Compare(a.HostPort, b.HostPort))
	})
	return out, nil
}

// LoopbackOnly returns a warning for each published port of the running
// container ref names that its application listens on only at a loopback
// address (127.0.0.1 or ::1) inside the container: the seeds' "bind to
// 0.0.0.0" pitfall, where the published port cannot reach the
// application. Ports that nothing listens on yet are not reported.
func (e *Engine) LoopbackOnly(ctx context.Context, ref string) ([]string, error) {
	c, st, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	if st.Status != Running || st.Pid <= 0 {
		return nil, nil
	}
	type key struct {
		port  uint16
		proto string
	}
	var ports []key
	for _, ep := range st.Endpoints {
		for _, p := range ep.Ports {
			if k := (key{p.ContainerPort, p.Protocol}); !slices.Contains(ports, k) {
				ports = append(ports, k)
			}
		}
	}
	if len(ports) == 0 {
		return nil, nil
	}
	slices.SortFunc(ports, func(a, b key) int { return cmp.Or(cmp.Compare(a.port, b.port), cmp.Compare(a.proto, b.proto)) })
	listening := map[string]map[uint16][]netip.Addr{}
	for _, proto := range []string{"tcp", "udp"} {
		listening[proto] = map[uint16][]netip.Addr{}
		for _, f := range []string{proto, proto + "6"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", st.Pid, f))
			if err != nil {
				continue // no IPv6, or the process just exited
			}
			for port, addrs := range parseListeners(string(b), proto) {
				listening[proto][port] = append(listening[proto][port], addrs...)
			}
		}
	}
	var warnings []string
	for _, k := range ports {
		addrs := listening[k.proto][k.port]
		if len(addrs) == 0 || slices.ContainsFunc(addrs, func(a netip.Addr) bool { return !a.Unmap().IsLoopback() }) {
			continue
		}
		var names []string
		for _, a := range addrs {
			if s := a.Unmap().String(); !slices.Contains(names, s) {
				names = append(names, s)
			}
		}
		warnings = append(warnings, fmt.Sprintf("port %d/%s: the application in %s listens on %s only, so the published port cannot reach it; make it listen on 0.0.0.0",
			k.port, k.proto, c.Name, strings.Join(names, " and ")))
	}
	return warnings, nil
}

// parseListeners reads /proc/PID/net/{tcp,tcp6,udp,udp6} and returns the
// local addresses of listening sockets by port: TCP sockets in state LISTEN
// (0A), UDP sockets not connected to a peer (state 07, remote port 0).
func parseListeners(s, proto string) map[uint16][]netip.Addr {
	out := map[uint16][]netip.Addr{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		if proto == "tcp" && f[3] != "0A" {
			continue
		}
		if proto == "udp" && (f[3] != "07" || !strings.HasSuffix(f[2], ":0000")) {
			continue
		}
		addr, port, ok := parseProcAddr(f[1])
		if ok {
			out[port] = append(out[port], addr)
		}
	}
	return out
}

// parseProcAddr decodes the kernel's "0100007F:0050": the address as
// 32-bit words in the host's byte order, then the port in hex.
func parseProcAddr(s string) (netip.Addr, uint16, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, false
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return addr, uint16(port), true
}
