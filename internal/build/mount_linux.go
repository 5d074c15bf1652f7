package build

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// layerMount is an overlay of a state's layers under the build's work
// directory.
type layerMount struct {
	dir    string // holds merged, upper, work and empty
	merged string
	upper  string // "" for a read-only mount
}

// mount mounts s's layers at a new directory named name: with a writable
// upper directory that collects a step's changes, or read-only for a
// stage that COPY --from reads.
func (b *builder) mount(s *state, name string, writable bool) (*layerMount, error) {
	m := &layerMount{dir: filepath.Join(b.work, name)}
	m.merged = filepath.Join(m.dir, "merged")
	empty := filepath.Join(m.dir, "empty")
	dirs := []string{m.dir, m.merged, empty}
	if writable {
		m.upper = filepath.Join(m.dir, "upper")
		dirs = append(dirs, m.upper, filepath.Join(m.dir, "work"))
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("build: %w", err)
		}
	}
	var lower []string
	if id := s.chainID(); id != "" {
		var err error
		if lower, err = b.images.Snapshots().Lowerdirs(id); err != nil {
			return nil, err
		}
	}
	if writable {
		// The new layer's top directory is the image root's: its owner
		// and mode, not this private directory's.
		var st unix.Stat_t
		if len(lower) == 0 || unix.Stat(lower[0], &st) != nil {
			st.Mode = 0o755
		}
		if err := os.Chown(m.upper, int(st.Uid), int(st.Gid)); err != nil {
			return nil, err
		}
		if err := unix.Chmod(m.upper, st.Mode&0o7777); err != nil {
			return nil, err
		}
	}
	// An overlay needs a lower directory, and two without an upper one:
	// the empty directory at the bottom is always there.
	lower = append(slices.Clone(lower), empty)
	opts := "lowerdir=" + strings.Join(lower, ":")
	if writable {
		opts += ",upperdir=" + m.upper + ",workdir=" + filepath.Join(m.dir, "work")
	}
	if len(opts) >= unix.Getpagesize() {
		return nil, fmt.Errorf("%d layers are more than one overlay mount can name here: %w", len(lower)-1, errdefs.ErrNotImplemented)
	}
	flags := uintptr(unix.MS_NODEV)
	if !writable {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("overlay", m.merged, "overlay", flags, opts); err != nil {
		return nil, fmt.Errorf("build: mount the stage's layers: %w", err)
	}
	return m, nil
}

// unmount unmounts the overlay; the upper directory stays.
func (m *layerMount) unmount() error {
	if err := unix.Unmount(m.merged, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		return fmt.Errorf("build: unmount %s: %w", m.merged, err)
	}
	return nil
}

// unmountAll unmounts everything mounted under dir, deepest first.
func unmountAll(dir string) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return
	}
	slices.SortFunc(mounts, func(a, b *mountinfo.Info) int { return len(b.Mountpoint) - len(a.Mountpoint) })
	for _, m := range mounts {
		unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
	}
}
