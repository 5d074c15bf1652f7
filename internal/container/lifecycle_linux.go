package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	"github.com/moby/sys/signal"
	"golang.org/x/sys/unix"
)

// Start starts the container ref names, unless it runs already, and
// returns once its process runs (or failed to start). attach, if not nil,
// is a connected socket that the monitor serves as an attached client from
// the very start, so that not a byte of output is missed.
func (e *Engine) Start(ctx context.Context, ref string, attach *os.File) (*Container, error) {
	id, err := e.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	unlock, err := e.lockFile(id, "start.lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, st, err := e.load(id)
	if err != nil {
		return nil, err
	}
	if st.Status == Removing {
		// A removal was interrupted: it is finished, never undone.
		return nil, fmt.Errorf("container %s is being removed and cannot be started: remove it with berth rm -f: %w", c.Name, errdefs.ErrConflict)
	}
	if st.Running() {
		return c, nil
	}
	e.awaitMonitor(ctx, st)
	// Whatever an earlier run, or a start or monitor killed half-way,
	// left behind goes first; a new container has nothing to release.
	if st.Monitor.Pid != 0 || len(st.Endpoints) > 0 || fileExists(e.netnsPath(id)) || isOverlay(filepath.Join(e.dir(id), rootfsDir)) {
		e.release(ctx, c, st)
	}
	st, err = e.prepare(ctx, c)
	if err != nil {
		e.release(ctx, c, st)
		return nil, err
	}
	rep, err := e.startMonitor(c, attach)
	if err == nil && rep.Error != "" {
		err = errdefs.FromClass(rep.Class, rep.Error)
	} else if err != nil {
		e.release(ctx, c, st)
	}
	if err != nil {
		if c.Host.AutoRemove {
			e.Remove(ctx, c.ID, RemoveOptions{Force: true, Volumes: true})
		}
		return nil, commandError(fmt.Errorf("start %s: %w", c.Name, err))
	}
	return c, nil
}

// awaitMonitor waits for the monitor of the container's last run to end.
// It records the exit first and then releases the root file system, the
// network namespace and the endpoints, so a start right after a stop
// could otherwise see them released under the new run. A monitor that
// takes more than monitorGrace is killed (release then does its work).
func (e *Engine) awaitMonitor(ctx context.Context, st *State) {
	m := st.Monitor
	if !m.alive() {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, monitorGrace)
	defer cancel()
	if waitFor(wctx, 5*time.Millisecond, func() bool { return !m.alive() }) {
		return
	}
	unix.Kill(m.Pid, unix.SIGKILL)
	wctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	waitFor(wctx2, 5*time.Millisecond, func() bool { return !m.alive() })
}

// monitorGrace is how long a start waits for the last run's monitor.
const monitorGrace = 15 * time.Second

// prepare mounts the root file system, connects the networks and writes
// the runtime spec; it records the endpoints in the state it returns.
func (e *Engine) prepare(ctx context.Context, c *Container) (*State, error) {
	st, err := e.updateState(c.ID, func(s *State) error {
		s.ManualStop, s.Error, s.Warnings, s.Endpoints, s.Health = false, "", nil, nil, nil
		s.Monitor = Process{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := e.mountRootfs(c); err != nil {
		return st, err
	}
	if err := e.populateVolumes(c); err != nil {
		return st, err
	}
	if err := e.connect(ctx, c, st); err != nil {
		return st, err
	}
	if err := e.writeEtcFiles(c, st); err != nil {
		return st, err
	}
	return st, e.saveState(c.ID, st)
}

// release undoes prepare and what a run left: the runtime's record of the
// container, its networks and its mounted root file system. Every step
// may already be undone.
func (e *Engine) release(ctx context.Context, c *Container, st *State) {
	e.releaseLocal(ctx, c)
	e.releaseNetworks(ctx, c, st)
}

// releaseLocal is the quick part of release: the runtime's record, the
// network namespace and the root file system.
func (e *Engine) releaseLocal(ctx context.Context, c *Container) {
	e.DeleteRuntimeState(ctx, c)
	network.RemoveNS(e.netnsPath(c.ID))
	e.unmountRootfs(c.ID)
}

// releaseNetworks is the slow part of release: the container's endpoints
// on its networks (and, with a network's last endpoint, its bridge).
func (e *Engine) releaseNetworks(ctx context.Context, c *Container, st *State) {
	e.disconnect(ctx, c, st)
	if st != nil && len(st.Endpoints) > 0 {
		e.updateState(c.ID, func(s *State) error { s.Endpoints = nil; return nil })
	}
}

// WantRunning returns the containers that are not running but that their
// restart policies want running, as after a reboot: always, unless-stopped
// unless stopped by hand, and on-failure after a failure. A container an
// interrupted removal left is not one of them: it is never started again.
func (e *Engine) WantRunning(ctx context.Context) ([]string, error) {
	cs, sts, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for i, c := range cs {
		st := sts[i]
		if st.Running() || st.Status == Removing {
			continue
		}
		switch p := c.Host.RestartPolicy.Name; {
		case p == "always",
			p == "unless-stopped" && !st.ManualStop,
			p == "on-failure" && st.ExitCode != 0 && !st.ManualStop:
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// Stop stops the container ref names: its stop signal, then SIGKILL after
// timeout (the container's own stop timeout, or 10 s, if nil). Its restart
// policy does not bring it back.
func (e *Engine) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	c, st, err := e.Get(ctx, ref)
	if err != nil {
		return err
	}
	if !st.Running() {
		return nil
	}
	t := 10 * time.Second
	if c.Config.StopTimeout != nil {
		t = time.Duration(*c.Config.StopTimeout) * time.Second
	}
	if timeout != nil {
		t = *timeout
	}
	sig := c.Config.StopSignal
	if sig == "" {
		sig = "SIGTERM"
	}
	if err := e.terminate(ctx, c, sig, t); err != nil {
		return err
	}
	e.emit("stop", c, nil)
	return nil
}

// terminate sends sig and, if the container has not stopped after t,
// SIGKILL; it returns once the container's monitor has recorded the exit.
func (e *Engine) terminate(ctx context.Context, c *Container, sig string, t time.Duration) error {
	st, err := e.updateState(c.ID, func(s *State) error { s.ManualStop = true; return nil })
	if st == nil {
		return err
	}
	if p := c.Host.RestartPolicy.Name; err != nil && p != "" && p != "no" && st.Monitor.alive() && st.Monitor.Pid != os.Getpid() {
		// The stop is not recorded (the disk is full, and the state had
		// outgrown its reserve): the monitor, whose restart policy would
		// undo it, goes first. The container is then an orphan, whose
		// exit terminate records as far as it can.
		unix.Kill(st.Monitor.Pid, unix.SIGKILL)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		waitFor(wctx, 5*time.Millisecond, func() bool { return !st.Monitor.alive() })
		cancel()
	}
	if st.Status == Restarting && st.Monitor.alive() {
		unix.Kill(st.Monitor.Pid, unix.SIGUSR1) // ends the back-off wait
	}
	// With its monitor killed, nobody records the exit or releases what
	// the run holds: terminate does, once the process is gone.
	orphan := st.Running() && !st.Monitor.alive()
	if n, err := signal.ParseSignal(sig); err == nil {
		e.Signal(ctx, c, n)
	}
	stopped := func() bool {
		s, err := e.state(c.ID)
		return err != nil || !s.Running()
	}
	wctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	ok := waitFor(wctx, 20*time.Millisecond, stopped)
	if !ok {
		e.Signal(ctx, c, unix.SIGKILL)
		wctx2, cancel2 := context.WithTimeout(ctx, 15*time.Second)
		defer cancel2()
		ok = waitFor(wctx2, 20*time.Millisecond, stopped)
	}
	if !ok {
		return fmt.Errorf("container %s did not stop after SIGKILL: %w", c.Name, errdefs.ErrUnavailable)
	}
	if orphan {
		// state() says exited; saving it records that.
		e.updateState(c.ID, func(s *State) error { s.FinishedAt = time.Now().UTC(); return nil })
		e.release(ctx, c, st)
	}
	return nil
}

// Kill sends sig (a name or number; SIGKILL if empty) to the container's
// process. Like stop, a kill is not undone by the restart policy.
func (e *Engine) Kill(ctx context.Context, ref, sig string) error {
	c, st, err := e.Get(ctx, ref)
	if err != nil {
		return err
	}
	id := c.ID
	if sig == "" {
		sig = "SIGKILL"
	}
	n, err := signal.ParseSignal(sig)
	if err != nil {
		return fmt.Errorf("signal %q: %w", sig, errdefs.ErrInvalidArgument)
	}
	if st.Status != Running && st.Status != Paused {
		return fmt.Errorf("container %s is not running: %w", c.Name, errdefs.ErrConflict)
	}
	if n == unix.SIGKILL || n == unix.SIGTERM || n == unix.SIGINT {
		e.updateState(id, func(s *State) error { s.ManualStop = true; return nil })
	}
	e.emit("kill", c, map[string]string{"signal": strconv.Itoa(int(n))})
	if err := e.Signal(ctx, c, n); err != nil {
		return fmt.Errorf("kill %s: %s: %w", c.Name, err, errdefs.ErrConflict)
	}
	return nil
}

// RemoveOptions say how Remove treats a running container and volumes.
type RemoveOptions struct {
	Force   bool // kill a running container first
	Volumes bool // remove its anonymous volumes too
	// keepNetworks leaves the container's network endpoints to the
	// caller: the monitor releases them after telling its clients.
	keepNetworks bool
	// trash, if set, receives the path of the container's renamed
	// directory, which the caller deletes: the container is gone once
	// the directory is renamed, and deleting its files takes a while.
	trash *string
}

// Remove removes the container ref names with everything it holds. A
// running container is refused unless o.Force.
func (e *Engine) Remove(ctx context.Context, ref string, o RemoveOptions) error {
	c, st, err := e.Get(ctx, ref)
	if err != nil {
		return err
	}
	id := c.ID
	if st.Running() && st.Monitor.Pid != os.Getpid() {
		if !o.Force {
			return fmt.Errorf("container %s is %s: stop it first or remove it with -f: %w", c.Name, st.Status, errdefs.ErrConflict)
		}
		if err := e.terminate(ctx, c, "SIGKILL", 10*time.Second); err != nil {
			return err
		}
	}
	e.updateState(id, func(s *State) error { s.Status = Removing; return nil })
	if o.keepNetworks {
		e.releaseLocal(ctx, c)
	} else {
		e.release(ctx, c, st)
	}
	gone, err := hideDir(e.dir(id))
	if err != nil {
		return fmt.Errorf("remove %s: %w", c.Name, err)
	}
	if o.trash != nil {
		*o.trash = gone
	} else if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove %s: %w", c.Name, err)
	}
	e.releaseName(c.Name, id)
	if o.Volumes {
		e.removeAnonymousVolumes(ctx, c)
	}
	e.emit("destroy", c, nil)
	return nil
}

// Wait waits until the container ref names is not running and returns its
// exit status.
func (e *Engine) Wait(ctx context.Context, ref string) (int, error) {
	id, err := e.Resolve(ctx, ref)
	if err != nil {
		return 0, err
	}
	var code int
	var werr error
	waitFor(ctx, 50*time.Millisecond, func() bool {
		st, err := e.state(id)
		if err != nil {
			werr = err
			return true
		}
		code = st.ExitCode
		return !st.Running()
	})
	if werr == nil {
		werr = ctx.Err()
	}
	return code, werr
}

// lockFile takes the exclusive lock file name in the container's
// directory.
func (e *Engine) lockFile(id, name string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(e.dir(id), name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
		}
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
