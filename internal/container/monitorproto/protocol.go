// Package monitorproto is the contract between berth's engine (package
// container, in the user's command) and a container's monitor (package
// monitor, a process of its own that lives as long as the container): how
// a monitor is started, how it says whether the container started, and the
// frames it exchanges with attached commands. Both sides import it; the C
// starter in package prestart follows the same contract by hand.
//
// # Starting a monitor
//
// A monitor is the berth binary run as
//
//	berth-monitor [GLOBAL FLAGS…] container-monitor ID
//
// (argv[0] ProcessName, then the global flags of the starting command, such
// as --root DIR, then Command and the container's ID), in a session of its
// own, with GOMAXPROCS=1 in its environment (it needs no more, and starts
// faster), and with these descriptors open:
//
//   - ReportFd: the write end of a pipe on which it writes one StartReport
//     (WriteReport) once the container runs or could not start, and
//     closes it.
//   - AttachFd, only if AttachEnv is set: a connected unix stream socket,
//     the first attached client, served from the container's very first
//     byte of output (a `run` without -d).
//
// Every other descriptor it inherits it closes on exec: they must not reach
// the container.
//
// An early monitor is started before its container exists (Engine.Prestart,
// or package prestart before the Go runtime of `berth run` starts), with
// Unassigned in place of the ID and, on CtlFd, one end of a unix seqpacket
// socket. Its starter later sends one message on the other end (Assign):
// the container's ID, with the first attached client's socket as
// SCM_RIGHTS if there is one. If the starter closes its end instead, the
// monitor exits. Unassigned is as long as an ID, so the monitor writes the
// ID over it in its own command line and is found by it like any other.
//
// The monitor's own re-executions while it rests (see package idle) carry
// _BERTH_IDLE, _BERTH_RESUME, _BERTH_HEALTH and _BERTH_MONITOR_STATE; a
// starter sets none of them.
//
// # Files in the container's directory
//
// The monitor writes the container's log to LogFile (package logfile's
// format, which the engine reads back) and listens for attaching commands
// on AttachSocket, both in the container's directory.
//
// # Attach frames
//
// Over AttachSocket, or the socket passed on AttachFd, both sides send
// frames: a one-byte kind, a four-byte big-endian payload length (at most
// MaxFrame) and the payload. The client sends FrameStdin, FrameResize,
// FrameCloseStdin and FrameSignal; the monitor sends FrameStdout,
// FrameStderr and, last, FrameExit once the container has exited for good
// (after its restart policy, and with --rm once it is removed). A client
// that sees the connection end without FrameExit knows the monitor went
// away.
package monitorproto

import (
	"encoding/json"
	"io"
)

// The monitor's command line.
const (
	// ProcessName is a monitor's argv[0], as ps shows it.
	ProcessName = "berth-monitor"
	// Command is berth's hidden command that runs a monitor, followed by
	// the container's ID.
	Command = "container-monitor"
	// Unassigned stands for the ID of an early monitor's container: 64
	// dots, as long as an ID.
	Unassigned = "................................................................"
)

// The monitor's inherited descriptors and environment.
const (
	ReportFd = 3 // the start report's pipe
	AttachFd = 4 // the first attached client, with AttachEnv set
	CtlFd    = 4 // an early monitor's control socket
	// AttachEnv, set to 1, says that AttachFd is open.
	AttachEnv = "_BERTH_MONITOR_ATTACH"
)

// Files the monitor makes in the container's directory.
const (
	LogFile      = "ctr.log"
	AttachSocket = "attach.sock"
)

// StartReport is what the monitor says on ReportFd once the container
// runs (Pid) or could not start (Error, and Class, the name of the
// errdefs class of the error, if it has one).
type StartReport struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	Class string `json:"class,omitempty"`
}

// WriteReport writes r as the start report to w: one JSON object.
func WriteReport(w io.Writer, r StartReport) error {
	return json.NewEncoder(w).Encode(r)
}

// ReadReport reads the start report from r; io.EOF means the monitor
// exited without one.
func ReadReport(r io.Reader) (StartReport, error) {
	var rep StartReport
	err := json.NewDecoder(r).Decode(&rep)
	return rep, err
}
