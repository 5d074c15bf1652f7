package runtime

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Environment variables that carry the layout of init's file descriptors.
const (
	envInitFDs = "_BERTH_INIT_FDS" // sync,listener,console (-1 when absent)
	envNsenter = "_BERTH_NSENTER"  // see package nsenter
)

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// procNames maps namespace types to their /proc/PID/ns names.
var procNames = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// spawn describes one init process to start.
type spawn struct {
	namespaces []specs.LinuxNamespace // Path set: join; empty: create
	uidMaps    []specs.LinuxIDMapping
	gidMaps    []specs.LinuxIDMapping
	preserved  []*os.File // become fds 3..
	sync       *os.File
	listener   *os.File
	console    *os.File
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	env        []string
}

// spawn forks and execs the runtime binary as init. Namespaces that a
// thread may join (all but mount and user) are joined on a locked OS thread
// that then forks, so the child starts inside them; the mount and user
// namespaces are joined, and new namespaces other than pid and user made,
// by the constructor in the child (package boot).
func (r *Runtime) spawn(sp *spawn) (*exec.Cmd, error) {
	exe, err := sealedSelf(r.Self)
	if err != nil {
		return nil, err
	}
	defer exe.Close()

	files := append([]*os.File{}, sp.preserved...)
	fdOf := func(f *os.File) int {
		if f == nil {
			return -1
		}
		files = append(files, f)
		return 2 + len(files)
	}
	exeFD := fdOf(exe)
	fds := fmt.Sprintf("%d,%d,%d", fdOf(sp.sync), fdOf(sp.listener), fdOf(sp.console))

	var threadJoins []specs.LinuxNamespace
	var childJoins []string
	var cloneFlags, unshareFlags uintptr
	userPath := ""
	for _, ns := range sp.namespaces {
		if ns.Type == specs.UserNamespace && ns.Path != "" {
			userPath = ns.Path
		}
	}
	for _, ns := range sp.namespaces {
		flag := nsFlags[ns.Type]
		switch {
		case ns.Path == "" && (ns.Type == specs.PIDNamespace || ns.Type == specs.UserNamespace):
			cloneFlags |= flag
		case ns.Path == "":
			// Made by the child (package boot), after joining a user
			// namespace if it does, and while this process makes the
			// cgroup: a network namespace alone takes milliseconds.
			unshareFlags |= flag
		case ns.Type == specs.MountNamespace:
			childJoins = append(childJoins, "mnt:"+ns.Path)
		case ns.Type == specs.UserNamespace:
		default:
			threadJoins = append(threadJoins, ns)
		}
	}
	if userPath != "" {
		childJoins = append([]string{"user:" + userPath}, childJoins...)
	}
	if unshareFlags != 0 {
		childJoins = append(childJoins, "unshare:"+strconv.FormatUint(uint64(unshareFlags), 10))
	}

	cmd := &exec.Cmd{
		Path:       "/proc/self/fd/" + strconv.Itoa(exeFD),
		Args:       []string{"berth-runtime", "init"},
		Env:        append(sp.env, envInitFDs+"="+fds),
		Stdin:      sp.stdin,
		Stdout:     sp.stdout,
		Stderr:     sp.stderr,
		ExtraFiles: files,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneFlags,
			Pdeathsig:  0,
		},
	}
	if len(childJoins) > 0 {
		cmd.Env = append(cmd.Env, envNsenter+"="+strings.Join(childJoins, ","))
	}
	if cloneFlags&unix.CLONE_NEWUSER != 0 {
		cmd.SysProcAttr.UidMappings = idMaps(sp.uidMaps)
		cmd.SysProcAttr.GidMappings = idMaps(sp.gidMaps)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	if len(threadJoins) == 0 {
		return cmd, cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked so that Go discards it when this
		// goroutine ends: it now lives in the container's namespaces.
		goruntime.LockOSThread()
		for _, ns := range threadJoins {
			if err := setns(ns); err != nil {
				errc <- err
				return
			}
		}
		errc <- cmd.Start()
	}()
	return cmd, <-errc
}

func setns(ns specs.LinuxNamespace) error {
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s namespace %s: %w", ns.Type, ns.Path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, int(nsFlags[ns.Type])); err != nil {
		return fmt.Errorf("join %s namespace %s: %w", ns.Type, ns.Path, err)
	}
	return nil
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, e := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)}
	}
	return out
}

// sealedSelf returns an O_PATH descriptor for the runtime binary on a
// detached, read-only bind mount, so that a container process can never
// reopen the host's binary for writing through /proc/PID/exe
// (CVE-2019-5736). Where the mount API is not available (rootless), it falls
// back to a sealed in-memory copy.
func sealedSelf(path string) (*os.File, error) {
	if path == "" {
		path = "/proc/self/exe"
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
		if err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err == nil {
			return os.NewFile(uintptr(fd), "berth-runtime"), nil
		}
		unix.Close(fd)
	}
	return memfdSelf(path)
}

func memfdSelf(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open runtime binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "berth-runtime")
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return nil, fmt.Errorf("copy runtime binary: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(dst.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return nil, fmt.Errorf("seal runtime binary: %w", err)
	}
	return dst, nil
}
