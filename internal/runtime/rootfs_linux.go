package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rootfs builds a container's root file system inside its mount namespace.
// Every path from the spec is resolved inside the root with
// filepath-securejoin and mounted through /proc/self/fd, so a symlink in the
// image can never redirect a mount outside the root.
type rootfs struct {
	path    string
	root    int // O_PATH descriptor of path
	spec    *specs.Spec
	bundle  string
	newUser bool
}

func newRootfs(cfg *initConfig) (*rootfs, error) {
	p := rootfsPath(cfg.Bundle, cfg.Spec.Root.Path)
	p, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, fmt.Errorf("root.path: %w", err)
	}
	return &rootfs{path: p, spec: cfg.Spec, bundle: cfg.Bundle, newUser: cfg.NewUserNS}, nil
}

// prepare does everything that must happen before pivot_root.
func (r *rootfs) prepare() error {
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p, ok := propagationTable[r.spec.Linux.RootfsPropagation]; ok {
		prop = p
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("make / %s: %w", r.spec.Linux.RootfsPropagation, err)
	}
	if err := makeParentPrivate(r.path); err != nil {
		return err
	}
	if err := unix.Mount(r.path, r.path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind root %s: %w", r.path, err)
	}
	root, err := unix.Open(r.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	r.root = root
	devBound := false
	for i, m := range r.spec.Mounts {
		if err := r.mount(m); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Type, m.Destination, err)
		}
		if filepath.Clean(m.Destination) == "/dev" && parseMountOptions(m.Options).bind {
			devBound = true
		}
	}
	if !devBound {
		if err := r.createDevices(); err != nil {
			return err
		}
	}
	if cwd := r.spec.Process.Cwd; cwd != "" {
		h, err := mkdirAllInRoot(r.root, r.path, cwd)
		if err != nil {
			return fmt.Errorf("process.cwd %s: %w", cwd, err)
		}
		h.Close()
	}
	return nil
}

// makeParentPrivate makes the mount holding path private: pivot_root
// refuses a new root whose parent mount is shared.
func makeParentPrivate(path string) error {
	mp, err := mountPointOf(path)
	if err != nil {
		return err
	}
	if err := unix.Mount("", mp, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", mp, err)
	}
	return nil
}

// mountPointOf returns the mount point containing path, from mountinfo.
func mountPointOf(path string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	best := "/"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best, sc.Err()
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountTarget resolves dest inside the root, creating a directory (or, for
// a file source, an empty file) there, and returns a handle to it.
func (r *rootfs) mountTarget(dest string, file bool) (handle, error) {
	if h, err := openInRoot(r.root, dest); err == nil {
		return h, nil
	}
	if !file {
		return mkdirAllInRoot(r.root, r.path, dest)
	}
	dir, err := mkdirAllInRoot(r.root, r.path, filepath.Dir(dest))
	if err != nil {
		return -1, err
	}
	fd, err := unix.Openat(int(dir), filepath.Base(dest), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	dir.Close()
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	if err == nil {
		unix.Close(fd)
	}
	return openInRoot(r.root, dest)
}

func (r *rootfs) mount(m specs.Mount) error {
	o := parseMountOptions(m.Options)
	typ := m.Type
	if typ == "bind" || typ == "rbind" {
		if !o.bind {
			o.flags |= unix.MS_BIND
			if typ == "rbind" {
				o.flags |= unix.MS_REC
			}
		}
		o.bind = true
	}
	switch {
	case o.bind:
		return r.bindMount(m, o)
	case typ == "cgroup":
		return r.mountCgroup(m, o)
	}
	target, err := r.mountTarget(m.Destination, false)
	if err != nil {
		return err
	}
	defer target.Close()
	src := m.Source
	if src == "" {
		src = typ
	}
	err = unix.Mount(src, target.path(), typ, o.flags, o.data)
	if err != nil && typ == "sysfs" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
		// sysfs cannot be mounted in a user namespace that does not own
		// the network namespace; fall back to the host's, as runc does.
		err = unix.Mount("/sys", target.path(), "", unix.MS_BIND|unix.MS_REC, "")
		if err == nil {
			err = r.after(m.Destination, o.flags|unix.MS_BIND, nil)
		}
	}
	if err != nil && typ == "mqueue" && errors.Is(err, unix.EPERM) && r.newUser {
		err = unix.Mount("/dev/mqueue", target.path(), "", unix.MS_BIND|unix.MS_REC, "")
	}
	if err != nil {
		return err
	}
	return r.after(m.Destination, 0, o.propagation)
}

// after applies remount flags and propagation to the mount just made at
// dest. It reopens dest: the handle used to mount refers to the directory
// underneath the new mount, not to the mount itself.
func (r *rootfs) after(dest string, flags uintptr, props []uintptr) error {
	if flags == 0 && len(props) == 0 {
		return nil
	}
	h, err := openInRoot(r.root, dest)
	if err != nil {
		return err
	}
	defer h.Close()
	if flags != 0 {
		if err := remount(h.path(), flags); err != nil {
			return err
		}
	}
	return setPropagation(h.path(), props)
}

func (r *rootfs) bindMount(m specs.Mount, o mountOpts) error {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(r.bundle, src)
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	target, err := r.mountTarget(m.Destination, !st.IsDir())
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Mount(src, target.path(), "", unix.MS_BIND|(o.flags&unix.MS_REC), ""); err != nil {
		return err
	}
	flags := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	return r.after(m.Destination, flags, o.propagation)
}

// remount applies flags to the mount at path, keeping the flags the kernel
// locks on mounts inherited into a user namespace.
func remount(path string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return err
	}
	locked := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY |
		unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
	err := unix.Mount("", path, "", flags|unix.MS_BIND|unix.MS_REMOUNT|locked, "")
	if err != nil && flags&unix.MS_RDONLY == 0 {
		return err
	}
	if err != nil {
		return fmt.Errorf("remount %s read-only: %w", path, err)
	}
	return nil
}

func setPropagation(path string, props []uintptr) error {
	for _, p := range props {
		if err := unix.Mount("", path, "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// pivot makes the prepared root the process's root.
func (r *rootfs) pivot(noPivot bool) error {
	if err := unix.Chdir(r.path); err != nil {
		return fmt.Errorf("chdir root: %w", err)
	}
	if noPivot {
		if err := unix.Mount(r.path, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move root: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// The old root is now stacked under "."; detach it without letting the
	// unmount propagate to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// chroot confines the process to the root without touching mounts, for a
// container that shares the runtime's mount namespace.
func (r *rootfs) chroot() error {
	if err := unix.Chroot(r.path); err != nil {
		return fmt.Errorf("chroot %s: %w", r.path, err)
	}
	return unix.Chdir("/")
}

// finish applies what needs the container's own view: read-only and masked
// paths, sysctls, the read-only root and the root's propagation.
func (r *rootfs) finish() error {
	l := r.spec.Linux
	// Sysctls first: readonlyPaths usually include /proc/sys.
	for k, v := range l.Sysctl {
		if err := writeSysctl(k, v); err != nil {
			return err
		}
	}
	for _, p := range l.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return fmt.Errorf("linux.readonlyPaths %s: %w", p, err)
		}
	}
	for _, p := range l.MaskedPaths {
		if err := maskPath(p); err != nil {
			return fmt.Errorf("linux.maskedPaths %s: %w", p, err)
		}
	}
	if r.spec.Root.Readonly {
		if err := remount("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("root.readonly: %w", err)
		}
	}
	if p, ok := propagationTable[l.RootfsPropagation]; ok {
		if err := unix.Mount("", "/", "", p, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation: %w", err)
		}
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	return remount(p, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_REC)
}

func maskPath(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if st.IsDir() {
		return unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	}
	return unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
}

func writeSysctl(key, value string) error {
	if key == "" || strings.Contains(key, "..") || strings.ContainsRune(key, 0) {
		return fmt.Errorf("linux.sysctl: invalid key %q", key)
	}
	path := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("linux.sysctl %s: %w", key, err)
	}
	return nil
}
