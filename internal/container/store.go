package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
)

// Files in a container's directory. The directory is also the OCI bundle:
// config.json is the runtime spec and rootfs the overlay mount point. The
// monitor's files are monitorproto's.
const (
	recordFile = "container.json"
	stateFile  = "state.json"
	specFile   = "config.json"
	rootfsDir  = "rootfs"
	upperDir   = "diff"
	workDir    = "work"
	lockFile   = "lock"
	namesDir   = ".names"
)

// nameRE compiles on first use (see network.nameRE).
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })

// dir returns the directory of container id.
func (e *Engine) dir(id string) string { return filepath.Join(e.root, id) }

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// reserveName claims name for id. Names are symbolic links in a directory
// of their own, so that claiming one is a single atomic symlink(2) that
// two concurrent `berth run --name` cannot both win.
func (e *Engine) reserveName(name, id string) error {
	if !nameRE().MatchString(name) || len(name) > 253 {
		return fmt.Errorf("container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	err := os.Symlink(id, filepath.Join(e.root, namesDir, name))
	if errors.Is(err, fs.ErrExist) {
		owner, _ := os.Readlink(filepath.Join(e.root, namesDir, name))
		link, lerr := os.Lstat(filepath.Join(e.root, namesDir, name))
		if _, serr := os.Stat(filepath.Join(e.dir(owner), recordFile)); serr != nil && owner != id &&
			lerr == nil && time.Since(link.ModTime()) > staleName {
			// Left behind by a create killed before its record was
			// written: take it over. A younger one may be a create
			// still writing its directory.
			os.Remove(filepath.Join(e.root, namesDir, name))
			return e.reserveName(name, id)
		}
		return fmt.Errorf("container name %q is already in use by container %s: remove or rename it first: %w", name, short(owner), errdefs.ErrConflict)
	}
	return err
}

// staleName is how old a name without a container must be to be taken
// over: a create writes its container's directory well within it.
const staleName = 30 * time.Second

func (e *Engine) releaseName(name, id string) {
	p := filepath.Join(e.root, namesDir, name)
	if owner, err := os.Readlink(p); err == nil && owner == id {
		os.Remove(p)
	}
}

// short is the 12-character form of an ID.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// writeJSON replaces path atomically with v: readers see the old content
// or the new, never a part, and a failed write leaves nothing behind.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	tmp := path + ".tmp" + newID()[:8]
	err = os.WriteFile(tmp, b, 0o600)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Resolve finds the container that ref names: a full ID, a name, or a
// unique ID prefix.
func (e *Engine) Resolve(ctx context.Context, ref string) (string, error) {
	if ref == "" || strings.ContainsAny(ref, "/\x00") || ref == "." || ref == ".." {
		return "", fmt.Errorf("container %q: %w", ref, errdefs.ErrNotFound)
	}
	if _, err := os.Stat(filepath.Join(e.dir(ref), recordFile)); err == nil {
		return ref, nil
	}
	if id, err := os.Readlink(filepath.Join(e.root, namesDir, ref)); err == nil {
		if _, err := os.Stat(filepath.Join(e.dir(id), recordFile)); err == nil {
			return id, nil
		}
	}
	ids, err := e.ids()
	if err != nil {
		return "", err
	}
	var match []string
	for _, id := range ids {
		if strings.HasPrefix(id, ref) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return "", fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return "", fmt.Errorf("container ID prefix %q matches %d containers: %w", ref, len(match), errdefs.ErrInvalidArgument)
}

// ids lists the IDs of every container with a record.
func (e *Engine) ids() ([]string, error) {
	ents, err := os.ReadDir(e.root)
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	var ids []string
	for _, ent := range ents {
		if !ent.IsDir() || strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		if _, err := os.Stat(filepath.Join(e.root, ent.Name(), recordFile)); err == nil {
			ids = append(ids, ent.Name())
		}
	}
	return ids, nil
}

// Get returns the record and state of the container ref names.
func (e *Engine) Get(ctx context.Context, ref string) (*Container, *State, error) {
	id, err := e.Resolve(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	return e.load(id)
}

func (e *Engine) load(id string) (*Container, *State, error) {
	c := &Container{}
	if err := readJSON(filepath.Join(e.dir(id), recordFile), c); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("no such container: %s: %w", id, errdefs.ErrNotFound)
		}
		return nil, nil, fmt.Errorf("container %s: %w", short(id), err)
	}
	st, err := e.state(id)
	return c, st, err
}

// List returns every container, newest first.
func (e *Engine) List(ctx context.Context) ([]*Container, []*State, error) {
	ids, err := e.ids()
	if err != nil {
		return nil, nil, err
	}
	type pair struct {
		c *Container
		s *State
	}
	var ps []pair
	for _, id := range ids {
		c, s, err := e.load(id)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				continue // removed meanwhile
			}
			return nil, nil, err
		}
		ps = append(ps, pair{c, s})
	}
	slices.SortFunc(ps, func(a, b pair) int { return b.c.Created.Compare(a.c.Created) })
	cs, ss := make([]*Container, len(ps)), make([]*State, len(ps))
	for i, p := range ps {
		cs[i], ss[i] = p.c, p.s
	}
	return cs, ss, nil
}

// state reads the container's state and corrects it when the monitor that
// should be keeping it died without saying so (killed, or a reboot).
func (e *Engine) state(id string) (*State, error) {
	st := &State{Status: Created}
	err := readJSON(filepath.Join(e.dir(id), stateFile), st)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("container %s state: %w", short(id), err)
	}
	if st.Running() && !st.Monitor.alive() {
		if st.Pid > 0 && (Process{Pid: st.Pid}).aliveSameBoot(st.Monitor.BootID) {
			// The monitor is gone but the container still runs.
			st.Warnings = append(st.Warnings, "the container's monitor died: logs and the restart policy are not served")
			return st, nil
		}
		st.Status, st.Pid = Exited, 0
		if st.Error == "" {
			st.ExitCode, st.Error = 255, "the container's monitor died"
		}
	}
	return st, nil
}

// saveState writes st as the container's state.
func (e *Engine) saveState(id string, st *State) error {
	return writeState(e.dir(id), st)
}

// updateState applies fn to the container's current state under its lock.
func (e *Engine) updateState(id string, fn func(*State) error) (*State, error) {
	unlock, err := e.lock(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := e.state(id)
	if err != nil {
		return nil, err
	}
	if err := fn(st); err != nil {
		return st, err
	}
	return st, e.saveState(id, st)
}

// lock takes the container's lock, which orders changes to its state
// between berth commands and its monitor. Hold it briefly.
func (e *Engine) lock(id string) (func(), error) { return e.lockFile(id, lockFile) }

// ImageUsers returns, for each image that containers under root use, the
// names of those containers; it is the image store's UsersFunc.
func ImageUsers(root string) (map[digest.Digest][]string, error) {
	e := &Engine{root: filepath.Join(root, "containers")}
	ids, err := e.ids()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	users := map[digest.Digest][]string{}
	for _, id := range ids {
		c := &Container{}
		if err := readJSON(filepath.Join(e.dir(id), recordFile), c); err == nil {
			users[c.ImageID] = append(users[c.ImageID], c.Name)
		}
	}
	return users, nil
}
