package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// mountRootfs mounts the container's root file system, unless it is
// mounted already: an overlay of the image's snapshots, topmost first,
// under the container's own writable layer.
func (e *Engine) mountRootfs(c *Container) error {
	dir := e.dir(c.ID)
	target := filepath.Join(dir, rootfsDir)
	if isOverlay(target) {
		return nil
	}
	if c.ChainID == "" {
		return fmt.Errorf("image %s has no layers: %w", c.Image, errdefs.ErrInvalidArgument)
	}
	lower, err := e.images.Snapshots().Lowerdirs(c.ChainID)
	if err != nil {
		return fmt.Errorf("image %s: %w (pull it again)", c.Image, err)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lower, ":"),
		filepath.Join(dir, upperDir), filepath.Join(dir, workDir))
	if len(opts) >= unix.Getpagesize() {
		return fmt.Errorf("image %s: %d layers are more than one overlay mount can name here: %w", c.Image, len(lower), errdefs.ErrNotImplemented)
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount root file system of %s: %w", c.Name, err)
	}
	return nil
}

// unmountRootfs undoes mountRootfs; it is no error if nothing is mounted.
func (e *Engine) unmountRootfs(id string) error {
	target := filepath.Join(e.dir(id), rootfsDir)
	for isOverlay(target) {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount root file system of %s: %w", short(id), err)
		}
	}
	return nil
}

func isOverlay(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.OVERLAYFS_SUPER_MAGIC
}

// hideDir renames a container's directory out of the way (.rm-NAME beside
// it, which sweepTemp removes if nothing else does) and returns its new
// path; the root file system must be unmounted.
func hideDir(dir string) (string, error) {
	gone := filepath.Join(filepath.Dir(dir), ".rm-"+filepath.Base(dir))
	if err := os.Rename(dir, gone); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	return gone, nil
}

// copyRootAttrs gives dir the owner and mode of the directory src (0755
// root if src is unknown).
func copyRootAttrs(src, dir string) error {
	var st unix.Stat_t
	if src == "" || unix.Stat(src, &st) != nil {
		st.Mode, st.Uid, st.Gid = 0o755, 0, 0
	}
	if err := os.Chown(dir, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return unix.Chmod(dir, st.Mode&0o7777)
}

// UpperDir returns the directory of the stopped container's writable
// layer, in overlay diff form, with its root file system unmounted: a build
// may then move its content into a snapshot.
func (e *Engine) UpperDir(ctx context.Context, ref string) (string, error) {
	c, st, err := e.Get(ctx, ref)
	if err != nil {
		return "", err
	}
	if st.Running() {
		return "", fmt.Errorf("container %s is %s: %w", c.Name, st.Status, errdefs.ErrConflict)
	}
	if err := e.unmountRootfs(c.ID); err != nil {
		return "", err
	}
	return filepath.Join(e.dir(c.ID), upperDir), nil
}
