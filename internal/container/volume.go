package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Volume is a named volume: a directory that outlives the containers that
// mount it.
type Volume struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	Mountpoint string            `json:"Mountpoint"`
	CreatedAt  time.Time         `json:"CreatedAt"`
	Labels     map[string]string `json:"Labels"`
	Scope      string            `json:"Scope"`
	Anonymous  bool              `json:"Anonymous,omitempty"`
}

const (
	volumeFile = "volume.json"
	volumeData = "_data"
	volumeLock = ".lock"
)

// lockVolumes serialises creating containers that mount volumes with
// removing volumes, so that a volume cannot be removed between the check
// that no container uses it and a new container's record appearing.
func (e *Engine) lockVolumes() (func(), error) {
	f, err := os.OpenFile(filepath.Join(e.volRoot, volumeLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("volumes: %w", err)
	}
	return func() { f.Close() }, nil
}

// CreateVolume makes the named volume. An existing volume of that name is
// returned as it is, as Docker does.
func (e *Engine) CreateVolume(ctx context.Context, name string, labels map[string]string) (*Volume, error) {
	unlock, err := e.lockVolumes()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return e.createVolume(ctx, name, labels, false)
}

func (e *Engine) createVolume(ctx context.Context, name string, labels map[string]string, anonymous bool) (*Volume, error) {
	if name == "" {
		name, anonymous = newID(), true
	}
	if !nameRE().MatchString(name) || len(name) > 255 {
		return nil, fmt.Errorf("volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	if v, err := e.Volume(ctx, name); err == nil {
		return v, nil
	}
	dir := filepath.Join(e.volRoot, name)
	v := &Volume{Name: name, Driver: "local", Mountpoint: filepath.Join(dir, volumeData), CreatedAt: time.Now().UTC().Truncate(time.Second),
		Labels: labels, Scope: "local", Anonymous: anonymous}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	tmp := filepath.Join(e.volRoot, ".tmp-"+name)
	os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, volumeData), 0o755); err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	if err := writeJSON(filepath.Join(tmp, volumeFile), v); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	return v, nil
}

// Volume returns the named volume.
func (e *Engine) Volume(ctx context.Context, name string) (*Volume, error) {
	if !nameRE().MatchString(name) {
		return nil, fmt.Errorf("no such volume: %s: %w", name, errdefs.ErrNotFound)
	}
	v := &Volume{}
	if err := readJSON(filepath.Join(e.volRoot, name, volumeFile), v); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no such volume: %s: %w", name, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	return v, nil
}

// Volumes lists every volume by name.
func (e *Engine) Volumes(ctx context.Context) ([]*Volume, error) {
	ents, err := os.ReadDir(e.volRoot)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	var out []*Volume
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		if v, err := e.Volume(ctx, ent.Name()); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// volumeUsers returns the names of the containers that mount volume name.
func (e *Engine) volumeUsers(ctx context.Context, name string) ([]string, error) {
	cs, _, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	var users []string
	for _, c := range cs {
		for _, m := range c.Host.Mounts {
			if m.Type == "volume" && m.Source == name {
				users = append(users, c.Name)
			}
		}
	}
	return users, nil
}

// RemoveVolume removes the named volume and its data. A volume that any
// container mounts, running or not, is refused; force only makes a missing
// volume no error, as with Docker.
func (e *Engine) RemoveVolume(ctx context.Context, name string, force bool) error {
	unlock, err := e.lockVolumes()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := e.Volume(ctx, name); err != nil {
		if force && errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return err
	}
	users, err := e.volumeUsers(ctx, name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("volume %s is in use by container %s: remove the container first: %w", name, strings.Join(users, ", "), errdefs.ErrConflict)
	}
	return e.removeVolumeDir(name)
}

func (e *Engine) removeVolumeDir(name string) error {
	dir := filepath.Join(e.volRoot, name)
	gone := filepath.Join(e.volRoot, ".rm-"+name+"-"+newID()[:8])
	if err := os.Rename(dir, gone); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return os.RemoveAll(gone)
}

// PruneVolumes removes every volume no container mounts (with all unset,
// only anonymous ones, as Docker 23+) and returns their names.
func (e *Engine) PruneVolumes(ctx context.Context, all bool) ([]string, error) {
	unlock, err := e.lockVolumes()
	if err != nil {
		return nil, err
	}
	defer unlock()
	vs, err := e.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	cs, _, err := e.List(ctx)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, c := range cs {
		for _, m := range c.Host.Mounts {
			if m.Type == "volume" {
				used[m.Source] = true
			}
		}
	}
	var removed []string
	for _, v := range vs {
		if used[v.Name] || (!all && !v.Anonymous) {
			continue
		}
		if err := e.removeVolumeDir(v.Name); err != nil {
			return removed, err
		}
		removed = append(removed, v.Name)
	}
	return removed, nil
}

// createVolumes creates the named volumes c mounts and an anonymous volume
// for each of the image's volume paths that nothing else is mounted on.
// The caller holds the volumes lock.
func (e *Engine) createVolumes(ctx context.Context, c *Container) error {
	for i, m := range c.Host.Mounts {
		if m.Type != "volume" {
			continue
		}
		v, err := e.createVolume(ctx, m.Source, nil, m.Source == "")
		if err != nil {
			return err
		}
		c.Host.Mounts[i].Source, c.Host.Mounts[i].Anonymous = v.Name, v.Anonymous
	}
	for _, p := range c.Config.Volumes {
		if slices.ContainsFunc(c.Host.Mounts, func(m Mount) bool { return filepath.Clean(m.Destination) == filepath.Clean(p) }) {
			continue
		}
		v, err := e.createVolume(ctx, "", nil, true)
		if err != nil {
			return err
		}
		c.Host.Mounts = append(c.Host.Mounts, Mount{Type: "volume", Source: v.Name, Destination: p, Anonymous: true})
	}
	return nil
}

// removeAnonymousVolumes removes the anonymous volumes of c, a removed
// container, that no other container mounts.
func (e *Engine) removeAnonymousVolumes(ctx context.Context, c *Container) {
	unlock, err := e.lockVolumes()
	if err != nil {
		return
	}
	defer unlock()
	for _, m := range c.Host.Mounts {
		if m.Type != "volume" || !m.Anonymous {
			continue
		}
		if users, err := e.volumeUsers(ctx, m.Source); err == nil && len(users) == 0 {
			e.removeVolumeDir(m.Source)
		}
	}
}
