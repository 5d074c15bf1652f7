// Package reaper is berth-init, the PID 1 that `run --init` puts in front of
// a container's command (berth itself, bind-mounted at /dev/berth-init): it
// forwards the signals it gets to the command, reaps the zombies orphans
// leave, and exits with the command's status (128+N when a signal killed it).
//
// It is a C constructor that runs, in every process of a binary importing
// this package, before the Go runtime starts, and does nothing unless the
// program is called berth-init. In Go it cannot be done right: the runtime
// installs its signal handlers long before main could call signal.Notify,
// and a SIGTERM landing in between makes it re-raise the signal, which the
// kernel ignores for PID 1, and exit 2. As plain C the init blocks every
// signal before it starts the command and takes them with sigwaitinfo, as
// tini does; berth ships it inside its one binary instead of tini, and PID 1
// costs no Go runtime.
package reaper

/*
#cgo CFLAGS: -Wall -O2
extern void berth_reaper(int argc, char **argv);
void __attribute__((constructor)) berth_reaper_init(int argc, char **argv) { berth_reaper(argc, argv); }
*/
import "C"
