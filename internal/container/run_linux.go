package container

import (
	"context"
	"os"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// What a container's monitor (package monitor) does to the engine's
// records and resources around the container's runs; berth's commands do
// not call these. The runtime, through which the monitor starts, signals
// and deletes the container, is OwnRuntime, RuntimeCmd, Signal and
// DeleteRuntimeState.

// Dir returns the directory of container id: its OCI bundle, and where its
// monitor keeps its log and attach socket (see package monitorproto).
func (e *Engine) Dir(id string) string { return e.dir(id) }

// State returns the container's state, corrected as every reader sees it
// when the monitor that should keep it died without saying so. A container
// whose directory is gone has a fresh state (Created).
func (e *Engine) State(ctx context.Context, id string) (*State, error) { return e.state(id) }

// UpdateState applies fn to the container's current state under the
// container's lock, which orders the monitor's changes with berth
// commands'; fn must be quick. It returns the state as fn left it.
func (e *Engine) UpdateState(ctx context.Context, id string, fn func(*State) error) (*State, error) {
	return e.updateState(id, fn)
}

// Emit records a container event for `berth events` (Docker's actions:
// start, die, oom, health_status: STATUS); attrs are added to the
// container's labels, name and image. It never fails.
func (e *Engine) Emit(ctx context.Context, action string, c *Container, attrs map[string]string) {
	e.emit(action, c, attrs)
}

// WriteSpec builds the container's runtime spec and writes it to its
// bundle; the monitor does it just before each run, so that the command
// that starts the container does not spend its time encoding it, and the
// runtime takes it without reading it back. What building it warns about
// goes into the state.
func (e *Engine) WriteSpec(ctx context.Context, c *Container) (*specs.Spec, error) {
	dir := e.dir(c.ID)
	b := &specBuilder{c: c, rootfs: filepath.Join(dir, rootfsDir), dir: dir, init: e.berth[0], volRoot: e.volRoot}
	switch c.networkMode() {
	case "host":
	case "none":
		b.ownNetNS = true
	default:
		b.netns = e.netnsPath(c.ID)
	}
	spec, err := b.build()
	if err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, specFile), spec); err != nil {
		return nil, err
	}
	if len(b.warnings) > 0 {
		e.updateState(c.ID, func(s *State) error {
			for _, w := range b.warnings {
				if !slices.Contains(s.Warnings, w) {
					s.Warnings = append(s.Warnings, w)
				}
			}
			return nil
		})
	}
	return spec, nil
}

// ReleaseRun is the monitor's clean-up once the container has exited for
// good: it releases the runtime's record, the network namespace and the
// root file system and, for --rm, removes the container (renaming its
// directory away: it is gone at once). It returns the slow rest, for the
// monitor to call once its clients know how the container ended: deleting
// a removed container's files and releasing its network endpoints (and,
// with a network's last endpoint, its bridge).
func (e *Engine) ReleaseRun(ctx context.Context, c *Container) (finish func()) {
	st, _ := e.state(c.ID)
	e.releaseLocal(ctx, c)
	var trash string
	if c.Host.AutoRemove {
		e.Remove(ctx, c.ID, RemoveOptions{Force: true, Volumes: true, keepNetworks: true, trash: &trash})
	}
	return func() {
		if trash != "" {
			os.RemoveAll(trash)
		}
		e.releaseNetworks(ctx, c, st)
	}
}
