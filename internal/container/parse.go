package container

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The parsers below read the values of Docker's run flags; each error is
// one line naming the flag and the value.

func bad(flag, value, why string) error {
	return fmt.Errorf("%s %q: %s: %w", flag, value, why, errdefs.ErrInvalidArgument)
}

// ParsePorts reads -p [IP:][HOSTPORT:]CONTAINERPORT[/PROTO], where either
// port may be a range (8080-8081:80-81).
func ParsePorts(s string) ([]PortBinding, error) {
	spec, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return nil, bad("-p", s, "the protocol must be tcp or udp")
	}
	var ip, host, ctr string
	if i := strings.LastIndexByte(spec, ':'); i >= 0 {
		ctr = spec[i+1:]
		rest := spec[:i]
		if j := strings.LastIndexByte(rest, ':'); j >= 0 {
			ip, host = strings.Trim(rest[:j], "[]"), rest[j+1:]
		} else {
			host = rest
		}
	} else {
		ctr = spec
	}
	if ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return nil, bad("-p", s, "the host address is not an IP address")
		}
	}
	clo, chi, err := portRange(ctr)
	if err != nil {
		return nil, bad("-p", s, "the container port "+err.Error())
	}
	var hlo, hhi uint16
	if host != "" {
		if hlo, hhi, err = portRange(host); err != nil {
			return nil, bad("-p", s, "the host port "+err.Error())
		}
		if hhi-hlo != chi-clo {
			return nil, bad("-p", s, "the host and container port ranges differ in size")
		}
	}
	var out []PortBinding
	for p := clo; ; p++ {
		b := PortBinding{HostIP: ip, ContainerPort: p, Protocol: proto}
		if host != "" {
			b.HostPort = hlo + (p - clo)
		}
		out = append(out, b)
		if p == chi {
			break
		}
	}
	return out, nil
}

func portRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	l, err1 := strconv.ParseUint(a, 10, 16)
	h := l
	var err2 error
	if isRange {
		h, err2 = strconv.ParseUint(b, 10, 16)
	}
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return 0, 0, fmt.Errorf("must be a number from 1 to 65535 or a range of them")
	}
	return uint16(l), uint16(h), nil
}

// ParseVolume reads -v HOST:CTR[:OPTS], NAME:CTR[:OPTS] or CTR (an
// anonymous volume). OPTS are ro, rw and (accepted, ignored) z, Z.
func ParseVolume(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	var m Mount
	switch len(parts) {
	case 1:
		m = Mount{Type: "volume", Destination: parts[0], Anonymous: true}
	case 2, 3:
		m = Mount{Type: "volume", Source: parts[0], Destination: parts[1]}
		if len(parts) == 3 {
			for _, o := range strings.Split(parts[2], ",") {
				switch o {
				case "ro":
					m.ReadOnly = true
				case "rw", "z", "Z", "":
				default:
					return Mount{}, bad("-v", s, "unknown option "+o+" (use ro or rw)")
				}
			}
		}
	default:
		return Mount{}, bad("-v", s, "use HOST-PATH:CONTAINER-PATH[:ro] or VOLUME:CONTAINER-PATH[:ro]")
	}
	if m.Source == "" && len(parts) > 1 {
		return Mount{}, bad("-v", s, "the source is empty")
	}
	if strings.HasPrefix(m.Source, "/") || strings.HasPrefix(m.Source, ".") {
		m.Type = "bind"
		abs, err := filepath.Abs(m.Source)
		if err != nil {
			return Mount{}, bad("-v", s, err.Error())
		}
		m.Source = abs
	}
	if !filepath.IsAbs(m.Destination) {
		return Mount{}, bad("-v", s, "the container path must be absolute")
	}
	m.Destination = filepath.Clean(m.Destination)
	if m.Destination == "/" {
		return Mount{}, bad("-v", s, "cannot mount over the container's root")
	}
	return m, nil
}

// ParseMount reads --mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…].
func ParseMount(s string) (Mount, error) {
	m := Mount{Type: "volume"}
	for _, kv := range strings.Split(s, ",") {
		k, v, hasV := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "type":
			m.Type = v
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Destination = v
		case "readonly", "ro":
			m.ReadOnly = !hasV || v == "true" || v == "1"
		case "tmpfs-size":
			n, err := ParseBytes(v)
			if err != nil {
				return Mount{}, bad("--mount", s, "tmpfs-size: "+err.Error())
			}
			m.Options = append(m.Options, fmt.Sprintf("size=%d", n))
		case "tmpfs-mode":
			if _, err := strconv.ParseUint(v, 8, 32); err != nil {
				return Mount{}, bad("--mount", s, "tmpfs-mode must be octal")
			}
			m.Options = append(m.Options, "mode="+v)
		case "bind-propagation", "volume-nocopy", "consistency":
		default:
			return Mount{}, bad("--mount", s, "unknown key "+k)
		}
	}
	switch m.Type {
	case "bind":
		if m.Source == "" {
			return Mount{}, bad("--mount", s, "a bind mount needs source=")
		}
		abs, err := filepath.Abs(m.Source)
		if err != nil {
			return Mount{}, bad("--mount", s, err.Error())
		}
		m.Source = abs
	case "volume":
		m.Anonymous = m.Source == ""
	case "tmpfs":
		if m.Source != "" {
			return Mount{}, bad("--mount", s, "a tmpfs has no source")
		}
	default:
		return Mount{}, bad("--mount", s, "type must be bind, volume or tmpfs")
	}
	if !filepath.IsAbs(m.Destination) {
		return Mount{}, bad("--mount", s, "target= must be an absolute container path")
	}
	m.Destination = filepath.Clean(m.Destination)
	return m, nil
}

// ParseTmpfs reads --tmpfs PATH[:OPTIONS].
func ParseTmpfs(s string) (Mount, error) {
	path, opts, _ := strings.Cut(s, ":")
	if !filepath.IsAbs(path) {
		return Mount{}, bad("--tmpfs", s, "the path must be absolute")
	}
	m := Mount{Type: "tmpfs", Destination: filepath.Clean(path)}
	if opts != "" {
		m.Options = strings.Split(opts, ",")
	}
	return m, nil
}

// ParseBytes reads a size such as 64m, 1g, 512k or a plain number of bytes.
func ParseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) > math.MaxInt64 {
		return 0, fmt.Errorf("size %q: use a number with an optional unit b, k, m or g", s)
	}
	return int64(f * float64(mult)), nil
}

// ParseRestart reads --restart no|on-failure[:N]|always|unless-stopped.
func ParseRestart(s string) (RestartPolicy, error) {
	name, n, hasN := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "no", "always", "unless-stopped":
		if hasN {
			return p, bad("--restart", s, "only on-failure takes a retry count")
		}
	case "on-failure":
		if hasN {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				return p, bad("--restart", s, "the retry count must be a number")
			}
			p.MaxRetries = v
		}
	default:
		return p, bad("--restart", s, "use no, on-failure[:N], always or unless-stopped")
	}
	return p, nil
}

// ParseUlimit reads --ulimit NAME=SOFT[:HARD].
func ParseUlimit(s string) (Ulimit, error) {
	name, vals, ok := strings.Cut(s, "=")
	if !ok {
		return Ulimit{}, bad("--ulimit", s, "use NAME=SOFT[:HARD]")
	}
	if _, known := rlimits[name]; !known {
		return Ulimit{}, bad("--ulimit", s, "unknown limit "+name)
	}
	soft, hard, hasHard := strings.Cut(vals, ":")
	parse := func(v string) (int64, error) {
		if v == "unlimited" || v == "-1" {
			return -1, nil
		}
		return strconv.ParseInt(v, 10, 64)
	}
	u := Ulimit{Name: name}
	var err error
	if u.Soft, err = parse(soft); err != nil {
		return Ulimit{}, bad("--ulimit", s, "the soft limit is not a number")
	}
	u.Hard = u.Soft
	if hasHard {
		if u.Hard, err = parse(hard); err != nil {
			return Ulimit{}, bad("--ulimit", s, "the hard limit is not a number")
		}
	}
	if uint64(u.Soft) > uint64(u.Hard) {
		return Ulimit{}, bad("--ulimit", s, "the soft limit is above the hard limit")
	}
	return u, nil
}

// ParseDevice reads --device HOST[:CONTAINER[:PERMISSIONS]].
func ParseDevice(s string) (Device, error) {
	parts := strings.Split(s, ":")
	d := Device{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
	case 2:
		if strings.Trim(parts[1], "rwm") == "" {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		d.PathInContainer, d.CgroupPermissions = parts[1], parts[2]
	default:
		return d, bad("--device", s, "use HOST-PATH[:CONTAINER-PATH[:rwm]]")
	}
	if !filepath.IsAbs(d.PathOnHost) || !filepath.IsAbs(d.PathInContainer) {
		return d, bad("--device", s, "device paths must be absolute")
	}
	if d.CgroupPermissions == "" || strings.Trim(d.CgroupPermissions, "rwm") != "" {
		return d, bad("--device", s, "permissions are letters of rwm")
	}
	return d, nil
}

// ParseEnvFile reads KEY=VALUE lines (and bare KEY, taken from this
// process's environment) from an --env-file. A line may be as long as the
// kernel lets one variable be (MAX_ARG_STRLEN, 128 KiB with 4 KiB pages);
// a longer one is refused with its file and line number, since the
// container could not be started with it.
func ParseEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var env []string
	br := bufio.NewReader(f)
	limit := maxEnvEntry()
	for n := 1; ; n++ {
		raw, size, err := readLine(br, limit)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("--env-file %q: line %d: %w", path, n, err)
		}
		if size == 0 && err == io.EOF {
			break
		}
		line := strings.TrimSpace(string(raw))
		if strings.HasPrefix(line, "#") {
			continue
		}
		if size > limit {
			key, _, _ := strings.Cut(line, "=")
			return nil, bad("--env-file", path, fmt.Sprintf("line %d (%.40s) is %d bytes long; a variable may be at most %d bytes", n, key, size, limit))
		}
		if line != "" {
			key, _, hasValue := strings.Cut(line, "=")
			if key == "" || strings.ContainsAny(key, " \t") {
				return nil, bad("--env-file", path, fmt.Sprintf("line %d: %q is not KEY=VALUE", n, line))
			}
			if !hasValue {
				if v, ok := os.LookupEnv(key); ok {
					env = append(env, key+"="+v)
				}
			} else {
				env = append(env, line)
			}
		}
		if err == io.EOF {
			break
		}
	}
	return env, nil
}

// maxEnvEntry is the longest KEY=VALUE the kernel passes to a program:
// MAX_ARG_STRLEN, 32 pages, less the terminating NUL.
func maxEnvEntry() int { return 32*os.Getpagesize() - 1 }

// readLine returns the next line of br without its newline, keeping at most
// limit+1 of its bytes, and the line's full length. It returns io.EOF with
// the last line when that has no newline.
func readLine(br *bufio.Reader, limit int) ([]byte, int, error) {
	var line []byte
	size := 0
	for {
		chunk, err := br.ReadSlice('\n')
		size += len(chunk)
		if len(line) <= limit {
			line = append(line, chunk[:min(len(chunk), limit+1-len(line))]...)
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			line = bytes.TrimSuffix(line, []byte("\n"))
			return line, size - 1, nil
		default:
			return line, size, err
		}
	}
}

// ParseEnv reads -e KEY=VALUE, or -e KEY to pass this process's value.
func ParseEnv(s string) (string, bool, error) {
	key, _, hasValue := strings.Cut(s, "=")
	if key == "" {
		return "", false, bad("-e", s, "the variable has no name")
	}
	if hasValue {
		return s, true, nil
	}
	v, ok := os.LookupEnv(key)
	return key + "=" + v, ok, nil
}

// ParseCPUs reads --cpus 1.5 as nano-CPUs.
func ParseCPUs(s string) (int64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > 1e6 {
		return 0, bad("--cpus", s, "use a positive number of CPUs such as 0.5 or 2")
	}
	return int64(f * 1e9), nil
}
