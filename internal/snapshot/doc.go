// Package snapshot stores committed file-system layers as overlay lower
// directories, keyed by their chain ID.
//
// A snapshot is a directory tree in overlayfs "diff" form (a whiteout is a
// 0/0 character device, an opaque directory carries the
// trusted.overlay.opaque=y extended attribute) plus the chain ID of its
// parent. Mounting overlay(5) with a snapshot's Lowerdirs gives the file
// system of an image up to and including that layer.
//
// On disk, under the store's root (mode 0700, because committed layers hold
// set-user-ID programs that no unprivileged user should reach):
//
//	<algorithm>/<hex>/fs          the layer's diff, used as an overlay lowerdir
//	<algorithm>/<hex>/meta.json   parent chain ID, size and creation time
//	.tmp/<algorithm>-<hex>/       a commit or removal in progress, or the leftover of a killed one
//	.lock/<algorithm>-<hex>       flock(2) file serialising writers of one chain ID
//
// A snapshot becomes visible only through the rename(2) of its finished
// directory, so no reader ever sees a half-written one, and any number of
// berth processes may commit and remove snapshots in one store at the same
// time. What a killed process leaves in .tmp and .lock is removed by the
// next New or Commit.
package snapshot
