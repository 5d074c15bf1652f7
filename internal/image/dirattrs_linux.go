package image

import (
	"errors"

	"golang.org/x/sys/unix"
)

// copyDirAttrs gives directory dst src's mode, owner, xattrs and times.
func copyDirAttrs(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(src, buf)
	if err != nil && !errors.Is(err, unix.ENOTSUP) {
		return err
	}
	for _, name := range splitNul(buf[:max(n, 0)]) {
		val := make([]byte, 4096)
		m, err := unix.Lgetxattr(src, name, val)
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(dst, name, val[:m], 0); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}
