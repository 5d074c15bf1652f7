package runtime

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountOpts is a spec mount's options split the way mount(2) wants them.
type mountOpts struct {
	flags       uintptr // MS_* flags to set
	clear       uintptr // MS_* flags the options explicitly clear (for remounts)
	propagation []uintptr
	data        string
	bind        bool
	// attrSet and attrClear are MOUNT_ATTR_* flags applied to the mount
	// and every mount below it (mount_setattr(2) with AT_RECURSIVE), from
	// the recursive options ("rro", "rnosuid"…).
	attrSet, attrClear uint64
}

var mountFlagTable = map[string]struct {
	clear bool
	flag  uintptr
}{
	"async": {true, unix.MS_SYNCHRONOUS}, "atime": {true, unix.MS_NOATIME},
	"bind": {false, unix.MS_BIND}, "defaults": {false, 0},
	"dev": {true, unix.MS_NODEV}, "diratime": {true, unix.MS_NODIRATIME},
	"dirsync": {false, unix.MS_DIRSYNC}, "exec": {true, unix.MS_NOEXEC},
	"mand": {false, unix.MS_MANDLOCK}, "noatime": {false, unix.MS_NOATIME},
	"nodev": {false, unix.MS_NODEV}, "nodiratime": {false, unix.MS_NODIRATIME},
	"noexec": {false, unix.MS_NOEXEC}, "nomand": {true, unix.MS_MANDLOCK},
	"norelatime": {true, unix.MS_RELATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid": {false, unix.MS_NOSUID}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"relatime": {false, unix.MS_RELATIME}, "remount": {false, unix.MS_REMOUNT},
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"strictatime": {false, unix.MS_STRICTATIME}, "suid": {true, unix.MS_NOSUID},
	"sync": {false, unix.MS_SYNCHRONOUS},
}

var propagationTable = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// recursiveTable holds the recursive options runc accepts: each sets or
// clears a MOUNT_ATTR_* flag on a mount and all mounts below it.
var recursiveTable = map[string]struct {
	clear bool
	attr  uint64
}{
	"rro": {false, unix.MOUNT_ATTR_RDONLY}, "rrw": {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid": {false, unix.MOUNT_ATTR_NOSUID}, "rsuid": {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev": {false, unix.MOUNT_ATTR_NODEV}, "rdev": {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec": {false, unix.MOUNT_ATTR_NOEXEC}, "rexec": {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime": {false, unix.MOUNT_ATTR_NODIRATIME}, "rdiratime": {true, unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime": {false, unix.MOUNT_ATTR_RELATIME}, "rnorelatime": {true, unix.MOUNT_ATTR_RELATIME},
	"rnoatime": {false, unix.MOUNT_ATTR_NOATIME}, "ratime": {true, unix.MOUNT_ATTR_NOATIME},
	"rstrictatime": {false, unix.MOUNT_ATTR_STRICTATIME}, "rnostrictatime": {true, unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW}, "rsymfollow": {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// ignoredOptions are accepted for compatibility with other runtimes'
// configurations and have no effect here.
var ignoredOptions = map[string]bool{"tmpcopyup": true, "notmpcopyup": true, "copy-symlink": true, "z": true, "Z": true}

func parseMountOptions(options []string) mountOpts {
	var o mountOpts
	var data []string
	for _, opt := range options {
		if f, ok := mountFlagTable[opt]; ok {
			if f.clear {
				o.flags &^= f.flag
				o.clear |= f.flag
			} else {
				o.flags |= f.flag
			}
			continue
		}
		if p, ok := propagationTable[opt]; ok {
			o.propagation = append(o.propagation, p)
			continue
		}
		if r, ok := recursiveTable[opt]; ok {
			if r.clear {
				o.attrSet &^= r.attr
				o.attrClear |= r.attr
			} else {
				// mount_setattr(2) takes an atime mode only with the
				// whole atime field cleared.
				if r.attr&unix.MOUNT_ATTR__ATIME == r.attr {
					o.attrClear |= unix.MOUNT_ATTR__ATIME
				}
				o.attrSet |= r.attr
			}
			continue
		}
		if ignoredOptions[opt] {
			continue
		}
		data = append(data, opt)
	}
	o.bind = o.flags&unix.MS_BIND != 0
	o.data = strings.Join(data, ",")
	return o
}
