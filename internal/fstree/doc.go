// Package fstree reads and writes directory trees whose paths are resolved
// inside a root: a container's root file system, a build context, or the
// host's "/". In a contained tree the kernel resolves every symbolic link
// and ".." as if the root were "/" (openat2 RESOLVE_IN_ROOT), so nothing in
// the tree can lead a copy outside it. Trees are archived to and extracted
// from tar streams, which is how docker cp and a build's COPY move files.
package fstree
