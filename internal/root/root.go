// Package root is berth's composition root: it opens one berth root (a
// directory such as /var/lib/berth) and wires what lives there — the image
// store with its snapshots, the networks, the container engine — from the
// root's configuration (ROOT/berth.toml) and berth's defaults.
//
// The command line and the control plane both start here, so that neither
// puts the engine together its own way. Parts are opened on first use: a
// command that lists images does not set up networks.
package root

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/network"
	digest "github.com/opencontainers/go-digest"
)

// Default is the root berth uses without --root: /var/lib/berth for root,
// $XDG_DATA_HOME/berth (or ~/.local/share/berth) for other users.
func Default() string {
	if os.Geteuid() == 0 {
		return "/var/lib/berth"
	}
	if dir := os.Getenv("XDG_DATA_HOME"); dir != "" {
		return filepath.Join(dir, "berth")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "berth")
}

// DefaultRunDir is where the per-boot state of the root dir lives (the
// runtime's state, network namespaces, sockets): /run/berth for the
// default root, $XDG_RUNTIME_DIR/berth for other users, else a directory
// inside the root.
func DefaultRunDir(dir string) string {
	if dir == "/var/lib/berth" {
		return "/run/berth"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && os.Geteuid() != 0 {
		return filepath.Join(d, "berth")
	}
	return filepath.Join(dir, "run")
}

// Root is one opened berth root. Its methods are safe for concurrent use;
// each part is opened once, on first use, and shared after.
type Root struct {
	// Dir is the root directory, RunDir its per-boot state.
	Dir, RunDir string
	// Config is ROOT/berth.toml with berth's defaults filled in.
	Config Config
	// Berth is the command that runs berth itself on this root (the
	// binary and --root): monitors, DNS servers and the runtime are
	// started through it.
	Berth []string

	imagesOnce, netsOnce, engineOnce sync.Once
	images                           *image.Store
	nets                             *network.Manager
	engine                           *container.Engine
	imagesErr, netsErr, engineErr    error
}

// Option changes how Open opens a root.
type Option func(*Root)

// WithExecutable runs berth's helper processes (monitors, DNS servers) from
// path instead of the running executable — for a program that is not
// berth itself, such as a test.
func WithExecutable(path string) Option {
	return func(r *Root) { r.Berth[0] = path }
}

// Open reads dir's configuration; the parts are opened when first asked
// for. It fails only on a configuration that cannot be read.
func Open(dir string, opts ...Option) (*Root, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("berth executable: %w", err)
	}
	r := &Root{Dir: dir, RunDir: DefaultRunDir(dir), Config: cfg, Berth: []string{exe, "--root", dir}}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Images returns the root's image store, which knows which images the
// root's containers use (so that rmi and prune keep them).
func (r *Root) Images() (*image.Store, error) {
	r.imagesOnce.Do(func() {
		r.images, r.imagesErr = image.Open(r.Dir)
		if r.imagesErr == nil {
			dir := r.Dir
			r.images.SetUsers(func() (map[digest.Digest][]string, error) { return container.ImageUsers(dir) })
		}
	})
	return r.images, r.imagesErr
}

// Networks returns the root's network manager: state in ROOT/networks,
// settings from the configuration, DNS servers that are berth running
// `network dns-serve`.
func (r *Root) Networks() (*network.Manager, error) {
	r.netsOnce.Do(func() {
		s := network.Settings{
			StateDir:      filepath.Join(r.Dir, "networks"),
			Prefix:        r.Config.Network.Prefix,
			DefaultSubnet: r.Config.Network.defaultSubnet,
		}
		berth := r.Berth
		s.DNSCommand = func(name string) *exec.Cmd {
			return exec.Command(berth[0], append(berth[1:], "network", "dns-serve", name)...)
		}
		r.nets, r.netsErr = network.New(s)
	})
	return r.nets, r.netsErr
}

// Engine returns the root's container engine, with its image store and
// networks.
func (r *Root) Engine() (*container.Engine, error) {
	r.engineOnce.Do(func() {
		images, err := r.Images()
		if err != nil {
			r.engineErr = err
			return
		}
		nets, err := r.Networks()
		if err != nil {
			r.engineErr = err
			return
		}
		r.engine, r.engineErr = container.New(container.Options{
			Root: r.Dir, RunRoot: r.RunDir, Images: images, Networks: nets, Berth: r.Berth,
		})
	})
	return r.engine, r.engineErr
}
