package container

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	seccomp "github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultCaps is Docker's default capability set.
var defaultCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// Docker's masked and read-only paths.
var (
	maskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// specBuilder makes a container's OCI runtime spec and collects the
// warnings met on the way.
type specBuilder struct {
	c        *Container
	rootfs   string // mounted
	dir      string
	netns    string // the network namespace to join; "" for the host's network
	ownNetNS bool   // a network namespace of its own, made by the runtime
	init     string // the berth binary, for --init
	volRoot  string
	warnings []string
}

// initPath is where --init's reaper appears in the container: berth itself,
// which runs as a minimal init under that name (package reaper).
const initPath = "/dev/berth-init"

func (b *specBuilder) volumePath(name string) string {
	return filepath.Join(b.volRoot, name, volumeData)
}

func (b *specBuilder) warn(format string, args ...any) {
	b.warnings = append(b.warnings, fmt.Sprintf(format, args...))
}

func (b *specBuilder) build() (*specs.Spec, error) {
	c := b.c
	s := &specs.Spec{
		Version:    specs.Version,
		Root:       &specs.Root{Path: b.rootfs, Readonly: c.Host.ReadOnly},
		Hostname:   c.Config.Hostname,
		Domainname: c.Config.Domainname,
		Linux: &specs.Linux{
			CgroupsPath: "/berth/" + c.ID,
			Resources:   &specs.LinuxResources{},
		},
	}
	if err := b.process(s); err != nil {
		return nil, err
	}
	b.namespaces(s)
	b.mounts(s)
	if err := b.resources(s); err != nil {
		return nil, err
	}
	if err := b.devices(s); err != nil {
		return nil, err
	}
	if !c.Host.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = maskedPaths, readonlyPaths
	}
	if err := b.seccomp(s); err != nil {
		return nil, err
	}
	return s, nil
}

func (b *specBuilder) process(s *specs.Spec) error {
	c := b.c
	p := &specs.Process{
		Terminal:        c.Config.Tty,
		Args:            append(slices.Clone(c.Config.Entrypoint), c.Config.Cmd...),
		Cwd:             c.Config.WorkingDir,
		NoNewPrivileges: c.Host.NoNewPrivs,
		OOMScoreAdj:     c.Host.Resources.OomScoreAdj,
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if c.Host.Init {
		p.Args = append([]string{initPath, "--"}, p.Args...)
	}
	// The user's name and groups come from the image's own /etc/passwd and
	// /etc/group, resolved inside the root file system.
	passwd, err := securejoin.SecureJoin(b.rootfs, "/etc/passwd")
	if err != nil {
		return err
	}
	group, err := securejoin.SecureJoin(b.rootfs, "/etc/group")
	if err != nil {
		return err
	}
	u, err := user.GetExecUserPath(c.Config.User, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return fmt.Errorf("user %q: %v: %w", c.Config.User, err, errdefs.ErrInvalidArgument)
	}
	p.User = specs.User{UID: uint32(u.Uid), GID: uint32(u.Gid)}
	for _, g := range u.Sgids {
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	env := c.Config.Env
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		env = append([]string{defaultPath}, env...)
	}
	env = mergeEnv([]string{"HOSTNAME=" + c.Config.Hostname}, env)
	if c.Config.Tty {
		env = mergeEnv([]string{"TERM=xterm"}, env)
	}
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		env = append(env, "HOME="+u.Home)
	}
	p.Env = env
	caps, err := capabilities(c.Host)
	if err != nil {
		return err
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	for _, ul := range c.Host.Ulimits {
		name := "RLIMIT_" + strings.ToUpper(ul.Name)
		var host unix.Rlimit
		if res, ok := rlimits[ul.Name]; ok && unix.Getrlimit(res, &host) == nil && host.Max != unix.RLIM_INFINITY {
			if uint64(ul.Hard) > host.Max {
				b.warn("--ulimit %s=%d:%d is above the host's hard limit %d: lowered to it", ul.Name, ul.Soft, ul.Hard, host.Max)
				ul.Hard = int64(host.Max)
				ul.Soft = min(ul.Soft, ul.Hard)
			}
		}
		p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: name, Soft: uint64(ul.Soft), Hard: uint64(ul.Hard)})
	}
	s.Process = p
	return nil
}

// rlimits maps --ulimit names to resources.
var rlimits = map[string]int{
	"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA, "fsize": unix.RLIMIT_FSIZE,
	"locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK, "msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE,
	"nofile": unix.RLIMIT_NOFILE, "nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK, "as": unix.RLIMIT_AS,
}

// capabilities applies --cap-add, --cap-drop and --privileged to Docker's
// default set.
func capabilities(h HostConfig) ([]string, error) {
	var all []string
	for _, c := range capability.ListKnown() {
		all = append(all, "CAP_"+strings.ToUpper(c.String()))
	}
	if h.Privileged {
		return all, nil
	}
	norm := func(name string) (string, error) {
		n := strings.ToUpper(name)
		if n == "ALL" {
			return n, nil
		}
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		if !slices.Contains(all, n) {
			return "", fmt.Errorf("unknown capability %q: %w", name, errdefs.ErrInvalidArgument)
		}
		return n, nil
	}
	caps := slices.Clone(defaultCaps)
	for _, d := range h.CapDrop {
		n, err := norm(d)
		if err != nil {
			return nil, err
		}
		if n == "ALL" {
			caps = nil
			continue
		}
		caps = slices.DeleteFunc(caps, func(c string) bool { return c == n })
	}
	for _, a := range h.CapAdd {
		n, err := norm(a)
		if err != nil {
			return nil, err
		}
		if n == "ALL" {
			caps = slices.Clone(all)
			continue
		}
		if !slices.Contains(caps, n) {
			caps = append(caps, n)
		}
	}
	return caps, nil
}

func (b *specBuilder) namespaces(s *specs.Spec) {
	ns := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}}
	if b.netns != "" || b.ownNetNS {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: b.netns})
		// As Docker: any port is bindable and ping works without
		// privileges inside the container's own network.
		s.Linux.Sysctl = map[string]string{
			"net.ipv4.ip_unprivileged_port_start": "0",
			"net.ipv4.ping_group_range":           "0 2147483647",
		}
	}
	s.Linux.Namespaces = ns
}

func (b *specBuilder) mounts(s *specs.Spec) {
	c := b.c
	shm := c.Host.Resources.ShmSize
	if shm == 0 {
		shm = 64 << 20
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	if c.Host.Privileged {
		sysOpts = sysOpts[:3]
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: append(slices.Clone(sysOpts), "relatime")},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", fmt.Sprintf("size=%d", shm)}},
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		if _, err := os.Stat(filepath.Join(b.dir, f)); err == nil && !c.hasMount("/etc/"+f) {
			ms = append(ms, specs.Mount{Destination: "/etc/" + f, Type: "bind", Source: filepath.Join(b.dir, f), Options: []string{"rbind", "rprivate"}})
		}
	}
	if c.Host.Init {
		ms = append(ms, specs.Mount{Destination: initPath, Type: "bind", Source: b.init, Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	user := slices.Clone(c.Host.Mounts)
	// Parents before children, as Docker sorts them.
	slices.SortStableFunc(user, func(a, b Mount) int {
		return strings.Count(filepath.Clean(a.Destination), "/") - strings.Count(filepath.Clean(b.Destination), "/")
	})
	for _, m := range user {
		var sm specs.Mount
		switch m.Type {
		case "tmpfs":
			sm = specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: append([]string{"nosuid", "nodev", "noexec"}, m.Options...)}
		case "volume":
			sm = specs.Mount{Destination: m.Destination, Type: "bind", Source: b.volumePath(m.Source), Options: []string{"rbind", "rprivate"}}
		default:
			sm = specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: []string{"rbind", "rprivate"}}
		}
		if m.ReadOnly {
			sm.Options = append(sm.Options, "ro")
		}
		ms = append(ms, sm)
	}
	s.Mounts = ms
}

// hasMount reports whether the user mounts something on dest.
func (c *Container) hasMount(dest string) bool {
	return slices.ContainsFunc(c.Host.Mounts, func(m Mount) bool { return filepath.Clean(m.Destination) == dest })
}

func (b *specBuilder) resources(s *specs.Spec) error {
	r := b.c.Host.Resources
	lr := s.Linux.Resources
	if r.Memory > 0 {
		lr.Memory = &specs.LinuxMemory{Limit: &r.Memory}
		swap := r.MemorySwap
		if swap == 0 {
			swap = 2 * r.Memory // Docker's default: as much swap as memory
		}
		if cgroupFile("memory", "memory.memsw.limit_in_bytes") || cgroup2() {
			lr.Memory.Swap = &swap
		} else if r.MemorySwap != 0 {
			b.warn("this kernel does not account swap: --memory-swap is ignored")
		}
	}
	if r.NanoCPUs > 0 {
		period := uint64(100000)
		quota := r.NanoCPUs * int64(period) / 1e9
		lr.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	if r.CPUShares > 0 || r.CpusetCpus != "" {
		if lr.CPU == nil {
			lr.CPU = &specs.LinuxCPU{}
		}
		if r.CPUShares > 0 {
			lr.CPU.Shares = &r.CPUShares
		}
		lr.CPU.Cpus = r.CpusetCpus
	}
	if r.PidsLimit != 0 {
		lr.Pids = &specs.LinuxPids{Limit: &r.PidsLimit}
	}
	if r.BlkioWeight > 0 {
		if cgroupFile("blkio", "blkio.weight") || cgroupFile("blkio", "blkio.bfq.weight") || cgroup2() {
			lr.BlockIO = &specs.LinuxBlockIO{Weight: &r.BlkioWeight}
		} else {
			b.warn("this kernel's I/O scheduler has no weights: --blkio-weight is ignored")
		}
	}
	return nil
}

// cgroupFile reports whether the v1 controller's root has file.
func cgroupFile(controller, file string) bool {
	_, err := os.Stat(filepath.Join("/sys/fs/cgroup", controller, file))
	return err == nil
}

// cgroup2 reports whether the unified hierarchy is the only one.
func cgroup2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

func (b *specBuilder) devices(s *specs.Spec) error {
	lr := s.Linux.Resources
	lr.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	if b.c.Host.Privileged {
		lr.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		devs, _ := hostDevices("/dev")
		s.Linux.Devices = append(s.Linux.Devices, devs...)
	}
	for _, d := range b.c.Host.Devices {
		dev, err := deviceFromPath(d.PathOnHost, d.PathInContainer)
		if err != nil {
			return err
		}
		s.Linux.Devices = append(s.Linux.Devices, dev)
		major, minor := dev.Major, dev.Minor
		lr.Devices = append(lr.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: d.CgroupPermissions})
	}
	return nil
}

// deviceFromPath describes the host device at path for the container's
// path dest.
func deviceFromPath(path, dest string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, fmt.Errorf("device %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	typ := ""
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, fmt.Errorf("device %s is not a character or block device: %w", path, errdefs.ErrInvalidArgument)
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{Path: dest, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: &uid, GID: &gid}, nil
}

// hostDevices lists the character and block devices directly in dir.
func hostDevices(dir string) ([]specs.LinuxDevice, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []specs.LinuxDevice
	for _, ent := range ents {
		if ent.Type()&(os.ModeDevice|os.ModeCharDevice) == 0 {
			continue
		}
		p := filepath.Join(dir, ent.Name())
		switch p {
		case "/dev/console", "/dev/tty", "/dev/ptmx":
			continue // the container has its own
		}
		if d, err := deviceFromPath(p, p); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

func (b *specBuilder) seccomp(s *specs.Spec) error {
	h := b.c.Host
	switch {
	case h.Privileged || h.Seccomp == "unconfined":
		return nil
	case h.Seccomp == "":
		p, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			return fmt.Errorf("default seccomp profile: %w", err)
		}
		s.Linux.Seccomp = p
	default:
		p, err := seccomp.LoadProfile(h.Seccomp, s)
		if err != nil {
			return fmt.Errorf("seccomp profile: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		s.Linux.Seccomp = p
	}
	return nil
}
