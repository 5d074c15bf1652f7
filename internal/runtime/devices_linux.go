package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are the character devices every container gets
// (runtime-spec "Default Devices").
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

var defaultSymlinks = [][2]string{
	{"/proc/self/fd", "/dev/fd"},
	{"/proc/self/fd/0", "/dev/stdin"},
	{"/proc/self/fd/1", "/dev/stdout"},
	{"/proc/self/fd/2", "/dev/stderr"},
	{"/proc/kcore", "/dev/core"},
	{"pts/ptmx", "/dev/ptmx"},
}

// createDevices populates /dev with the default devices, the spec's
// devices and the standard symlinks. Inside a new user namespace mknod is
// not allowed, so devices are bind-mounted from the host instead.
func (r *rootfs) createDevices() error {
	mode := os.FileMode(0o666)
	devs := make([]specs.LinuxDevice, 0, len(defaultDevices)+len(r.spec.Linux.Devices))
	for _, d := range defaultDevices {
		d.FileMode = &mode
		devs = append(devs, d)
	}
	devs = append(devs, r.spec.Linux.Devices...)
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, d := range devs {
		if err := r.createDevice(d); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	for _, l := range defaultSymlinks {
		if err := r.symlink(l[0], l[1]); err != nil {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

func (r *rootfs) createDevice(d specs.LinuxDevice) error {
	dir, err := mkdirAllInRoot(r.root, r.path, filepath.Dir(d.Path))
	if err != nil {
		return err
	}
	defer dir.Close()
	base := filepath.Base(d.Path)
	if r.newUser {
		if d.Type == "p" {
			return errors.New("fifo devices are not supported in a user namespace")
		}
		fd, err := unix.Openat(int(dir), base, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		unix.Close(fd)
		target, err := openInRoot(r.root, d.Path)
		if err != nil {
			return err
		}
		defer target.Close()
		return unix.Mount(d.Path, target.path(), "", unix.MS_BIND, "")
	}
	var perm uint32 = 0o666
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	var kind uint32
	switch d.Type {
	case "c", "u":
		kind = unix.S_IFCHR
	case "b":
		kind = unix.S_IFBLK
	case "p":
		kind = unix.S_IFIFO
	}
	// Replace whatever the image had at this path (but never follow it).
	_ = unix.Unlinkat(int(dir), base, 0)
	if err := unix.Mknodat(int(dir), base, kind|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return err
	}
	var uid, gid int
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return unix.Fchownat(int(dir), base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

func (r *rootfs) symlink(target, link string) error {
	dir, err := mkdirAllInRoot(r.root, r.path, filepath.Dir(link))
	if err != nil {
		return err
	}
	defer dir.Close()
	base := filepath.Base(link)
	if link == "/dev/ptmx" {
		_ = unix.Unlinkat(int(dir), base, 0)
	}
	err = unix.Symlinkat(target, int(dir), base)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

// mountCgroup mounts the cgroup file system at m.Destination. With cgroup
// v1 it is a tmpfs holding one bind mount per hierarchy of the container's
// own cgroup; with v2 it is a cgroup2 mount (or a bind of the container's
// cgroup when there is no cgroup namespace).
func (r *rootfs) mountCgroup(m specs.Mount, o mountOpts) error {
	target, err := r.mountTarget(m.Destination, false)
	if err != nil {
		return err
	}
	defer target.Close()
	_, cgroupNS := namespace(r.spec, specs.CgroupNamespace)
	own, err := ownCgroups()
	if err != nil {
		return err
	}
	if path, ok := own[""]; ok && len(own) == 1 { // cgroup v2
		if cgroupNS {
			return unix.Mount("cgroup2", target.path(), "cgroup2", o.flags, "")
		}
		if err := unix.Mount(filepath.Join("/sys/fs/cgroup", path), target.path(), "", unix.MS_BIND, ""); err != nil {
			return err
		}
		return r.after(m.Destination, o.flags, nil)
	}
	if err := unix.Mount("tmpfs", target.path(), "tmpfs", o.flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return err
	}
	hier, err := v1Hierarchies()
	if err != nil {
		return err
	}
	for mp, subsys := range hier {
		name := filepath.Base(mp)
		sub, err := mkdirAllInRoot(r.root, r.path, filepath.Join(m.Destination, name))
		if err != nil {
			return err
		}
		src := filepath.Join(mp, own[subsys])
		if cgroupNS {
			// A fresh mount shows the namespace's root, the container's
			// own cgroup; a bind of src would show the host's root.
			opts := subsys
			if strings.HasPrefix(subsys, "name=") {
				opts = "none," + subsys
			}
			err = unix.Mount("cgroup", sub.path(), "cgroup", o.flags, opts)
		} else {
			err = unix.Mount(src, sub.path(), "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil {
				err = r.after(filepath.Join(m.Destination, name), o.flags, nil)
			}
		}
		sub.Close()
		if err != nil {
			return fmt.Errorf("cgroup %s (from %s): %w", name, src, err)
		}
		// Co-mounted controllers (cpu,cpuacct) get a link per name.
		if strings.Contains(name, ",") {
			for _, c := range strings.Split(name, ",") {
				_ = r.symlink(name, filepath.Join(m.Destination, c))
			}
		}
	}
	if o.flags&unix.MS_RDONLY != 0 {
		return r.after(m.Destination, o.flags, nil)
	}
	return nil
}

// ownCgroups maps each hierarchy's controller list (as in /proc/self/cgroup)
// to this process's cgroup path; cgroup v2 is the key "".
func ownCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			if len(out) > 0 {
				continue // hybrid: ignore the empty v2 tree
			}
		}
		out[parts[1]] = parts[2]
	}
	if len(out) > 1 {
		delete(out, "")
	}
	return out, nil
}

// v1Hierarchies maps each cgroup v1 mount point to its controller list.
func v1Hierarchies() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		post := strings.Fields(line[sep+3:])
		if len(post) < 3 || post[0] != "cgroup" {
			continue
		}
		var ctrls []string
		for _, opt := range strings.Split(post[2], ",") {
			switch {
			case strings.HasPrefix(opt, "name="):
				ctrls = append(ctrls, opt)
			case opt == "rw" || opt == "ro" || strings.Contains(opt, "="):
			default:
				ctrls = append(ctrls, opt)
			}
		}
		pre := strings.Fields(line[:sep])
		if len(pre) >= 5 && len(ctrls) > 0 {
			out[unescapeMountinfo(pre[4])] = strings.Join(ctrls, ",")
		}
	}
	return out, sc.Err()
}
