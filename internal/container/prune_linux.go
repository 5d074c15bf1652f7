package container

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	digest "github.com/opencontainers/go-digest"
)

// PruneReport says what a prune removed and about how many bytes of disk
// that freed.
type PruneReport struct {
	Containers     []string        // IDs
	Networks       []string        // names
	Images         []digest.Digest // IDs
	Volumes        []string        // names
	BuildCache     int             // entries
	SpaceReclaimed int64
}

// PruneContainers removes every container that is not running (created,
// exited), as `docker container prune` does; their volumes stay. A
// container started meanwhile is kept.
func (e *Engine) PruneContainers(ctx context.Context, r *PruneReport) error {
	cs, sts, err := e.List(ctx)
	if err != nil {
		return err
	}
	for i, c := range cs {
		if sts[i].Running() {
			continue
		}
		size := diskUsage(e.dir(c.ID), rootfsDir)
		err := e.Remove(ctx, c.ID, RemoveOptions{})
		switch {
		case err == nil:
			r.Containers = append(r.Containers, c.ID)
			r.SpaceReclaimed += size
		case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrNotFound):
			// started or removed meanwhile
		default:
			return err
		}
	}
	return nil
}

// networkPruner is what PruneNetworks needs of internal/network's Manager.
type networkPruner interface {
	List(ctx context.Context) ([]*network.Network, error)
	Remove(ctx context.Context, name string) error
	Endpoints(ctx context.Context, name string) ([]network.Endpoint, error)
}

// PruneNetworks removes the user-defined networks that no container is
// connected to and no container names (a stopped container would not
// start without its network).
func (e *Engine) PruneNetworks(ctx context.Context, r *PruneReport) error {
	np, ok := e.nets.(networkPruner)
	if !ok {
		return nil
	}
	nets, err := np.List(ctx)
	if err != nil {
		return err
	}
	cs, _, err := e.List(ctx)
	if err != nil {
		return err
	}
	// Endpoints whose container is gone: what a monitor killed between
	// removing its container and releasing the network left behind.
	for _, n := range nets {
		eps, err := np.Endpoints(ctx, n.Name)
		if err != nil {
			return err
		}
		for _, ep := range eps {
			if _, err := os.Stat(filepath.Join(e.dir(ep.ContainerID), recordFile)); errors.Is(err, os.ErrNotExist) {
				if err := e.nets.Disconnect(ctx, n.Name, ep.ContainerID); err != nil {
					return err
				}
			}
		}
	}
	for _, n := range nets {
		if n.Name == network.DefaultNetwork || slices.ContainsFunc(cs, func(c *Container) bool {
			m := c.networkMode()
			return m == n.Name || m == n.ID || slices.Contains(c.Host.ExtraNetworks, n.Name)
		}) {
			continue
		}
		err := np.Remove(ctx, n.Name)
		switch {
		case err == nil:
			r.Networks = append(r.Networks, n.Name)
		case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrNotFound):
			// in use, or removed meanwhile
		default:
			return err
		}
	}
	return nil
}

// PruneImages removes the images without a name (dangling), or with all
// every image, that no container uses, whether it runs or not.
func (e *Engine) PruneImages(ctx context.Context, all bool, r *PruneReport) error {
	imgs, err := e.images.List()
	if err != nil {
		return err
	}
	cs, _, err := e.List(ctx)
	if err != nil {
		return err
	}
	used := map[digest.Digest]bool{}
	for _, c := range cs {
		used[c.ImageID] = true
	}
	var gone []digest.Digest
	for _, img := range imgs {
		if !used[img.ID] && (all || len(img.Names) == 0) {
			gone = append(gone, img.ID)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	storeRoot := filepath.Dir(e.root)
	before := diskUsage(filepath.Join(storeRoot, "blobs"), "") + diskUsage(filepath.Join(storeRoot, "snapshots"), "")
	defer func() {
		after := diskUsage(filepath.Join(storeRoot, "blobs"), "") + diskUsage(filepath.Join(storeRoot, "snapshots"), "")
		if before > after {
			r.SpaceReclaimed += before - after
		}
	}()
	for _, id := range gone {
		_, deleted, err := e.images.Remove(id.String(), true)
		switch {
		case err == nil && deleted != "":
			r.Images = append(r.Images, deleted)
		case err == nil, errors.Is(err, errdefs.ErrNotFound):
		default:
			return err
		}
	}
	return nil
}

// PruneAnonymousVolumes removes the anonymous volumes no container mounts.
func (e *Engine) PruneAnonymousVolumes(ctx context.Context, r *PruneReport) error {
	sizes := map[string]int64{}
	if vs, err := e.Volumes(ctx); err == nil {
		for _, v := range vs {
			if v.Anonymous {
				sizes[v.Name] = diskUsage(filepath.Join(e.volRoot, v.Name), "")
			}
		}
	}
	names, err := e.PruneVolumes(ctx, false)
	for _, n := range names {
		r.Volumes = append(r.Volumes, n)
		r.SpaceReclaimed += sizes[n]
	}
	return err
}

// diskUsage is the apparent size of the files under dir, but for its
// subdirectory skip (a container's root file system mount point).
func diskUsage(dir, skip string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && skip != "" && p == filepath.Join(dir, skip) {
			return filepath.SkipDir
		}
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
