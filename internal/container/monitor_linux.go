package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/berth-dev/berth/internal/container/monitorproto"
	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// The engine's side of a container's monitor (package monitor, started as
// package monitorproto says): starting it, or handing the container to one
// started early, and waiting for its start report.

// startMonitor runs the monitor of container c, or hands c to the one
// Prestart started, and waits for its report.
func (e *Engine) startMonitor(c *Container, attach *os.File) (monitorproto.StartReport, error) {
	m := e.early
	e.early = nil
	if m == nil {
		var err error
		if m, err = e.spawnMonitor(c.ID, attach); err != nil {
			return monitorproto.StartReport{}, err
		}
	} else if err := monitorproto.Assign(m.ctl, c.ID, attach); err != nil {
		m.report.Close()
		return monitorproto.StartReport{}, fmt.Errorf("monitor: %w", err)
	}
	defer m.report.Close()
	rep, err := monitorproto.ReadReport(m.report)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return rep, fmt.Errorf("the container's monitor exited without a report")
		}
		return rep, fmt.Errorf("monitor: %w", err)
	}
	return rep, nil
}

// StartFailure is the start report of a monitor whose container could not
// start because of err: its message and errdefs class, which Start gives
// back to its caller.
func StartFailure(err error) monitorproto.StartReport {
	return monitorproto.StartReport{Error: err.Error(), Class: errdefs.ClassName(err)}
}

// earlyMonitor is a monitor process as its starter sees it: the pipe of its
// start report and, for one started ahead of its container, the socket
// that names the container.
type earlyMonitor struct {
	report *os.File
	ctl    *os.File
}

// Prestart starts a monitor before the container it is to keep exists, so
// that its start-up — a Go program's, some 15 ms on small machines —
// overlaps the creation of the container; the next Start hands the
// container to it. A monitor that gets none exits with this process. The
// monitor outlives ctx.
func (e *Engine) Prestart(ctx context.Context) error {
	if e.early != nil {
		return nil
	}
	m, err := e.spawnMonitor(monitorproto.Unassigned, nil)
	e.early = m
	return err
}

// Adopt takes a monitor that was started ahead of this process's Go code
// (package prestart) as Prestart's: report is the read end of its report
// pipe, ctl its control socket.
func (e *Engine) Adopt(pid int, report, ctl *os.File) {
	if e.early != nil {
		report.Close()
		ctl.Close()
		return
	}
	e.early = &earlyMonitor{report: report, ctl: ctl}
	go func() { // collect it if it ends while this command runs
		if p, err := os.FindProcess(pid); err == nil {
			p.Wait()
		}
	}()
}

// spawnMonitor starts a monitor for container id, or with id
// monitorproto.Unassigned one that waits to be told (Assign).
func (e *Engine) spawnMonitor(id string, attach *os.File) (*earlyMonitor, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	m := &earlyMonitor{report: r}
	cmd := exec.Command(e.berth[0], append(e.berth[1:], monitorproto.Command, id)...)
	cmd.Args[0] = monitorproto.ProcessName
	cmd.ExtraFiles = []*os.File{w} // monitorproto.ReportFd
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	if id == monitorproto.Unassigned {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			r.Close()
			return nil, err
		}
		m.ctl = os.NewFile(uintptr(fds[0]), "monitor-ctl")
		theirs := os.NewFile(uintptr(fds[1]), "monitor-ctl")
		defer theirs.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, theirs) // monitorproto.CtlFd
	} else if attach != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, attach) // monitorproto.AttachFd
		cmd.Env = append(cmd.Env, monitorproto.AttachEnv+"=1")
	}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		if m.ctl != nil {
			m.ctl.Close()
		}
		return nil, fmt.Errorf("monitor: %w", err)
	}
	go cmd.Wait() // the monitor outlives this command; collect it if not
	return m, nil
}
