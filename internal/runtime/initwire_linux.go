package runtime

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Init is C (package boot) and runs before any Go code could; the runtime
// compiles everything it needs from the spec into one configuration frame
// and exchanges small frames with it over the sync socket. The layout here
// and in boot/boot.h and boot/wire.c must match; TestInitWireConstants
// compares the constants below with boot.h's by name.

// Frame types.
const (
	msgConfig = 'C' // runtime → init: the configuration
	msgCgroup = 'c' // runtime → init: init is in its cgroup
	msgHooks  = 'h' // init → runtime: run prestart/createRuntime hooks now
	msgResume = 'r' // runtime → init: hooks done
	msgReady  = 'R' // init → runtime: created, waiting for start
	msgError  = 'E' // init → runtime: setup failed; the payload says why
	msgNone   = 0   // no message is expected, only EOF
)

const (
	modeCreate = 0
	modeExec   = 1
)

// Configuration flags (boot.h).
const (
	flagNoPivot = 1 << iota
	flagNoKeyring
	flagTerminal
	flagHooks
	flagNewUserNS
	flagUnshareCgroupNS
	flagMountNS
	flagNoNewPrivs
	flagRootReadonly
	flagDevices
	flagUmask
	flagOOMScore
	flagCgroupNS
	flagHostname
	flagDomainname
	flagFinalPropagation
	flagLoopback
)

const (
	mountPlain = iota
	mountBind
	mountCgroup
)

// mountMaxProps is how many propagation changes one mount may carry.
const mountMaxProps = 8

// The capability sets, in the order they are sent.
const (
	capSetBounding = iota
	capSetEffective
	capSetPermitted
	capSetInheritable
	capSetAmbient
	capSets
)

// initConfig is what init is told, before it is encoded.
type initConfig struct {
	Mode          int
	ID            string
	Bundle        string
	Spec          *specs.Spec
	Process       *specs.Process
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFDs   int
	Hooks         bool // stop for prestart/createRuntime hooks
	NewUserNS     bool
	UnshareCgroup bool
	Root          string // exec: chroot here first
	HookPid       int    // init's pid as its hooks see it
	SeccompBPF    []byte // the spec's seccomp filter, compiled
	SeccompFlags  uint
}

// defaultDevices are the character devices every container gets
// (runtime-spec "Default Devices").
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

var defaultSymlinks = [][2]string{
	{"/proc/self/fd", "/dev/fd"},
	{"/proc/self/fd/0", "/dev/stdin"},
	{"/proc/self/fd/1", "/dev/stdout"},
	{"/proc/self/fd/2", "/dev/stderr"},
	{"/proc/kcore", "/dev/core"},
	{"pts/ptmx", "/dev/ptmx"},
}

// wire appends the configuration's values: u64 little-endian, strings
// with a u64 length and a terminating NUL.
type wire struct {
	b   []byte
	err error
}

func (w *wire) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *wire) bytes(b []byte) {
	w.u64(uint64(len(b)))
	w.b = append(append(w.b, b...), 0)
}

func (w *wire) str(s string) {
	if strings.IndexByte(s, 0) >= 0 && w.err == nil {
		w.err = fmt.Errorf("%q holds a NUL byte", s)
	}
	w.bytes([]byte(s))
}

func (w *wire) strs(ss []string) {
	w.u64(uint64(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}

func (w *wire) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// encode compiles the configuration for init.
func (cfg *initConfig) encode() ([]byte, error) {
	w := &wire{b: make([]byte, 0, 4096)}
	spec, p := cfg.Spec, cfg.Process
	create := cfg.Mode == modeCreate
	if spec == nil {
		spec = &specs.Spec{}
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	if spec.Root == nil {
		spec.Root = &specs.Root{}
	}

	var flags uint64
	set := func(f uint64, on bool) {
		if on {
			flags |= f
		}
	}
	_, mountNS := namespace(spec, specs.MountNamespace)
	_, cgroupNS := namespace(spec, specs.CgroupNamespace)
	netNS, hasNetNS := namespace(spec, specs.NetworkNamespace)
	_, uts := namespace(spec, specs.UTSNamespace)
	finalProp, hasFinalProp := propagationTable[spec.Linux.RootfsPropagation]
	set(flagNoPivot, cfg.NoPivot)
	set(flagNoKeyring, cfg.NoNewKeyring)
	set(flagTerminal, p.Terminal)
	set(flagNoNewPrivs, p.NoNewPrivileges)
	set(flagUmask, p.User.Umask != nil)
	set(flagOOMScore, p.OOMScoreAdj != nil)
	if create {
		set(flagHooks, cfg.Hooks)
		set(flagNewUserNS, cfg.NewUserNS)
		set(flagUnshareCgroupNS, cfg.UnshareCgroup)
		set(flagMountNS, mountNS)
		set(flagRootReadonly, spec.Root.Readonly)
		set(flagCgroupNS, cgroupNS)
		set(flagHostname, spec.Hostname != "")
		set(flagDomainname, spec.Domainname != "")
		set(flagFinalPropagation, hasFinalProp)
		set(flagLoopback, hasNetNS && netNS.Path == "")
		if (spec.Hostname != "" || spec.Domainname != "") && !uts {
			w.fail(errors.New("hostname and domainname need a UTS namespace in linux.namespaces"))
		}
	}
	mounts, devBound := cfg.mounts(w, spec)
	set(flagDevices, create && !devBound)

	w.u64(uint64(cfg.Mode))
	w.u64(flags)
	w.str(cfg.ID)
	if create {
		w.str(rootfsPath(cfg.Bundle, spec.Root.Path))
	} else {
		w.str("")
	}
	w.str(cfg.Root)
	rootProp := uint64(unix.MS_SLAVE | unix.MS_REC)
	if hasFinalProp {
		rootProp = uint64(finalProp)
	}
	w.u64(rootProp)
	w.u64(uint64(finalProp))
	w.b = append(w.b, mounts...)
	cfg.devices(w, spec, create)
	cfg.hooks(w, spec, create)
	if create {
		w.str(spec.Hostname)
		w.str(spec.Domainname)
		cfg.sysctls(w, spec)
		w.strs(spec.Linux.ReadonlyPaths)
		w.strs(spec.Linux.MaskedPaths)
	} else {
		w.str("")
		w.str("")
		w.u64(0)
		w.strs(nil)
		w.strs(nil)
	}
	cfg.process(w, p)
	return w.b, w.err
}

// mounts encodes the spec's mounts into their own buffer (their flags
// decide one of the configuration flags, written before them) and reports
// whether one binds over /dev.
func (cfg *initConfig) mounts(parent *wire, spec *specs.Spec) ([]byte, bool) {
	w := &wire{}
	if cfg.Mode != modeCreate {
		w.u64(0)
		return w.b, false
	}
	devBound := false
	w.u64(uint64(len(spec.Mounts)))
	for i, m := range spec.Mounts {
		o := parseMountOptions(m.Options)
		kind, src := mountPlain, m.Source
		switch {
		case m.Type == "bind" || m.Type == "rbind" || o.bind:
			if !o.bind {
				o.flags |= unix.MS_BIND
				if m.Type == "rbind" {
					o.flags |= unix.MS_REC
				}
			}
			kind = mountBind
			if !filepath.IsAbs(src) {
				src = filepath.Join(cfg.Bundle, src)
			}
			if filepath.Clean(m.Destination) == "/dev" {
				devBound = true
			}
		case m.Type == "cgroup":
			kind = mountCgroup
		}
		if len(o.propagation) > mountMaxProps {
			parent.fail(fmt.Errorf("mounts[%d]: more than %d propagation options", i, mountMaxProps))
		}
		w.u64(uint64(kind))
		w.str(src)
		w.str(m.Destination)
		w.str(m.Type)
		w.str(o.data)
		w.u64(uint64(o.flags))
		w.u64(o.attrSet)
		w.u64(o.attrClear)
		w.u64(uint64(len(o.propagation)))
		for _, p := range o.propagation {
			w.u64(uint64(p))
		}
	}
	if w.err != nil {
		parent.fail(w.err)
	}
	return w.b, devBound
}

func (cfg *initConfig) devices(w *wire, spec *specs.Spec, create bool) {
	if !create {
		w.u64(0)
		w.u64(0)
		return
	}
	devs := append(slices.Clone(defaultDevices), spec.Linux.Devices...)
	w.u64(uint64(len(devs)))
	for _, d := range devs {
		perm := uint64(0o666)
		if d.FileMode != nil {
			perm = uint64(d.FileMode.Perm())
		}
		var uid, gid uint64
		if d.UID != nil {
			uid = uint64(*d.UID)
		}
		if d.GID != nil {
			gid = uint64(*d.GID)
		}
		typ := uint64('c')
		if d.Type != "" {
			typ = uint64(d.Type[0])
		}
		w.str(d.Path)
		for _, v := range []uint64{typ, uint64(d.Major), uint64(d.Minor), perm, uid, gid} {
			w.u64(v)
		}
	}
	w.u64(uint64(len(defaultSymlinks)))
	for _, l := range defaultSymlinks {
		w.str(l[0])
		w.str(l[1])
	}
}

// hooks encodes the createContainer and startContainer hooks, which init
// runs in the container's namespaces, each list followed by the state
// document its hooks read.
func (cfg *initConfig) hooks(w *wire, spec *specs.Spec, create bool) {
	var hooks *specs.Hooks
	if create && spec.Hooks != nil {
		hooks = spec.Hooks
	} else {
		hooks = &specs.Hooks{}
	}
	state := specs.State{Version: specs.Version, ID: cfg.ID, Pid: cfg.HookPid, Bundle: cfg.Bundle, Annotations: spec.Annotations}
	for _, phase := range []struct {
		name   string
		hooks  []specs.Hook
		status specs.ContainerState
	}{{"createContainer", hooks.CreateContainer, specs.StateCreating}, {"startContainer", hooks.StartContainer, specs.StateCreated}} {
		w.u64(uint64(len(phase.hooks)))
		for i, h := range phase.hooks {
			var timeout uint64
			if h.Timeout != nil {
				if *h.Timeout <= 0 {
					w.fail(fmt.Errorf("%s hook #%d (%s): timeout must be positive, got %d", phase.name, i, h.Path, *h.Timeout))
				}
				timeout = uint64(*h.Timeout)
			}
			w.str(h.Path)
			w.strs(h.Args)
			w.strs(h.Env)
			w.u64(timeout)
		}
		state.Status = phase.status
		doc, err := json.Marshal(state)
		if err != nil {
			w.fail(err)
		}
		w.bytes(doc)
	}
}

func (cfg *initConfig) sysctls(w *wire, spec *specs.Spec) {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range spec.Linux.Sysctl {
			if !yield(k) {
				return
			}
		}
	})
	w.u64(uint64(len(keys)))
	for _, k := range keys {
		if k == "" || strings.Contains(k, "..") || strings.ContainsAny(k, "/\x00") {
			w.fail(fmt.Errorf("linux.sysctl: invalid key %q", k))
		}
		w.str(filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/")))
		w.str(spec.Linux.Sysctl[k])
		w.str(k)
	}
}

func (cfg *initConfig) process(w *wire, p *specs.Process) {
	w.strs(p.Args)
	w.strs(p.Env)
	w.str(p.Cwd)
	w.u64(uint64(p.User.UID))
	w.u64(uint64(p.User.GID))
	w.u64(uint64(len(p.User.AdditionalGids)))
	for _, g := range p.User.AdditionalGids {
		w.u64(uint64(g))
	}
	var umask, oom uint64
	if p.User.Umask != nil {
		umask = uint64(*p.User.Umask)
	}
	if p.OOMScoreAdj != nil {
		oom = uint64(int64(*p.OOMScoreAdj))
	}
	w.u64(umask)
	w.u64(oom)
	w.u64(uint64(len(p.Rlimits)))
	for _, l := range p.Rlimits {
		res, ok := rlimitNames[l.Type]
		if !ok {
			w.fail(fmt.Errorf("process.rlimits: unknown rlimit %q", l.Type))
		}
		w.str(l.Type)
		w.u64(uint64(res))
		w.u64(l.Soft)
		w.u64(l.Hard)
	}
	caps := p.Capabilities
	if caps == nil {
		caps = &specs.LinuxCapabilities{}
	}
	var sets [capSets][]string
	sets[capSetBounding] = caps.Bounding
	sets[capSetEffective] = caps.Effective
	sets[capSetPermitted] = caps.Permitted
	sets[capSetInheritable] = caps.Inheritable
	sets[capSetAmbient] = caps.Ambient
	for _, set := range sets {
		w.u64(capMask(set))
	}
	w.bytes(cfg.SeccompBPF)
	w.u64(uint64(cfg.SeccompFlags))
	w.u64(uint64(cfg.PreserveFDs))
	var rows, cols uint64
	if p.ConsoleSize != nil {
		rows, cols = uint64(p.ConsoleSize.Height), uint64(p.ConsoleSize.Width)
	}
	w.u64(rows)
	w.u64(cols)
}

// sendConfig compiles cfg, its seccomp filter included, and sends it to
// init.
func (r *Runtime) sendConfig(sync *syncPipe, cfg *initConfig) error {
	if err := r.compileSeccomp(cfg); err != nil {
		return err
	}
	b, err := cfg.encode()
	if err != nil {
		return err
	}
	if err := sync.send(msgConfig, b); err != nil {
		return fmt.Errorf("send configuration to init: %w", err)
	}
	return nil
}

// capMask returns the capabilities named as a bit mask; those the running
// kernel does not know are skipped, as runc does.
func capMask(names []string) uint64 {
	last, err := capability.LastCap()
	if err != nil {
		last = 63 // init skips what the kernel refuses
	}
	var m uint64
	for _, n := range names {
		if c, err := capabilityByName(n); err == nil && c <= last && c < 64 {
			m |= 1 << uint(c)
		}
	}
	return m
}

// syncPipe is one end of a socket to init, carrying frames: a
// little-endian u32 length, a type byte and the payload.
type syncPipe struct{ f *os.File }

func newSyncPipe(f *os.File) *syncPipe { return &syncPipe{f: f} }

func (p *syncPipe) send(typ byte, payload []byte) error {
	b := make([]byte, 5, 5+len(payload))
	binary.LittleEndian.PutUint32(b, uint32(len(payload)+1))
	b[4] = typ
	_, err := p.f.Write(append(b, payload...))
	return err
}

// recv reads the next frame, which must be of type want; an error frame
// becomes a Go error, and EOF is returned as io.EOF.
func (p *syncPipe) recv(want byte) error {
	var hdr [5]byte
	if _, err := io.ReadFull(p.f, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return io.EOF
		}
		return err
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n == 0 || n > 1<<20 {
		return fmt.Errorf("init sent a frame of %d bytes", n)
	}
	payload := make([]byte, n-1)
	if _, err := io.ReadFull(p.f, payload); err != nil {
		return err
	}
	if hdr[4] == msgError {
		return initFailure(string(payload))
	}
	if hdr[4] != want {
		return fmt.Errorf("init sent message %q, expected %q", hdr[4], want)
	}
	return nil
}

// initFailure is the error of an error frame. Init's refusals of the
// process's program (look_path in init.c: `process.args[0] "NAME": WHY`)
// are classed as Docker and Podman class them: a program that is not there
// is errdefs.ErrCommandNotFound (127), one that cannot run
// errdefs.ErrCannotExecute (126).
func initFailure(msg string) error {
	if !strings.HasPrefix(msg, `process.args[0] "`) {
		return errors.New(msg)
	}
	class := errdefs.ErrCommandNotFound
	if strings.HasSuffix(msg, ": permission denied") || strings.HasSuffix(msg, ": is a directory") {
		class = errdefs.ErrCannotExecute
	}
	return errdefs.FromClass(errdefs.ClassName(class), msg)
}

// socketPair returns a connected pair of stream sockets, both close-on-exec.
func socketPair(name string) (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), name+"-parent"), os.NewFile(uintptr(fds[1]), name+"-child"), nil
}
