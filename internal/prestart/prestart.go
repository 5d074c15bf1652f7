// Package prestart starts the monitor of a `berth run` before the Go
// runtime of the berth command itself has started, so that the two Go
// start-ups (some 15-20 ms each on small machines) overlap instead of one
// following the other.
//
// It is a C constructor that runs in every process of a binary importing
// this package, and does nothing unless the program is called berth and its
// command line is `berth [--root DIR] run …`. Then it forks and executes
// /proc/self/exe as `berth-monitor [--root DIR] container-monitor
// <placeholder>` with its report pipe on fd 3 and a control socket on fd 4,
// exactly as container.Engine's Prestart would (package monitorproto is the
// contract; its tests hold this C to it), and keeps the other ends for the
// engine to adopt (Monitor). A monitor that is never told its container
// exits when this command does.
package prestart

/*
#cgo CFLAGS: -Wall -O2
extern void berth_prestart(int argc, char **argv);
extern int berth_prestart_pid, berth_prestart_report, berth_prestart_ctl;
extern const char *berth_prestart_root;
void __attribute__((constructor)) berth_prestart_init(int argc, char **argv) { berth_prestart(argc, argv); }
static int pid(void) { return berth_prestart_pid; }
static int report(void) { return berth_prestart_report; }
static int ctl(void) { return berth_prestart_ctl; }
static const char *root(void) { return berth_prestart_root; }
static void forget(void) { berth_prestart_pid = -1; }
*/
import "C"

import "os"

// Monitor hands over, once, the monitor the constructor started: its pid,
// the read end of its report pipe, its control socket, and the --root it
// was given ("" for none). ok is false if none was started.
func Monitor() (pid int, report, ctl *os.File, root string, ok bool) {
	pid = int(C.pid())
	if pid <= 0 {
		return 0, nil, nil, "", false
	}
	C.forget()
	return pid, os.NewFile(uintptr(C.report()), "monitor-report"), os.NewFile(uintptr(C.ctl()), "monitor-ctl"), C.GoString(C.root()), true
}
