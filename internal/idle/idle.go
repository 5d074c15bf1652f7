// Package idle is a container's monitor at rest: the loop that copies the
// container's output into its log while nothing else happens, in C, before
// the Go runtime starts.
//
// A monitor is one process per container that lives as long as the
// container does, so its memory is paid once per container. Its Go code
// (package monitor) starts the container, serves attached clients, and
// records exits and restarts; in between, which is nearly always, it
// re-executes its own binary with _BERTH_IDLE set, and this package's
// constructor takes over the same process — the container stays its child
// — with none of the Go runtime's heap, stacks and threads: a few hundred
// KB instead of several MB, less than conmon.
//
// _BERTH_IDLE holds, space-separated: the container's pid; the fds of its
// stdout and stderr pipes (read ends), of its terminal's master, of the
// attach socket's listener, and of its stdin (write end), -1 where absent;
// the log's max size (0: no rotation) and file count; the health check
// interval in ns (0: none); and, as the rest of the string, the log path.
// The loop appends every line to the log as logfile.Writer does, and hands
// back to the Go code — execve of /proc/self/exe with the same arguments,
// _BERTH_IDLE removed, _BERTH_RESUME set — when the container exits
// ("exit STATUS", the raw wait status) or a client connects to the attach
// socket ("attach"). At each health interval it runs the Go code in a child
// with _BERTH_HEALTH=1, which checks once and records the result.
package idle

/*
#cgo CFLAGS: -Wall -O2
extern void berth_idle(int argc, char **argv);
void __attribute__((constructor)) berth_idle_init(int argc, char **argv) { berth_idle(argc, argv); }
*/
import "C"
