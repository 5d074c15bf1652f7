package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Create creates container id from a bundle and leaves its process waiting
// for Start. It returns once the container is in the created state.
func (r *Runtime) Create(ctx context.Context, id string, opts CreateOptions) error {
	c, _, err := r.create(ctx, id, opts, nil)
	if err != nil {
		return err
	}
	return c.Process.Release()
}

// create does Create's work and returns init's handle; console, if not nil,
// replaces the console socket.
func (r *Runtime) create(ctx context.Context, id string, opts CreateOptions, console *os.File) (*exec.Cmd, *record, error) {
	if err := checkID(id); err != nil {
		return nil, nil, err
	}
	bundle, err := filepath.Abs(opts.Bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %q: %w", opts.Bundle, err)
	}
	spec := opts.Spec
	if spec == nil {
		spec, err = LoadSpec(bundle)
	} else if err = validateSpec(spec); err != nil {
		err = fmt.Errorf("config.json: %w", err)
	}
	if err != nil {
		return nil, nil, err
	}
	if spec.Process == nil {
		return nil, nil, fmt.Errorf("config.json: field process: missing: %w", errdefs.ErrInvalidArgument)
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	if spec.Process.Terminal && opts.ConsoleSocket == "" && console == nil {
		return nil, nil, fmt.Errorf("process.terminal is true but no --console-socket was given: %w", errdefs.ErrInvalidArgument)
	}
	if _, ok := namespace(spec, specs.MountNamespace); !ok {
		// Mounting would change the runtime's own mount namespace, which
		// the container shares; berth only changes its root.
		r.logger().Warn("no mount namespace: the container shares the host's mounts; mounts, devices, masked and read-only paths are not applied", "id", id)
	}
	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return nil, nil, fmt.Errorf("state root %s: %w", r.Root, err)
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, stateDirMode); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, nil, fmt.Errorf("container %q: %w", id, errdefs.ErrAlreadyExists)
		}
		return nil, nil, fmt.Errorf("container %q: %w", id, err)
	}
	unlock, err := r.lock(id)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()

	rec := &record{ID: id, Bundle: bundle, Created: time.Now().UTC(), Spec: spec, Owner: strconv.Itoa(os.Getuid())}
	var cg *cgroup
	var c *exec.Cmd
	done := false
	defer func() {
		if done {
			return
		}
		if c != nil && c.Process != nil {
			c.Process.Kill()
			c.Wait()
		}
		if cg != nil {
			cg.destroy()
		}
		os.RemoveAll(dir)
	}()

	cgcfg, err := cgroupConfig(id, spec)
	if err != nil {
		return nil, nil, err
	}

	ln, err := listenStart(filepath.Join(dir, startSock))
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()

	if !spec.Process.Terminal {
		console = nil
	} else if console == nil {
		console, err = dialConsole(opts.ConsoleSocket)
		if err != nil {
			return nil, nil, err
		}
		defer console.Close()
	}
	parentSync, childSync, err := socketPair("sync")
	if err != nil {
		return nil, nil, err
	}
	defer parentSync.Close()

	preserved, err := preservedFiles(opts.PreserveFDs)
	if err != nil {
		childSync.Close()
		return nil, nil, err
	}
	// A new cgroup namespace must be rooted at the container's cgroup, which
	// init joins only after it is forked: init unshares it itself.
	var namespaces []specs.LinuxNamespace
	unshareCgroup := false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.CgroupNamespace && ns.Path == "" {
			unshareCgroup = true
			continue
		}
		namespaces = append(namespaces, ns)
	}
	sp := &spawn{
		namespaces: namespaces,
		uidMaps:    spec.Linux.UIDMappings,
		gidMaps:    spec.Linux.GIDMappings,
		preserved:  preserved,
		sync:       childSync,
		listener:   ln,
		console:    console,
		stdin:      stdio(opts.Stdin, os.Stdin),
		stdout:     stdio(opts.Stdout, os.Stdout),
		stderr:     stdio(opts.Stderr, os.Stderr),
	}
	c, err = r.spawn(sp)
	childSync.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("container %q: start init: %w", id, err)
	}
	rec.Pid = c.Process.Pid
	_, rec.PidStart, _ = procStat(rec.Pid)

	sync := newSyncPipe(parentSync)
	_, newUser := namespace(spec, specs.UserNamespace)
	cfg := &initConfig{
		Mode: modeCreate, ID: id, Bundle: bundle, Spec: spec, Process: spec.Process,
		NoPivot: opts.NoPivot, NoNewKeyring: opts.NoNewKeyring, PreserveFDs: opts.PreserveFDs,
		NewUserNS: newUser, UnshareCgroup: unshareCgroup, HookPid: rec.Pid,
		Hooks: spec.Hooks != nil && (len(spec.Hooks.Prestart) > 0 || len(spec.Hooks.CreateRuntime) > 0),
	}
	if ns, ok := namespace(spec, specs.PIDNamespace); ok && ns.Path == "" {
		cfg.HookPid = 1
	} else if ok {
		cfg.HookPid = nsPid(rec.Pid)
	}
	if err := r.sendConfig(sync, cfg); err != nil {
		return nil, nil, fmt.Errorf("container %q: %w", id, err)
	}
	// The cgroup is made while init's binary loads and decodes its
	// configuration; init waits for msgCgroup before it does anything that
	// a limit must cover.
	if cg, err = newCgroup(cgcfg); err != nil {
		return nil, nil, err
	}
	if pids, _ := cg.mgr.GetAllPids(); len(pids) > 0 {
		cg = nil // not ours to remove
		return nil, nil, fmt.Errorf("container %q: cgroup %s already holds processes %v (another container's?): %w", id, cgcfg.Path, pids, errdefs.ErrConflict)
	}
	// Init would stop on entering a frozen cgroup, and create wait for it
	// forever; runc refuses such a cgroup too.
	if st, err := cg.mgr.GetFreezerState(); err == nil && st == cgroups.Frozen {
		cg = nil // not ours to remove
		return nil, nil, fmt.Errorf("container %q: container's cgroup unexpectedly frozen (%s); thaw it or choose another linux.cgroupsPath: %w", id, cgcfg.Path, errdefs.ErrConflict)
	}
	rec.CgroupPaths = cg.paths()
	rec.cg = cg
	if err := cg.apply(rec.Pid); err != nil {
		return nil, nil, err
	}
	if err := sync.send(msgCgroup, nil); err != nil {
		return nil, nil, initError(id, err)
	}
	if cfg.Hooks {
		if err := sync.recv(msgHooks); err != nil {
			return nil, nil, initError(id, err)
		}
		st := r.stateOf(rec)
		st.Status = specs.StateCreating
		if err := runHooks(ctx, "prestart", spec.Hooks.Prestart, &st.State, nil); err != nil {
			return nil, nil, err
		}
		if err := runHooks(ctx, "createRuntime", spec.Hooks.CreateRuntime, &st.State, nil); err != nil {
			return nil, nil, err
		}
		if err := sync.send(msgResume, nil); err != nil {
			return nil, nil, initError(id, err)
		}
	}
	if err := sync.recv(msgReady); err != nil {
		return nil, nil, initError(id, err)
	}
	if err := r.save(rec); err != nil {
		return nil, nil, err
	}
	if opts.PidFile != "" {
		if err := writePidFile(opts.PidFile, rec.Pid); err != nil {
			return nil, nil, err
		}
	}
	done = true
	return c, rec, nil
}

func initError(id string, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("container %q: init exited during setup", id)
	}
	return fmt.Errorf("container %q: %w", id, err)
}

func stdio(f, def *os.File) *os.File {
	if f != nil {
		return f
	}
	return def
}

// listenStart creates the socket that Start connects to. Its existence
// marks the container as created.
func listenStart(path string) (*os.File, error) {
	f, err := listenUnix(path)
	if err != nil {
		return nil, fmt.Errorf("start socket: %w", err)
	}
	return f, nil
}

func dialConsole(path string) (*os.File, error) {
	f, err := dialUnix(path)
	if err != nil {
		return nil, fmt.Errorf("--console-socket: %w", err)
	}
	return f, nil
}

// preservedFiles returns the caller's fds 3..3+n-1, passed on to the
// container's process at the same numbers.
func preservedFiles(n int) ([]*os.File, error) {
	if n < 0 {
		return nil, fmt.Errorf("--preserve-fds %d: must not be negative: %w", n, errdefs.ErrInvalidArgument)
	}
	files := make([]*os.File, 0, n)
	for i := 0; i < n; i++ {
		fd := 3 + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("--preserve-fds %d: fd %d is not open: %w", n, fd, errdefs.ErrInvalidArgument)
		}
		files = append(files, os.NewFile(uintptr(fd), "preserved-"+strconv.Itoa(fd)))
	}
	return files, nil
}

func writePidFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return os.Rename(tmp, path)
}

// nsPid returns pid as the process sees itself in its own pid namespace
// (the last NSpid of /proc/PID/status), or pid if that cannot be read.
func nsPid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return pid
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" {
			if n, err := strconv.Atoi(f[len(f)-1]); err == nil {
				return n
			}
		}
	}
	return pid
}
