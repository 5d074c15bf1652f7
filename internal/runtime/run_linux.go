package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// Run creates and starts container id. Unless detach is set it waits for
// the container's process, deletes the container and returns the exit
// status; a container killed by signal N gives 128+N.
func (r *Runtime) Run(ctx context.Context, id string, opts CreateOptions, detach bool) (int, error) {
	var consoleParent, consoleChild *os.File
	if opts.ConsoleSocket == "" && !detach {
		var err error
		if consoleParent, consoleChild, err = socketPair("console"); err != nil {
			return -1, err
		}
		defer consoleParent.Close()
		defer consoleChild.Close()
	}
	c, rec, err := r.create(ctx, id, opts, consoleChild)
	if err != nil {
		return -1, err
	}
	// This process holds no lock between create and start: like runc,
	// another command may act on the container meanwhile.
	if err := r.start(ctx, rec); err != nil {
		_ = r.remove(ctx, rec, true)
		c.Wait()
		return -1, err
	}
	if detach {
		return 0, c.Process.Release()
	}
	if rec.Spec.Process.Terminal {
		stop, err := attachConsole(consoleParent, stdio(opts.Stdin, os.Stdin), stdio(opts.Stdout, os.Stdout))
		if err != nil {
			return -1, err
		}
		defer stop()
	}
	status, err := waitForward(ctx, c)
	if derr := r.remove(ctx, rec, true); err == nil && derr != nil {
		err = derr
	}
	return status, err
}

// waitForward waits for c, passing on the signals this process receives.
func waitForward(ctx context.Context, c *exec.Cmd) (int, error) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = c.Process.Signal(s)
		case <-ctx.Done():
			_ = c.Process.Signal(unix.SIGKILL)
		case err := <-done:
			if c.ProcessState == nil {
				return -1, err
			}
			return exitStatus(c.ProcessState), nil
		}
	}
}

// attachConsole receives a pty master over sock and copies between it and
// the caller's stdio, with the caller's terminal in raw mode.
func attachConsole(sock *os.File, in io.Reader, out io.Writer) (func(), error) {
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("console: receive master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("console: no master received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("console: no master received")
	}
	master := os.NewFile(uintptr(fds[0]), "pty-master")
	restore := func() {}
	if cur, err := console.ConsoleFromFile(os.Stdin); err == nil {
		if err := cur.SetRaw(); err == nil {
			restore = func() { _ = cur.Reset() }
		}
		if ws, err := cur.Size(); err == nil {
			if m, err := console.ConsoleFromFile(master); err == nil {
				_ = m.Resize(ws)
			}
		}
	}
	go io.Copy(master, in)
	done := make(chan struct{})
	go func() { io.Copy(out, master); close(done) }()
	return func() {
		<-done
		restore()
		master.Close()
	}, nil
}
