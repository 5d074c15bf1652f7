package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/signal"
	digest "github.com/opencontainers/go-digest"
)

// CreateOptions say what to create. Fields of Config left empty are taken
// from the image.
type CreateOptions struct {
	Name  string
	Image *image.Image
	// Base, when Image is nil, is what the container runs on instead of
	// an image: a build step's intermediate state.
	Base *Base
	// ImageRef is the image as the user named it.
	ImageRef string
	Config   Config
	// EntrypointSet says --entrypoint was given, even as "": the image's
	// Entrypoint and Cmd are then both replaced.
	EntrypointSet bool
	// NoHealthcheck disables the image's health check.
	NoHealthcheck bool
	Host          HostConfig
}

// Create makes a container from o without starting it and returns its
// record. Named volumes it mounts are created if missing.
func (e *Engine) Create(ctx context.Context, o CreateOptions) (*Container, error) {
	base, err := e.base(o)
	if err != nil {
		return nil, err
	}
	c := &Container{
		ID:      newID(),
		Name:    o.Name,
		Created: time.Now().UTC(),
		Image:   o.ImageRef,
		ImageID: base.ImageID,
		ChainID: base.ChainID,
		Config:  merge(base.Config, o),
		Host:    o.Host,
	}
	if c.Config.Hostname == "" {
		c.Config.Hostname = short(c.ID)
		if c.networkMode() == "host" {
			c.Config.Hostname, _ = os.Hostname()
		}
	}
	if len(c.Config.Entrypoint) == 0 && len(c.Config.Cmd) == 0 {
		return nil, fmt.Errorf("image %s has no command and none was given: name one after the image: %w", o.ImageRef, errdefs.ErrInvalidArgument)
	}
	if err := e.validate(c); err != nil {
		return nil, err
	}
	if err := e.claimName(c); err != nil {
		return nil, err
	}
	if err := e.createDir(ctx, c); err != nil {
		e.releaseName(c.Name, c.ID)
		return nil, fmt.Errorf("create %s: %w", c.Name, err)
	}
	e.emit("create", c, nil)
	return c, nil
}

// claimName reserves c's name, or a generated one when it has none: a
// generated name a concurrent create took first is replaced by another.
func (e *Engine) claimName(c *Container) error {
	if c.Name != "" {
		return e.reserveName(c.Name, c.ID)
	}
	for {
		c.Name = e.generateName()
		err := e.reserveName(c.Name, c.ID)
		if !errors.Is(err, errdefs.ErrConflict) {
			return err
		}
	}
}

// Base is the file system and configuration a container starts from.
type Base struct {
	// ImageID is the image's ID, "" for a build step's state.
	ImageID digest.Digest
	// ChainID names the topmost snapshot, "" for none.
	ChainID digest.Digest
	Config  v1.Config
}

// base returns what o's container starts from: o.Base, or o.Image's
// config and top snapshot.
func (e *Engine) base(o CreateOptions) (*Base, error) {
	if o.Base != nil {
		return o.Base, nil
	}
	if o.Image == nil {
		return nil, fmt.Errorf("create: no image: %w", errdefs.ErrInvalidArgument)
	}
	raw, err := e.images.Config(o.Image)
	if err != nil {
		return nil, err
	}
	icfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", o.ImageRef, err)
	}
	b := &Base{ImageID: o.Image.ID, Config: icfg.Config}
	if n := len(o.Image.Layers); n > 0 {
		b.ChainID = o.Image.Layers[n-1].ChainID
	}
	return b, nil
}

// createDir writes the container's directory under a temporary name and
// renames it into place, so that a create killed half-way leaves nothing
// that looks like a container.
func (e *Engine) createDir(ctx context.Context, c *Container) error {
	e.sweepTemp()
	tmp := filepath.Join(e.root, ".tmp-"+c.ID)
	for _, d := range []string{tmp, filepath.Join(tmp, rootfsDir), filepath.Join(tmp, upperDir), filepath.Join(tmp, workDir)} {
		if err := os.Mkdir(d, 0o700); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	// The writable layer's top directory gives the container's / its
	// owner and mode: the image's, not this private directory's. The
	// container's directory (0700) keeps other users out.
	if err := copyRootAttrs(e.images.Snapshots().Path(c.ChainID), filepath.Join(tmp, upperDir)); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	unlock, err := e.lockVolumes()
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	defer unlock()
	if err := e.createVolumes(ctx, c); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	err = writeJSON(filepath.Join(tmp, recordFile), c)
	if err == nil {
		err = writeState(tmp, &State{Status: Created})
	}
	if err == nil {
		err = os.Rename(tmp, e.dir(c.ID))
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	return err
}

// sweepTemp removes what creates killed long enough ago left behind.
func (e *Engine) sweepTemp() {
	ents, _ := os.ReadDir(e.root)
	for _, ent := range ents {
		// A .rm- directory is a removed container's that a killed
		// monitor or command did not finish deleting.
		if strings.HasPrefix(ent.Name(), ".rm-") {
			os.RemoveAll(filepath.Join(e.root, ent.Name()))
			continue
		}
		if !strings.HasPrefix(ent.Name(), ".tmp-") {
			continue
		}
		if info, err := ent.Info(); err == nil && time.Since(info.ModTime()) > 10*time.Minute {
			os.RemoveAll(filepath.Join(e.root, ent.Name()))
		}
	}
}

// merge applies the options over the image's config, as Docker does.
func merge(img v1.Config, o CreateOptions) Config {
	c := o.Config
	switch {
	case o.EntrypointSet:
		// --entrypoint replaces both; a command given after the image
		// remains.
	case len(c.Cmd) > 0:
		c.Entrypoint = img.Entrypoint
	default:
		c.Entrypoint, c.Cmd = img.Entrypoint, img.Cmd
	}
	if len(c.Entrypoint) == 1 && c.Entrypoint[0] == "" {
		c.Entrypoint = nil
	}
	c.Env = mergeEnv(img.Env, c.Env)
	if c.WorkingDir == "" {
		c.WorkingDir = img.WorkingDir
	}
	if c.User == "" {
		c.User = img.User
	}
	if c.StopSignal == "" {
		c.StopSignal = img.StopSignal
	}
	labels := maps.Clone(img.Labels)
	if labels == nil && len(c.Labels) > 0 {
		labels = map[string]string{}
	}
	maps.Copy(labels, c.Labels)
	c.Labels = labels
	for p := range img.ExposedPorts {
		if !slices.Contains(c.ExposedPorts, p) {
			c.ExposedPorts = append(c.ExposedPorts, p)
		}
	}
	slices.Sort(c.ExposedPorts)
	for v := range img.Volumes {
		c.Volumes = append(c.Volumes, v)
	}
	slices.Sort(c.Volumes)
	c.Healthcheck = mergeHealth(img.Healthcheck, c.Healthcheck, o.NoHealthcheck)
	return c
}

// mergeEnv returns base with each KEY=VALUE of over replacing base's KEY.
func mergeEnv(base, over []string) []string {
	out := slices.Clone(base)
	for _, kv := range over {
		key, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(e string) bool { k, _, _ := strings.Cut(e, "="); return k == key })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

func mergeHealth(img *v1.HealthConfig, flags *Healthcheck, disabled bool) *Healthcheck {
	if disabled {
		return &Healthcheck{Test: []string{"NONE"}}
	}
	h := &Healthcheck{}
	if img != nil {
		h = &Healthcheck{Test: img.Test, Interval: img.Interval, Timeout: img.Timeout, StartPeriod: img.StartPeriod, Retries: img.Retries}
	}
	if flags != nil {
		if len(flags.Test) > 0 {
			h.Test = flags.Test
		}
		if flags.Interval != 0 {
			h.Interval = flags.Interval
		}
		if flags.Timeout != 0 {
			h.Timeout = flags.Timeout
		}
		if flags.StartPeriod != 0 {
			h.StartPeriod = flags.StartPeriod
		}
		if flags.Retries != 0 {
			h.Retries = flags.Retries
		}
	}
	if len(h.Test) == 0 {
		return nil
	}
	return h
}

// validate checks what the flags could not check alone.
func (e *Engine) validate(c *Container) error {
	switch c.Host.RestartPolicy.Name {
	case "", "no", "always", "unless-stopped", "on-failure":
	default:
		return fmt.Errorf("restart policy %q: use no, on-failure[:N], always or unless-stopped: %w", c.Host.RestartPolicy.Name, errdefs.ErrInvalidArgument)
	}
	if c.Host.AutoRemove && c.Host.RestartPolicy.Name != "" && c.Host.RestartPolicy.Name != "no" {
		return fmt.Errorf("--restart %s and --rm conflict: a container removed when it exits cannot be restarted: %w", c.Host.RestartPolicy.Name, errdefs.ErrInvalidArgument)
	}
	if c.Config.StopSignal != "" {
		if _, err := signal.ParseSignal(c.Config.StopSignal); err != nil {
			return fmt.Errorf("stop signal %q: not a signal name or number: %w", c.Config.StopSignal, errdefs.ErrInvalidArgument)
		}
	}
	if r := c.Host.Resources; r.Memory != 0 && r.Memory < minMemory {
		return fmt.Errorf("memory limit %d bytes is too small to start a container: the minimum is 6 MiB: %w", r.Memory, errdefs.ErrInvalidArgument)
	}
	if r := c.Host.Resources; r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return fmt.Errorf("--memory-swap %d must be at least --memory %d (it is memory plus swap): %w", r.MemorySwap, r.Memory, errdefs.ErrInvalidArgument)
	}
	if c.Host.Runtime != "" {
		if _, err := os.Stat(c.Host.Runtime); err != nil {
			return fmt.Errorf("runtime %s: %w", c.Host.Runtime, errdefs.ErrNotFound)
		}
	}
	if err := validateSettings(c); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, m := range c.Host.Mounts {
		if seen[m.Destination] {
			return fmt.Errorf("mount destination %s is given twice: %w", m.Destination, errdefs.ErrInvalidArgument)
		}
		seen[m.Destination] = true
		if m.Type == "bind" {
			if _, err := os.Stat(m.Source); err != nil {
				return fmt.Errorf("bind mount source %s does not exist on the host: %w", m.Source, errdefs.ErrInvalidArgument)
			}
		}
	}
	return e.validateNetwork(c)
}

// minMemory is the smallest memory limit a container starts with (Docker's).
const minMemory = 6 << 20
