package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/container"
	"golang.org/x/sys/unix"
)

// A build works in a directory of its own under Options.WorkDir, which it
// holds locked (flock) while it runs, and names that directory in a label
// of each step container it makes. A build that is killed leaves its
// directory (overlay mounts, downloads, upper directories) and the
// container of the step it was at, maybe still running; the kernel drops
// its lock. The next build removes them: what belongs to a directory that
// nobody holds, or that is gone.

const (
	// stepImage is the image name of a step container: no image can have
	// it, so no other container is taken for one.
	stepImage = "(build step)"
	// buildLabel is the step container's label naming its build's work
	// directory.
	buildLabel = "berth.build"
)

// claimWork sweeps what killed builds left and makes this build's work
// directory, locked. WorkDir itself, locked meanwhile, keeps builds from
// finding each other's directory between its making and its locking.
func (b *builder) claimWork(ctx context.Context) error {
	dir := b.o.WorkDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	lock, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("build: lock %s: %w", lock.Name(), err)
	}
	b.sweep(ctx)
	if b.work, err = os.MkdirTemp(dir, "build-"); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	if b.workLock, err = os.Open(b.work); err == nil {
		err = unix.Flock(int(b.workLock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		return fmt.Errorf("build: lock %s: %w", b.work, err)
	}
	return nil
}

// sweep removes the work directories under WorkDir that no build holds,
// and the step containers of builds that are not running. The caller
// holds WorkDir locked.
func (b *builder) sweep(ctx context.Context) {
	ents, _ := os.ReadDir(b.o.WorkDir)
	live := map[string]bool{}
	var dead []*os.File // held until they are removed
	defer func() {
		for _, f := range dead {
			f.Close()
		}
	}()
	for _, ent := range ents {
		p := filepath.Join(b.o.WorkDir, ent.Name())
		if !ent.IsDir() {
			os.Remove(p)
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			live[ent.Name()] = true
			f.Close()
			continue
		}
		dead = append(dead, f)
	}
	if b.e != nil {
		cs, _, _ := b.e.List(ctx)
		for _, c := range cs {
			owner := c.Config.Labels[buildLabel]
			if c.Image == stepImage && c.ImageID == "" && owner != "" && !live[owner] {
				b.e.Remove(ctx, c.ID, container.RemoveOptions{Force: true, Volumes: true})
			}
		}
	}
	for _, f := range dead {
		unmountAll(f.Name())
		os.RemoveAll(f.Name())
	}
}

// close removes the build's work directory, then lets go of it.
func (b *builder) close() {
	if b.work != "" {
		unmountAll(b.work)
		os.RemoveAll(b.work)
	}
	if b.workLock != nil {
		b.workLock.Close()
	}
}
