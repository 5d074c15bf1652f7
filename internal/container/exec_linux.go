package container

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecOptions describe a process to run in a running container.
type ExecOptions struct {
	Args    []string
	Env     []string // added to the container's
	User    string   // "" is the container's user
	Workdir string   // "" is the container's working directory
	Tty     bool
	Detach  bool
	// Stdin, Stdout and Stderr are the process's stdio without a terminal;
	// Stdin may be nil.
	Stdin          *os.File
	Stdout, Stderr *os.File
	// Terminal, with Tty, receives the pty master and returns once the
	// process is done with it.
	Terminal func(master *os.File)
	// InProcess runs the process through berth's own runtime in this
	// process rather than in a runtime process, so that a command that is
	// not there or cannot be executed (127, 126) and the runtime's other
	// failures are told from the program's own exit status. It is for a
	// command that exits after the exec (berth exec): the runtime joins the
	// container's namespaces and forwards signals from this process, which
	// a long-lived one (the agent's probes) must not risk.
	InProcess bool
}

// Exec runs a process in the running container ref names and returns its
// exit status (0 when detached).
func (e *Engine) Exec(ctx context.Context, ref string, o ExecOptions) (int, error) {
	c, st, err := e.Get(ctx, ref)
	if err != nil {
		return -1, err
	}
	if st.Status != Running {
		return -1, fmt.Errorf("container %s is not running: %w", c.Name, errdefs.ErrConflict)
	}
	if len(o.Args) == 0 {
		return -1, fmt.Errorf("exec: no command: %w", errdefs.ErrInvalidArgument)
	}
	var spec specs.Spec
	if err := readJSON(filepath.Join(e.dir(c.ID), specFile), &spec); err != nil {
		return -1, fmt.Errorf("container %s: %w", c.Name, err)
	}
	p := *spec.Process
	p.Args, p.Terminal = o.Args, o.Tty
	p.Env = mergeEnv(p.Env, o.Env)
	if o.Workdir != "" {
		p.Cwd = o.Workdir
	}
	if o.User != "" {
		b := &specBuilder{c: &Container{Config: Config{User: o.User}}, rootfs: filepath.Join(e.dir(c.ID), rootfsDir)}
		var tmp specs.Spec
		if err := b.process(&tmp); err != nil {
			return -1, err
		}
		p.User = tmp.Process.User
	}
	var ln *net.UnixListener
	var sock string
	if o.Tty {
		d, err := os.MkdirTemp("", "berth-exec")
		if err != nil {
			return -1, err
		}
		defer os.RemoveAll(d)
		sock = filepath.Join(d, "console.sock")
		if ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"}); err != nil {
			return -1, err
		}
		defer ln.Close()
	}
	// Whatever way this returns, the process is not left behind unwaited.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan execResult, 1)
	if o.InProcess && c.Host.Runtime == "" {
		go func() { done <- e.execOwn(ctx, c, &p, sock, o) }()
	} else if err := e.execRuntime(ctx, c, &p, sock, o, done); err != nil {
		return -1, err
	}
	if o.Tty {
		if err := e.execTerminal(c, ln, o, done); err != nil {
			return -1, err
		}
	}
	r := <-done
	if r.err != nil {
		return -1, commandError(fmt.Errorf("exec in %s: %w", c.Name, r.err))
	}
	return r.status, nil
}

// execResult is how an exec ended: the process's exit status, or why it
// did not run.
type execResult struct {
	status int
	err    error
}

// execOwn runs the process through berth's own runtime, in this process,
// so that its failures keep their class: a command that is not there or
// cannot be executed is told from one that exits 127 or 126 itself.
func (e *Engine) execOwn(ctx context.Context, c *Container, p *specs.Process, sock string, o ExecOptions) execResult {
	ro := runtime.ExecOptions{Process: p, Detach: o.Detach, ConsoleSocket: sock,
		Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr}
	// A stream the caller does not give is empty, not this process's.
	for _, f := range []**os.File{&ro.Stdin, &ro.Stdout, &ro.Stderr} {
		if *f == nil {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return execResult{-1, err}
			}
			defer null.Close()
			*f = null
		}
	}
	status, err := e.OwnRuntime(c).Exec(ctx, c.ID, ro)
	return execResult{status, err}
}

// execRuntime runs the process through the container's other runtime
// (runc's command line) and sends how it ended to done. Such a runtime
// exits with the process's status, and with its own when it fails.
func (e *Engine) execRuntime(ctx context.Context, c *Container, p *specs.Process, sock string, o ExecOptions, done chan<- execResult) error {
	tmp, err := os.CreateTemp(e.dir(c.ID), ".exec-*.json")
	if err != nil {
		return err
	}
	if err := json.NewEncoder(tmp).Encode(p); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	args := []string{"exec", "--process", tmp.Name()}
	if o.Detach {
		args = append(args, "--detach")
	}
	if sock != "" {
		args = append(args, "--console-socket", sock)
	}
	cmd := e.RuntimeCmd(ctx, c, append(args, c.ID)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	if err := cmd.Start(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("exec in %s: %w", c.Name, err)
	}
	go func() {
		defer os.Remove(tmp.Name())
		err := cmd.Wait()
		if ee, ok := err.(interface{ ExitCode() int }); ok && ee.ExitCode() >= 0 {
			done <- execResult{ee.ExitCode(), nil}
			return
		}
		done <- execResult{0, err}
	}()
	return nil
}

// execTerminal takes the terminal the runtime sends over ln and serves
// it until the process is done with it.
func (e *Engine) execTerminal(c *Container, ln *net.UnixListener, o ExecOptions, done chan execResult) error {
	type result struct {
		master *os.File
		err    error
	}
	got := make(chan result, 1)
	go func() {
		conn, err := ln.AcceptUnix()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- result{err: err}
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			got <- result{err: fmt.Errorf("no terminal received")}
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) == 0 {
			got <- result{err: fmt.Errorf("no terminal received")}
			return
		}
		got <- result{master: os.NewFile(uintptr(fds[0]), "pty-master")}
	}()
	var r result
	select {
	case r = <-got:
	case ended := <-done:
		// The process ended, or never ran, before it had a terminal.
		done <- ended
		return nil
	case <-time.After(10 * time.Second):
		r.err = fmt.Errorf("the runtime sent no terminal")
	}
	if r.err != nil {
		return fmt.Errorf("exec in %s: %w", c.Name, r.err)
	}
	defer r.master.Close()
	if o.Detach {
		return nil
	}
	if o.Terminal != nil {
		o.Terminal(r.master)
	} else {
		io.Copy(o.Stdout, r.master)
	}
	return nil
}
