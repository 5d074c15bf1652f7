// Package monitor is a container's monitor: the one berth process that
// lives as long as its container. It starts the container through the OCI
// runtime, holds its stdio, writes its log and serves the commands that
// attach to it (the hub), runs its health checks, records how it exited,
// applies its restart policy, and releases what the container held when it
// is done (removing it for --rm). While it only copies output into the log,
// which is nearly always, it rests in package idle's C loop and comes back
// here when the container exits or a client attaches (rest).
//
// The engine (package container) starts the monitor as the hidden command
// `berth container-monitor ID`, whose body is Run; package monitorproto is
// the contract between the two. The monitor reads and changes the
// container's records only through the engine's methods for it (Get, Dir,
// State, UpdateState, Emit, WriteSpec, ReleaseRun, LoopbackOnly) and
// reaches the runtime through the engine (OwnRuntime, RuntimeCmd, Signal,
// DeleteRuntimeState); package container does not import this one, so a
// program that drives the engine does not carry the monitor.
package monitor
