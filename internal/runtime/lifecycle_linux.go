package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// State returns the runtime-spec state of container id.
func (r *Runtime) State(id string) (ContainerState, error) {
	rec, err := r.load(id)
	if err != nil {
		return ContainerState{}, err
	}
	return r.stateOf(rec), nil
}

// Start runs the user program of a created container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	return r.locked(id, func(rec *record) error { return r.start(ctx, rec) })
}

// locked runs fn on container id's record while holding the container's
// lock, so that concurrent commands on one container serialise.
func (r *Runtime) locked(id string, fn func(*record) error) error {
	unlock, err := r.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	return fn(rec)
}

func (r *Runtime) start(ctx context.Context, rec *record) error {
	id := rec.ID
	if st := r.status(rec); st != specs.StateCreated {
		return fmt.Errorf("container %q is %s, not created: %w", id, st, errdefs.ErrConflict)
	}
	sock := filepath.Join(r.dir(id), startSock)
	conn, err := dialUnix(sock)
	os.Remove(sock)
	if err != nil {
		return fmt.Errorf("container %q: start: %w", id, err)
	}
	defer conn.Close()
	// Init execs the container's program, which closes the connection,
	// or reports why it could not.
	if err := newSyncPipe(conn).recv(msgNone); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("container %q: %w", id, err)
	}
	if rec.Spec.Hooks != nil && len(rec.Spec.Hooks.Poststart) > 0 {
		st := r.stateOf(rec)
		_ = runHooks(ctx, "poststart", rec.Spec.Hooks.Poststart, &st.State, r.logger())
	}
	return nil
}

// Kill sends sig to the container's init, or with all to every process
// in its cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	rec, err := r.load(id)
	if err != nil {
		return err
	}
	st := r.status(rec)
	if st == specs.StateStopped {
		return fmt.Errorf("container %q is not running: %w", id, errdefs.ErrConflict)
	}
	if all {
		return r.signalAll(rec, sig)
	}
	if err := unix.Kill(rec.Pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("container %q: kill: %w", id, err)
	}
	return nil
}

func (r *Runtime) signalAll(rec *record, sig unix.Signal) error {
	cg, err := loadCgroup(rec)
	if err != nil {
		if rec.alive() {
			_ = unix.Kill(rec.Pid, sig)
		}
		return err
	}
	pids, err := cg.mgr.GetAllPids()
	if err != nil && !cgroupGone(err) {
		return fmt.Errorf("container %q: list processes: %w", rec.ID, err)
	}
	frozen := false
	if sig == unix.SIGKILL {
		// Freeze first so that nothing forks between listing and killing.
		frozen = cg.mgr.Freeze(cgroups.Frozen) == nil
		if pids, err = cg.mgr.GetAllPids(); err != nil && !cgroupGone(err) {
			return err
		}
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, sig)
	}
	if frozen {
		_ = cg.mgr.Freeze(cgroups.Thawed)
	}
	if rec.alive() {
		_ = unix.Kill(rec.Pid, sig)
	}
	return nil
}

// Delete removes a stopped (or, with force, any) container and its cgroup,
// then runs the poststop hooks.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	err := r.locked(id, func(rec *record) error { return r.remove(ctx, rec, force) })
	if errors.Is(err, errdefs.ErrNotFound) {
		if r.removeStale(id) || force {
			return nil
		}
	}
	return err
}

// removeStale removes the state directory of id if it has no state file:
// what a create killed before it finished leaves behind.
func (r *Runtime) removeStale(id string) bool {
	unlock, err := r.lock(id)
	if err != nil {
		return false
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(r.dir(id), stateFile)); !errors.Is(err, os.ErrNotExist) {
		return false
	}
	return os.RemoveAll(r.dir(id)) == nil
}

func (r *Runtime) remove(ctx context.Context, rec *record, force bool) error {
	id := rec.ID
	switch st := r.status(rec); st {
	case specs.StateStopped:
	case specs.StateCreated:
		r.signalAll(rec, unix.SIGKILL)
	default:
		if !force {
			return fmt.Errorf("container %q is %s; stop it first or use --force: %w", id, st, errdefs.ErrConflict)
		}
		r.signalAll(rec, unix.SIGKILL)
	}
	// A killed init stays a zombie, still holding its cgroup, until its
	// parent (the caller of create, or whoever adopted it) reaps it.
	waitReaped(rec, 10*time.Second)
	if cg, err := loadCgroup(rec); err == nil {
		if err := cg.destroy(); err != nil {
			return fmt.Errorf("container %q: remove cgroup: %w", id, err)
		}
	}
	if err := os.RemoveAll(r.dir(id)); err != nil {
		return fmt.Errorf("container %q: remove state: %w", id, err)
	}
	if rec.Spec.Hooks != nil && len(rec.Spec.Hooks.Poststop) > 0 {
		st := r.stateOf(rec)
		st.Status = specs.StateStopped
		_ = runHooks(ctx, "poststop", rec.Spec.Hooks.Poststop, &st.State, r.logger())
	}
	return nil
}

// waitReaped waits until the init process is gone from the process table.
func waitReaped(rec *record, timeout time.Duration) {
	for deadline := time.Now().Add(timeout); rec.exists() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// List returns the states of all containers.
func (r *Runtime) List() ([]ContainerState, error) {
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []ContainerState
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		rec, err := r.load(e.Name())
		if err != nil {
			continue // being created or deleted
		}
		out = append(out, r.stateOf(rec))
	}
	return out, nil
}

// Pids returns the processes in the container's cgroup.
func (r *Runtime) Pids(id string) ([]int, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	cg, err := loadCgroup(rec)
	if err != nil {
		return nil, err
	}
	return cg.mgr.GetAllPids()
}

// Pause freezes every process of the container; Resume thaws them.
func (r *Runtime) Pause(id string) error  { return r.freeze(id, cgroups.Frozen) }
func (r *Runtime) Resume(id string) error { return r.freeze(id, cgroups.Thawed) }

func (r *Runtime) freeze(id string, st cgroups.FreezerState) error {
	return r.locked(id, func(rec *record) error { return r.freezeRec(rec, st) })
}

func (r *Runtime) freezeRec(rec *record, st cgroups.FreezerState) error {
	id := rec.ID
	cur := r.status(rec)
	if st == cgroups.Frozen && cur != specs.StateRunning && cur != specs.StateCreated {
		return fmt.Errorf("container %q is %s, not running: %w", id, cur, errdefs.ErrConflict)
	}
	if st == cgroups.Thawed && cur != "paused" {
		return fmt.Errorf("container %q is %s, not paused: %w", id, cur, errdefs.ErrConflict)
	}
	cg, err := loadCgroup(rec)
	if err != nil {
		return err
	}
	return cg.mgr.Freeze(st)
}

// Update changes the resource limits of a live container and records them.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	return r.locked(id, func(rec *record) error { return r.update(rec, res) })
}

func (r *Runtime) update(rec *record, res *specs.LinuxResources) error {
	id := rec.ID
	if r.status(rec) == specs.StateStopped {
		return fmt.Errorf("container %q is stopped: %w", id, errdefs.ErrConflict)
	}
	cg, err := loadCgroup(rec)
	if err != nil {
		return err
	}
	if err := cg.update(res); err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	if rec.Spec.Linux == nil {
		rec.Spec.Linux = &specs.Linux{}
	}
	rec.Spec.Linux.Resources = mergeResources(rec.Spec.Linux.Resources, res)
	return r.save(rec)
}

func mergeResources(old, upd *specs.LinuxResources) *specs.LinuxResources {
	if old == nil {
		return upd
	}
	m := *old
	if upd.Memory != nil {
		m.Memory = upd.Memory
	}
	if upd.CPU != nil {
		m.CPU = upd.CPU
	}
	if upd.Pids != nil {
		m.Pids = upd.Pids
	}
	if upd.BlockIO != nil {
		m.BlockIO = upd.BlockIO
	}
	if upd.Devices != nil {
		m.Devices = upd.Devices
	}
	if upd.Unified != nil {
		m.Unified = upd.Unified
	}
	return &m
}

// Spec returns the configuration container id was created with.
func (r *Runtime) Spec(id string) (*specs.Spec, error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return rec.Spec, nil
}
