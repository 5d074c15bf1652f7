package container

import (
	"strconv"

	"context"
	"fmt"
	"golang.org/x/sys/unix"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/runtime"
)

// Options configure an Engine.
type Options struct {
	// Root is berth's root: containers live in ROOT/containers and
	// volumes in ROOT/volumes.
	Root string
	// RunRoot holds what lasts only until a reboot: the runtime's state
	// and the containers' network namespaces.
	RunRoot string
	Images  *image.Store
	// Networks attaches containers to networks; nil allows only
	// --network none and host.
	Networks Networks
	// Berth is the command that runs berth itself with the same global
	// flags (the binary and --root), used to start monitors and berth's
	// own runtime.
	Berth []string
}

// Engine runs containers. Its methods are safe for concurrent use by
// goroutines and by several berth processes sharing a root.
type Engine struct {
	root, volRoot, runRoot string
	images                 *image.Store
	nets                   Networks
	berth                  []string
	// early is a monitor started ahead of its container (Prestart).
	early *earlyMonitor
}

// New opens the engine's state under o.Root and o.RunRoot.
func New(o Options) (*Engine, error) {
	e := &Engine{
		root:    filepath.Join(o.Root, "containers"),
		volRoot: filepath.Join(o.Root, "volumes"),
		runRoot: o.RunRoot,
		images:  o.Images,
		nets:    o.Networks,
		berth:   o.Berth,
	}
	for _, d := range []string{e.root, filepath.Join(e.root, namesDir), e.volRoot, e.runRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("engine state: %w", err)
		}
	}
	return e, nil
}

// Images returns the engine's image store.
func (e *Engine) Images() *image.Store { return e.images }

// runtimeRoot is the state directory the container's runtime keeps.
func (e *Engine) runtimeRoot(c *Container) string {
	if c.Host.Runtime != "" {
		return filepath.Join(e.runRoot, "runtime-"+strings.ReplaceAll(filepath.Base(c.Host.Runtime), ".", "_"))
	}
	return filepath.Join(e.runRoot, "runtime")
}

// RuntimeCmd returns the command that runs the container's OCI runtime
// with args: the one the container names, or berth's own — the lean
// berth-runtime binary beside berth if there is one (it starts faster, as
// it links only the runtime), else berth itself under that name.
func (e *Engine) RuntimeCmd(ctx context.Context, c *Container, args ...string) *exec.Cmd {
	args = append([]string{"--root", e.runtimeRoot(c)}, args...)
	if c.Host.Runtime != "" {
		return exec.CommandContext(ctx, c.Host.Runtime, args...)
	}
	path := e.OwnRuntime(c).Self
	if path == "" {
		path = e.berth[0]
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Args[0] = "berth-runtime" // berth dispatches on its name
	return cmd
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// DeleteRuntimeState removes the runtime's record of the container, if it
// has one, killing what is left of it.
func (e *Engine) DeleteRuntimeState(ctx context.Context, c *Container) {
	if !fileExists(filepath.Join(e.runtimeRoot(c), c.ID)) {
		return
	}
	if c.Host.Runtime == "" {
		e.OwnRuntime(c).Delete(ctx, c.ID, true)
		return
	}
	e.runtime(ctx, c, "delete", "--force", c.ID)
}

// Signal sends sig to the container's process through its runtime: berth's
// own in this process, or the --runtime command.
func (e *Engine) Signal(ctx context.Context, c *Container, sig unix.Signal) error {
	if c.Host.Runtime == "" {
		return e.OwnRuntime(c).Kill(c.ID, sig, false)
	}
	return e.runtime(ctx, c, "kill", c.ID, strconv.Itoa(int(sig)))
}

// OwnRuntime is berth's runtime, in this process, with the state the
// berth-runtime command would keep for c; for a container with its own
// --runtime, RuntimeCmd runs that instead.
func (e *Engine) OwnRuntime(c *Container) *runtime.Runtime {
	rt := &runtime.Runtime{Root: e.runtimeRoot(c)}
	// The container's init starts faster from the lean runtime binary.
	if lean := filepath.Join(filepath.Dir(e.berth[0]), "berth-runtime"); fileExists(lean) {
		rt.Self = lean
	}
	return rt
}

// runtime runs the container's runtime with args and returns its error
// output as the error if it fails.
func (e *Engine) runtime(ctx context.Context, c *Container, args ...string) error {
	cmd := e.RuntimeCmd(ctx, c, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s", lastLine(msg))
	}
	return nil
}

// lastLine returns the last line of s, where runtimes put the error.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// waitFor polls cond every interval until it holds or ctx ends.
func waitFor(ctx context.Context, interval time.Duration, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
	}
	return true
}
