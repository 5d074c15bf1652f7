package image

import "strings"

// unpackUsage adds up, as a layer is unpacked, the bytes of regular-file
// content its directory ends up holding, each inode counted once however
// many hard links it has: the figure a walk of the finished tree would
// give (snapshot.Info.Size), without the walk (a stat per entry). Files
// are known by path, so that an entry that replaces or removes a name
// takes its content out of the sum unless another hard link keeps it.
type unpackUsage struct {
	files map[string]*unpackInode
	total int64
}

// unpackInode is a regular file the layer wrote and how many of its names
// are still there.
type unpackInode struct {
	size  int64
	links int
}

// file records that the regular file rel was created with size bytes.
func (u *unpackUsage) file(rel string, size int64) {
	if u.files == nil {
		u.files = make(map[string]*unpackInode)
	}
	u.files[rel] = &unpackInode{size: size, links: 1}
	u.total += size
}

// link records that rel was created as a hard link to target; a target
// that is not a regular file adds nothing.
func (u *unpackUsage) link(rel, target string) {
	if ino := u.files[target]; ino != nil {
		ino.links++
		u.files[rel] = ino
	}
}

// removed records that rel, not a directory, is gone.
func (u *unpackUsage) removed(rel string) {
	if ino := u.files[rel]; ino != nil {
		delete(u.files, rel)
		if ino.links--; ino.links == 0 {
			u.total -= ino.size
		}
	}
}

// removedTree records that the directory rel and everything below it are
// gone.
func (u *unpackUsage) removedTree(rel string) {
	for name := range u.files {
		if rel == "." || strings.HasPrefix(name, rel+"/") {
			u.removed(name)
		}
	}
}
