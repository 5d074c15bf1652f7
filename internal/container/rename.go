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

// Rename gives the container ref names the name newName (a leading "/",
// as inspect shows names, is allowed).
//
// The new name is claimed first, with the same atomic symlink(2) that
// create uses, so a rename and a create (or two renames) cannot both win
// it; then the record is replaced atomically and the old name released.
// All of it happens under the container's lock, so concurrent renames of
// one container are applied one after the other. Between the two steps
// both names lead to the container.
//
// A running container's networks learn the new name before the old one is
// released: their embedded DNS servers answer for the new name, and no
// longer for the old one, as Docker's do. The start lock is held too, so a
// start that is connecting the container meanwhile uses one name or the
// other, never the old one after the rename.
func (e *Engine) Rename(ctx context.Context, ref, newName string) error {
	newName = strings.TrimPrefix(newName, "/")
	if newName == "" {
		return fmt.Errorf("rename: the new name is empty: %w", errdefs.ErrInvalidArgument)
	}
	id, err := e.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	unlockStart, err := e.lockFile(id, "start.lock")
	if err != nil {
		return err
	}
	defer unlockStart()
	unlock, err := e.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	c, st, err := e.load(id)
	if err != nil {
		return err
	}
	old := c.Name
	if old == newName {
		return fmt.Errorf("container %s is already named %s: %w", short(id), newName, errdefs.ErrInvalidArgument)
	}
	if err := e.reserveName(newName, id); err != nil {
		if !errors.Is(err, errdefs.ErrConflict) || !e.takeStaleName(newName, id) {
			return err
		}
	}
	c.Name = newName
	record := filepath.Join(e.dir(id), recordFile)
	if err := writeJSON(record, c); err != nil {
		e.releaseName(newName, id)
		return fmt.Errorf("rename %s: %w", old, err)
	}
	if err := e.renameEndpoints(ctx, c, st, old); err != nil {
		c.Name = old
		if werr := writeJSON(record, c); werr == nil {
			e.releaseName(newName, id)
		}
		return fmt.Errorf("rename %s: %w", old, err)
	}
	e.releaseName(old, id)
	e.emit("rename", c, map[string]string{"oldName": "/" + old})
	return nil
}

// takeStaleName claims name for id when its owner's record has another
// name: the owner's rename was killed between claiming the name and
// writing its record. An owner whose lock is held may be renaming right
// now; its name is left alone.
func (e *Engine) takeStaleName(name, id string) bool {
	link := filepath.Join(e.root, namesDir, name)
	owner, err := os.Readlink(link)
	if err != nil || owner == id {
		return false
	}
	f, err := os.OpenFile(filepath.Join(e.dir(owner), lockFile), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false
	}
	var rec Container
	if readJSON(filepath.Join(e.dir(owner), recordFile), &rec) != nil || rec.Name == name {
		return false
	}
	if cur, err := os.Readlink(link); err != nil || cur != owner {
		return false
	}
	os.Remove(link)
	return e.reserveName(name, id) == nil
}
