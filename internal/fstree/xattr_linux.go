package fstree

import (
	"archive/tar"
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// Extended attributes travel in tar streams as GNU tar and docker cp carry
// them: PAX records named "SCHILY.xattr." and the attribute's name.
const paxXattr = "SCHILY.xattr."

// keepXattr reports whether an extended attribute is the file's own and
// goes with it: the user's attributes (user.*) and file capabilities
// (security.capability). The others belong to where the file lies —
// overlayfs's own records (user.overlay.*, trusted.overlay.*), SELinux
// labels, IMA and EVM signatures — and are neither archived nor extracted.
func keepXattr(name string) bool {
	if strings.HasPrefix(name, "user.") {
		return !strings.HasPrefix(name, "user.overlay.")
	}
	return name == "security.capability"
}

// readXattrs returns the kept extended attributes of the file open at fd,
// as PAX records; a file system without extended attributes has none.
func readXattrs(fd int) (map[string]string, error) {
	var list []byte
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Flistxattr(fd, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		list = buf[:n]
		break
	}
	var recs map[string]string
	for _, name := range strings.Split(string(list), "\x00") {
		if name == "" || !keepXattr(name) {
			continue
		}
		v, err := getxattr(fd, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		if recs == nil {
			recs = map[string]string{}
		}
		recs[paxXattr+name] = string(v)
	}
	return recs, nil
}

func getxattr(fd int, name string) ([]byte, error) {
	for size := 128; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Fgetxattr(fd, name, buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// setXattrs gives the file open at fd the kept extended attributes of h.
// As docker cp, it leaves out an attribute that the file system cannot
// hold (ENOTSUP) or the user may not set (EPERM: security.capability
// without CAP_SETFCAP). It comes after the owner is set, which would clear
// file capabilities.
func (t *Tree) setXattrs(fd int, p string, h *tar.Header) error {
	for k, v := range h.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || !keepXattr(name) {
			continue
		}
		err := unix.Fsetxattr(fd, name, []byte(v), 0)
		if err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return t.PathError(p, err)
		}
	}
	return nil
}

// fileID names an inode, to archive its further names as hard links.
type fileID struct{ dev, ino uint64 }
