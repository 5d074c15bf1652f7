package monitor

import (
	"errors"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// reaper collects every child of the monitor. The monitor is a child
// subreaper, so the container's process (whose parent, the runtime, exits
// right after starting it) and anything the container leaves behind become
// its children; a single loop waiting for any child is then the only safe
// way to collect them, and the monitor's own commands are waited for
// through it rather than with exec.Cmd.Wait.
type reaper struct {
	mu      sync.Mutex
	exited  map[int]unix.WaitStatus
	waiters map[int]chan unix.WaitStatus
}

func newReaper() *reaper {
	r := &reaper{exited: map[int]unix.WaitStatus{}, waiters: map[int]chan unix.WaitStatus{}}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	go func() {
		for {
			r.reap()
			<-ch
		}
	}()
	return r
}

func (r *reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		r.mu.Lock()
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		} else {
			r.exited[pid] = ws
		}
		r.mu.Unlock()
	}
}

// wait returns a channel that receives pid's wait status once it exits.
// pid must be a child (or an adopted orphan) of this process.
func (r *reaper) wait(pid int) <-chan unix.WaitStatus {
	ch := make(chan unix.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws, ok := r.exited[pid]; ok {
		delete(r.exited, pid)
		ch <- ws
	} else {
		r.waiters[pid] = ch
	}
	return ch
}

// forget drops statuses nobody will ask for: of processes the container
// left behind.
func (r *reaper) forget() {
	r.mu.Lock()
	clear(r.exited)
	r.mu.Unlock()
}

// exitCode is the status a shell would report for ws.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
