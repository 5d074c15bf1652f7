package container

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/fstree"
	"golang.org/x/sys/unix"
)

// populateVolumes copies what the image has at each volume's mount point
// into the volume while the volume is still empty, as Docker and Podman
// do, so that a new volume mounted over an image's directory starts with
// the image's files there. The root file system must be mounted. The
// copy resolves every path inside the container's root (see tree).
func (e *Engine) populateVolumes(c *Container) error {
	for _, m := range c.Host.Mounts {
		if m.Type != "volume" {
			continue
		}
		data := filepath.Join(e.volRoot, m.Source, volumeData)
		if ents, err := os.ReadDir(data); err != nil || len(ents) > 0 {
			continue
		}
		src, err := fstree.OpenDir(filepath.Join(e.dir(c.ID), rootfsDir), "container "+c.Name, true, false)
		if err != nil {
			return err
		}
		st, err := src.Stat(m.Destination, false)
		if err != nil || !fstree.IsDir(&st) {
			src.Close()
			continue
		}
		dst, err := fstree.OpenDir(data, "volume "+m.Source, true, true)
		if err != nil {
			src.Close()
			return err
		}
		_, err = copyPath(src, m.Destination+"/.", dst, "/", CopyOptions{Archive: true})
		src.Close()
		dst.Close()
		if err != nil {
			return fmt.Errorf("volume %s: copy the image's %s into it: %w", m.Source, m.Destination, err)
		}
		// The volume's top directory takes the image directory's owner
		// and mode too.
		unix.Chown(data, int(st.Uid), int(st.Gid))
		unix.Chmod(data, st.Mode&0o7777)
	}
	return nil
}
