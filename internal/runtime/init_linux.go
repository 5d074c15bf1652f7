package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func init() {
	// Init must run on one OS thread from start to exec: capabilities,
	// no_new_privs and seccomp are per-thread, and exec inherits only the
	// calling thread's.
	if len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv(envInitFDs) != "" {
		goruntime.LockOSThread()
	}
}

// IsInit reports whether this process was started as a container's init.
func IsInit() bool { return len(os.Args) > 1 && os.Args[1] == "init" && os.Getenv(envInitFDs) != "" }

// Init is the container side of Create and Exec. It never returns: it
// execs the container's program or exits after reporting an error to the
// runtime over the sync socket.
func Init() {
	fds := strings.Split(os.Getenv(envInitFDs), ",")
	os.Unsetenv(envInitFDs)
	file := func(i int, name string) *os.File {
		if i >= len(fds) {
			return nil
		}
		n, err := strconv.Atoi(fds[i])
		if err != nil || n < 0 {
			return nil
		}
		return os.NewFile(uintptr(n), name)
	}
	syncFile := file(0, "sync")
	if syncFile == nil {
		fmt.Fprintln(os.Stderr, "berth-runtime init: no sync socket")
		os.Exit(125)
	}
	unix.CloseOnExec(int(syncFile.Fd()))
	sync := newSyncPipe(syncFile)
	var cfg initConfig
	if err := sync.dec.Decode(&cfg); err != nil {
		os.Exit(125)
	}
	var err error
	switch cfg.Mode {
	case modeCreate:
		err = initContainer(sync, &cfg, file(1, "listener"), file(2, "console"))
	case modeExec:
		err = initExec(sync, &cfg, file(2, "console"))
	default:
		err = fmt.Errorf("unknown init mode %q", cfg.Mode)
	}
	sync.fail(err)
	os.Exit(125)
}

// initContainer prepares a new container and waits for Start.
func initContainer(sync *syncPipe, cfg *initConfig, listener, consoleSock *os.File) error {
	if listener == nil {
		return errors.New("no start socket")
	}
	unix.CloseOnExec(int(listener.Fd()))
	spec, p := cfg.Spec, cfg.Process
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	// The capability library reads /proc/self/status, which the new root
	// may not have.
	caps, err := newCapSet(p.Capabilities)
	if err != nil {
		return err
	}
	rfs, err := newRootfs(cfg)
	if err != nil {
		return err
	}
	if err := sync.recv(msgCgroup); err != nil {
		return err
	}
	if cfg.UnshareCgroup {
		// Only this (locked) thread moves, and exec keeps this thread's.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("cgroup namespace: %w", err)
		}
	}
	_, mountNS := namespace(spec, specs.MountNamespace)
	if mountNS {
		if err := rfs.prepare(); err != nil {
			return err
		}
	}
	if cfg.Hooks {
		if err := sync.send(syncMsg{Type: msgHooks}); err != nil {
			return err
		}
		if err := sync.recv(msgResume); err != nil {
			return err
		}
	}
	state := &specs.State{Version: specs.Version, ID: cfg.ID, Status: specs.StateCreating,
		Pid: os.Getpid(), Bundle: cfg.Bundle, Annotations: spec.Annotations}
	if spec.Hooks != nil {
		if err := runHooks(context.Background(), "createContainer", spec.Hooks.CreateContainer, state, nil); err != nil {
			return err
		}
	}
	if mountNS {
		if err := rfs.pivot(cfg.NoPivot); err != nil {
			return err
		}
		unix.Close(rfs.root)
	} else if err := rfs.chroot(); err != nil {
		return err
	}
	if p.Terminal {
		if err := setupConsole(consoleSock, p.ConsoleSize); err != nil {
			return err
		}
	}
	if mountNS {
		if err := rfs.finish(); err != nil {
			return err
		}
	}
	if err := setIdentity(spec); err != nil {
		return err
	}
	if !cfg.NoNewKeyring {
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID); err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EACCES) {
			return fmt.Errorf("session keyring: %w", err)
		}
	}
	sec := &seccompFilter{spec: spec.Linux.Seccomp, bpf: cfg.SeccompBPF, flags: cfg.SeccompFlags}
	argv0, env, err := prepareProcess(p, caps, sec, cfg.PreserveFDs)
	if err != nil {
		return err
	}
	if err := sync.send(syncMsg{Type: msgReady}); err != nil {
		return err
	}
	// Block until Start connects.
	nfd, _, err := unix.Accept4(int(listener.Fd()), unix.SOCK_CLOEXEC)
	if err != nil {
		return fmt.Errorf("wait for start: %w", err)
	}
	conn := os.NewFile(uintptr(nfd), "start")
	listener.Close()
	syncFile := sync.f
	startSync := newSyncPipe(conn)
	err = func() error {
		state.Status = specs.StateCreated
		if spec.Hooks != nil {
			if err := runHooks(context.Background(), "startContainer", spec.Hooks.StartContainer, state, nil); err != nil {
				return err
			}
		}
		return execProcess(argv0, p, env, sec)
	}()
	syncFile.Close()
	startSync.fail(err)
	os.Exit(125)
	return nil
}

// initExec prepares a process inside a running container and execs it.
func initExec(sync *syncPipe, cfg *initConfig, consoleSock *os.File) error {
	p := cfg.Process
	if cfg.Root != "" {
		if err := unix.Chroot(cfg.Root); err != nil {
			return fmt.Errorf("chroot into the container: %w", err)
		}
	}
	if p.Terminal {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
		if err := setupConsole(consoleSock, p.ConsoleSize); err != nil {
			return err
		}
	}
	sec := &seccompFilter{bpf: cfg.SeccompBPF, flags: cfg.SeccompFlags}
	if cfg.Spec != nil && cfg.Spec.Linux != nil {
		sec.spec = cfg.Spec.Linux.Seccomp
	}
	caps, err := newCapSet(p.Capabilities)
	if err != nil {
		return err
	}
	argv0, env, err := prepareProcess(p, caps, sec, cfg.PreserveFDs)
	if err != nil {
		return err
	}
	return execProcess(argv0, p, env, sec)
}

func setIdentity(spec *specs.Spec) error {
	_, uts := namespace(spec, specs.UTSNamespace)
	if spec.Hostname != "" {
		if !uts {
			return errors.New("hostname: needs a UTS namespace in linux.namespaces")
		}
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if !uts {
			return errors.New("domainname: needs a UTS namespace in linux.namespaces")
		}
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("domainname: %w", err)
		}
	}
	return nil
}

// prepareProcess does everything for the process short of exec: limits,
// privileges, user, working directory. Seccomp is loaded here unless
// no_new_privs lets it wait until just before exec.
func prepareProcess(p *specs.Process, caps *capSet, sec *seccompFilter, preserve int) (string, []string, error) {
	if err := closeExtraFDs(preserve); err != nil {
		return "", nil, err
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return "", nil, err
	}
	if err := setOOMScoreAdj(p); err != nil {
		return "", nil, err
	}
	env := processEnv(p)
	argv0, err := lookPath(p.Args[0], env)
	if err != nil {
		return "", nil, err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return "", nil, fmt.Errorf("no_new_privs: %w", err)
		}
	} else if err := sec.load(); err != nil {
		return "", nil, err
	}
	if err := caps.applyBounding(); err != nil {
		return "", nil, err
	}
	if err := setUser(p.User); err != nil {
		return "", nil, err
	}
	if err := caps.apply(); err != nil {
		return "", nil, err
	}
	if err := unix.Chdir(p.Cwd); err != nil {
		return "", nil, fmt.Errorf("process.cwd %s: %w", p.Cwd, err)
	}
	return argv0, env, nil
}

func execProcess(argv0 string, p *specs.Process, env []string, sec *seccompFilter) error {
	if p.NoNewPrivileges {
		if err := sec.load(); err != nil {
			return err
		}
	}
	if err := lowerSoftRlimits(p.Rlimits); err != nil {
		return err
	}
	err := unix.Exec(argv0, p.Args, env)
	return fmt.Errorf("exec %s: %w", argv0, err)
}

// setupConsole creates a pseudo-terminal in the container, sends its
// master over the console socket and makes the slave the process's
// controlling terminal and stdio.
func setupConsole(sock *os.File, size *specs.Box) error {
	if sock == nil {
		return errors.New("process.terminal is set but there is no console socket")
	}
	defer sock.Close()
	master, slavePath, err := console.NewPty()
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer master.Close()
	if size != nil {
		_ = master.Resize(console.WinSize{Height: uint16(size.Height), Width: uint16(size.Width)})
	}
	rights := unix.UnixRights(int(master.Fd()))
	if err := unix.Sendmsg(int(sock.Fd()), []byte(slavePath), rights, nil, 0); err != nil {
		return fmt.Errorf("console: send master: %w", err)
	}
	slave, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("console: open %s: %w", slavePath, err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("console: %w", err)
		}
	}
	unix.Close(slave)
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("console: set controlling terminal: %w", err)
	}
	return nil
}
