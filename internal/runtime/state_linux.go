package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// record is what the runtime keeps on disk for one container
// (ROOT/ID/state.json). The configuration is copied at create time because
// the bundle's config.json may change or vanish afterwards.
type record struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pidStart"` // start time in clock ticks; guards against pid reuse
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	CgroupPaths map[string]string `json:"cgroupPaths"`
	Spec        *specs.Spec       `json:"spec"`

	cg *cgroup // cached by loadCgroup
}

const (
	stateFile    = "state.json"
	startSock    = "start.sock"
	stateDirMode = 0o711
)

// checkID refuses ids that could escape the state directory or confuse the
// cgroup tree: 1-128 of [A-Za-z0-9_.+-], starting with a letter or digit.
// (A regexp with {0,127} costs 2 ms to compile at every start.)
func checkID(id string) error {
	ok := len(id) > 0 && len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '+' || c == '-')
	}
	if !ok {
		return fmt.Errorf("container id %q: must be 1-128 letters, digits, '_', '.', '+' or '-', starting with a letter or digit: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

// load reads the record of container id.
func (r *Runtime) load(id string) (*record, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(r.dir(id), stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("container %q: %w", id, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("container %q: corrupt state file: %w", id, err)
	}
	if rec.Spec == nil || rec.ID != id {
		return nil, fmt.Errorf("container %q: %s is not a berth-runtime state file", id, stateFile)
	}
	return &rec, nil
}

// save writes the record atomically.
func (r *Runtime) save(rec *record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(r.dir(rec.ID), stateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("container %q: write state: %w", rec.ID, err)
	}
	return os.Rename(tmp, filepath.Join(r.dir(rec.ID), stateFile))
}

// lock takes an exclusive lock on the container's directory; the returned
// function releases it. Mutating operations hold it so that two concurrent
// commands on one container serialise.
func (r *Runtime) lock(id string) (func(), error) {
	fd, err := unix.Open(r.dir(id), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("container %q: %w", id, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("container %q: lock: %w", id, err)
	}
	return func() { unix.Close(fd) }, nil
}

// procStat returns the state letter and start time of pid, or ok=false if
// the process does not exist.
func procStat(pid int) (state byte, start uint64, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, false
	}
	fields := strings.Fields(s[i+2:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, 0, false
	}
	start, _ = strconv.ParseUint(fields[19], 10, 64)
	return fields[0][0], start, true
}

// alive reports whether the container's init process still runs (a zombie
// counts as stopped).
func (rec *record) alive() bool {
	if rec.Pid <= 0 {
		return false
	}
	st, start, ok := procStat(rec.Pid)
	return ok && start == rec.PidStart && st != 'Z' && st != 'X'
}

// exists reports whether the init process is still in the process table,
// zombie or not.
func (rec *record) exists() bool {
	if rec.Pid <= 0 {
		return false
	}
	_, start, ok := procStat(rec.Pid)
	return ok && start == rec.PidStart
}

// status computes the container's lifecycle status.
func (r *Runtime) status(rec *record) specs.ContainerState {
	if !rec.alive() {
		return specs.StateStopped
	}
	if _, err := os.Lstat(filepath.Join(r.dir(rec.ID), startSock)); err == nil {
		return specs.StateCreated
	}
	if p := rec.CgroupPaths["freezer"]; p != "" {
		if st, err := cgroups.ReadFile(p, "freezer.state"); err == nil && strings.TrimSpace(st) == string(cgroups.Frozen) {
			return "paused"
		}
	} else if p := rec.CgroupPaths[""]; p != "" {
		if st, err := cgroups.ReadFile(p, "cgroup.freeze"); err == nil && strings.TrimSpace(st) == "1" {
			return "paused"
		}
	}
	return specs.StateRunning
}

// ContainerState is a container's runtime-spec state plus the fields runc's
// `state` and `list` add (rootfs, created, owner).
type ContainerState struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

func (r *Runtime) stateOf(rec *record) ContainerState {
	st := ContainerState{
		State: specs.State{
			Version:     specs.Version,
			ID:          rec.ID,
			Status:      r.status(rec),
			Bundle:      rec.Bundle,
			Annotations: rec.Spec.Annotations,
		},
		Created: rec.Created,
		Owner:   rec.Owner,
	}
	if st.Status != specs.StateStopped {
		st.Pid = rec.Pid
	}
	if rec.Spec.Root != nil {
		st.Rootfs = rootfsPath(rec.Bundle, rec.Spec.Root.Path)
	}
	return st
}

func rootfsPath(bundle, root string) string {
	if filepath.IsAbs(root) {
		return root
	}
	return filepath.Join(bundle, root)
}
