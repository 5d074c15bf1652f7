package container

import (
	"fmt"
	"net/netip"
	"path"
	"runtime"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// validateSettings checks the values of a container's settings that only
// fail when it starts otherwise, and then with the kernel's words (a
// cgroup path, "sethostname: invalid argument"): each wrong one is one
// line naming the flag, as Docker's checks do.
func validateSettings(c *Container) error {
	h, r := c.Host, c.Host.Resources
	if n := runtime.NumCPU(); r.NanoCPUs > int64(n)*1e9 {
		return fmt.Errorf("--cpus %g: this machine has %d CPUs; use 0.01 to %d: %w", float64(r.NanoCPUs)/1e9, n, n, errdefs.ErrInvalidArgument)
	}
	if err := checkCPUSet(r.CpusetCpus, runtime.NumCPU()); err != nil {
		return err
	}
	if name := c.Config.Hostname; name != "" {
		if len(name) > 64 || strings.ContainsAny(name, " /\t\n") {
			return fmt.Errorf("--hostname %q: a host name has at most 64 characters, without spaces or slashes: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	for _, d := range h.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("--dns %q: not an IP address: %w", d, errdefs.ErrInvalidArgument)
		}
	}
	for _, x := range h.ExtraHosts {
		name, ip, _ := strings.Cut(x, ":")
		if _, err := netip.ParseAddr(ip); err != nil && ip != "host-gateway" {
			return fmt.Errorf("--add-host %q: %q is not an IP address: %w", x, ip, errdefs.ErrInvalidArgument)
		}
		if name == "" {
			return fmt.Errorf("--add-host %q: use HOST:IP: %w", x, errdefs.ErrInvalidArgument)
		}
	}
	if hc := c.Config.Healthcheck; hc != nil {
		for _, d := range []struct {
			flag string
			v    int64
		}{{"--health-interval", int64(hc.Interval)}, {"--health-timeout", int64(hc.Timeout)}, {"--health-start-period", int64(hc.StartPeriod)}} {
			if d.v < 0 {
				return fmt.Errorf("%s: must not be negative: %w", d.flag, errdefs.ErrInvalidArgument)
			}
		}
		if hc.Retries < 0 {
			return fmt.Errorf("--health-retries %d: must not be negative: %w", hc.Retries, errdefs.ErrInvalidArgument)
		}
	}
	for _, m := range h.Mounts {
		switch path.Clean(m.Destination) {
		case "/proc", "/sys":
			return fmt.Errorf("-v/--mount destination %s: berth mounts the kernel's %s there itself; mount below it or elsewhere: %w", m.Destination, m.Destination, errdefs.ErrInvalidArgument)
		}
		if m.Type == "tmpfs" {
			if err := checkTmpfsOptions(m); err != nil {
				return err
			}
		}
	}
	if mode := h.NetworkMode; strings.HasPrefix(mode, "container:") {
		return fmt.Errorf("--network %s: sharing another container's network is not supported yet; use a network both join: %w", mode, errdefs.ErrNotImplemented)
	}
	return nil
}

// checkCPUSet checks a cpuset list ("0-1,3") against the n CPUs there are.
func checkCPUSet(set string, n int) error {
	if set == "" {
		return nil
	}
	for _, part := range strings.Split(set, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return fmt.Errorf("--cpuset-cpus %q: use CPU numbers and ranges such as 0-1,3: %w", set, errdefs.ErrInvalidArgument)
		}
		if b >= n {
			return fmt.Errorf("--cpuset-cpus %q: this machine's CPUs are 0-%d: %w", set, n-1, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// checkTmpfsOptions checks the size and mode of a tmpfs mount.
func checkTmpfsOptions(m Mount) error {
	for _, o := range m.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "size":
			if n, err := ParseBytes(v); (err != nil || n <= 0) && !strings.HasSuffix(v, "%") {
				return fmt.Errorf("--tmpfs %s: size=%s: use a size such as 64m: %w", m.Destination, v, errdefs.ErrInvalidArgument)
			}
		case "mode":
			if mode, err := strconv.ParseUint(v, 8, 32); err != nil || mode > 0o7777 {
				return fmt.Errorf("--tmpfs %s: mode=%s: use an octal mode such as 1777: %w", m.Destination, v, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}
