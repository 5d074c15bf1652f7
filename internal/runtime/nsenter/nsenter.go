// Package nsenter joins namespaces before the Go runtime starts.
//
// The kernel refuses setns(2) into a mount or user namespace from a
// multi-threaded process, and the Go runtime starts threads before main runs.
// runc solves this with a C constructor (nsexec); berth does the same, in far
// less code, because the parent process joins the per-thread namespaces (net,
// uts, ipc, pid, cgroup) on a locked OS thread before it forks the child, so
// only the mount and user namespaces are left for the constructor.
//
// The constructor runs in every process of the binary that imports this
// package. It does nothing unless the environment holds _BERTH_NSENTER,
// whose value is a comma-separated list of entries:
//
//	user:PATH    setns into the user namespace at PATH
//	mnt:PATH     setns into the mount namespace at PATH
//	unshare:N    unshare(N) afterwards (N is decimal clone flags)
//
// Namespaces are joined in the order given. On failure the process writes
// one line to stderr and exits with status 125, before any Go code runs.
package nsenter

/*
#cgo CFLAGS: -Wall -O2
extern void berth_nsenter(void);
void __attribute__((constructor)) berth_nsenter_init(void) { berth_nsenter(); }
*/
import "C"
