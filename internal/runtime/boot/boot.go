// Package boot is the part of berth's runtime that runs in a container's
// init process before the Go runtime starts: a C constructor, linked into
// every binary that imports this package, that does nothing unless the
// process was started as init.
//
// First it joins namespaces. The kernel refuses setns(2) into a mount or
// user namespace from a multi-threaded process, and the Go runtime starts
// threads before main runs; runc solves this with a C constructor (nsexec)
// too. The parent process joins the per-thread namespaces (net, uts, ipc,
// pid, cgroup) on a locked OS thread before it forks the child, so only the
// mount and user namespaces are left here. _BERTH_NSENTER holds a
// comma-separated list of entries, applied in order:
//
//	user:PATH    setns into the user namespace at PATH
//	mnt:PATH     setns into the mount namespace at PATH
//	unshare:N    unshare(N) afterwards (N is decimal clone flags)
//
// Then, for a process started as "init" with _BERTH_INIT_FDS
// ("sync,listener,console", -1 for absent descriptors), it is the
// container's init: it reads the configuration the runtime compiled from
// the spec (internal/runtime's initwire_linux.go) from the sync socket,
// builds the root file system, sets up the process and execs it, or
// reports one line of error over the socket and exits 125.
//
// Init is C rather than Go because starting the Go runtime, about ten
// milliseconds on these machines, was a third of a container's start: the
// runtime process does everything that needs no container view (parsing,
// validation, capability and rlimit names, the seccomp filter compiled to
// BPF, the hooks' state documents), and init only makes system calls.
// No library offers this (runc's nsexec is part of libcontainer and does
// not build the root file system), so it is written here.
package boot

/*
#cgo CFLAGS: -Wall -O2
extern void berth_nsenter(void);
extern void berth_init(int argc, char **argv);
void __attribute__((constructor)) berth_boot(int argc, char **argv) {
	berth_nsenter();
	berth_init(argc, argv);
}
*/
import "C"
