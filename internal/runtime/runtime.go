package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"log/slog"
	"os"
)

// Runtime runs OCI bundles. Its zero value is not usable; set Root.
type Runtime struct {
	// Root holds one state directory per container.
	Root string
	// Log receives debug messages; nil discards them.
	Log *slog.Logger
	// Self is the path of the executable to re-execute as a container's
	// init; empty means the running executable.
	Self string
}

// CreateOptions are the knobs of Create and Run beyond the bundle.
type CreateOptions struct {
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFDs   int
	// Stdio for the container's process; nil means the caller's own.
	Stdin, Stdout, Stderr *os.File
	// Spec, if set, is the bundle's configuration as the caller wrote it
	// to config.json, which is then not read back.
	Spec *specs.Spec
}

func (r *Runtime) logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}
