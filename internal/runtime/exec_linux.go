package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions describe a process to start in a running container.
type ExecOptions struct {
	Process       *specs.Process
	PidFile       string
	Detach        bool
	ConsoleSocket string
	PreserveFDs   int
	Stdin         *os.File
	Stdout        *os.File
	Stderr        *os.File
}

// Exec starts a process in container id's namespaces and cgroup. Unless
// Detach is set it waits for the process and returns its exit status.
func (r *Runtime) Exec(ctx context.Context, id string, opts ExecOptions) (int, error) {
	rec, err := r.load(id)
	if err != nil {
		return -1, err
	}
	if st := r.status(rec); st != specs.StateRunning && st != specs.StateCreated {
		return -1, fmt.Errorf("container %q is %s; exec needs a running container: %w", id, st, errdefs.ErrConflict)
	}
	p := opts.Process
	if p == nil || len(p.Args) == 0 {
		return -1, fmt.Errorf("exec: no command given: %w", errdefs.ErrInvalidArgument)
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if err := ValidateProcess(p); err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	var console, consoleParent *os.File
	if p.Terminal {
		if opts.ConsoleSocket != "" {
			if console, err = dialConsole(opts.ConsoleSocket); err != nil {
				return -1, err
			}
		} else if opts.Detach {
			return -1, fmt.Errorf("exec: --tty with --detach needs --console-socket: %w", errdefs.ErrInvalidArgument)
		} else if consoleParent, console, err = socketPair("console"); err != nil {
			return -1, err
		} else {
			defer consoleParent.Close()
		}
		defer console.Close()
	}
	var namespaces []specs.LinuxNamespace
	for _, ns := range rec.Spec.Linux.Namespaces {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: ns.Type,
			Path: "/proc/" + strconv.Itoa(rec.Pid) + "/ns/" + procNames[ns.Type]})
	}
	parentSync, childSync, err := socketPair("sync")
	if err != nil {
		return -1, err
	}
	defer parentSync.Close()
	preserved, err := preservedFiles(opts.PreserveFDs)
	if err != nil {
		childSync.Close()
		return -1, err
	}
	c, err := r.spawn(&spawn{
		namespaces: namespaces,
		preserved:  preserved,
		sync:       childSync,
		console:    console,
		stdin:      stdio(opts.Stdin, os.Stdin),
		stdout:     stdio(opts.Stdout, os.Stdout),
		stderr:     stdio(opts.Stderr, os.Stderr),
	})
	childSync.Close()
	if err != nil {
		return -1, fmt.Errorf("container %q: exec: %w", id, err)
	}
	fail := func(err error) (int, error) {
		c.Process.Kill()
		c.Wait()
		return -1, fmt.Errorf("container %q: exec: %w", id, err)
	}
	cg, err := loadCgroup(rec)
	if err != nil {
		return fail(err)
	}
	if err := cg.mgr.Apply(c.Process.Pid); err != nil {
		return fail(err)
	}
	sync := newSyncPipe(parentSync)
	spec := *rec.Spec
	cfg := &initConfig{Mode: modeExec, ID: id, Spec: &spec, Process: p, PreserveFDs: opts.PreserveFDs}
	if _, ok := namespace(rec.Spec, specs.MountNamespace); !ok {
		// The container shares the host's mounts and is only chrooted;
		// the new process must be too.
		cfg.Root = "/proc/" + strconv.Itoa(rec.Pid) + "/root"
	}
	if err := r.sendConfig(sync, cfg); err != nil {
		return fail(err)
	}
	// Init sends nothing more: it closes the socket by exec'ing (EOF), or
	// reports an error.
	if err := sync.recv(msgNone); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("unexpected message from init")
		}
		return fail(err)
	}
	if opts.PidFile != "" {
		if err := writePidFile(opts.PidFile, c.Process.Pid); err != nil {
			return -1, err
		}
	}
	if opts.Detach {
		return 0, c.Process.Release()
	}
	if consoleParent != nil {
		stop, err := attachConsole(consoleParent, stdio(opts.Stdin, os.Stdin), stdio(opts.Stdout, os.Stdout))
		if err != nil {
			return fail(err)
		}
		defer stop()
	}
	return waitForward(ctx, c)
}

// exitStatus converts a wait result into a shell-style status: the exit
// code, or 128+N for a process killed by signal N.
func exitStatus(ps *os.ProcessState) int {
	ws := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
