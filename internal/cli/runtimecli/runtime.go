// Package runtimecli is berth-runtime's command line, runc's: thin cobra
// commands over internal/runtime. It is a package of its own so that the
// runtime binary links nothing of the image store or the engine: every
// linked package's start-up runs at every container start.
package runtimecli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/spf13/cobra"
)

// Version is berth's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

type runtimeGlobals struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rt            *runtime.Runtime
	failStatus    int // the exit status of a failure, if not 1
	logger        *slog.Logger
}

// RuntimeMain runs berth-runtime's command line (runc's) and returns the
// process exit status.
func RuntimeMain(args []string) int {
	g := &runtimeGlobals{}
	return execute(newRuntimeCommand(g), args, "berth-runtime", g)
}

// Execute runs cmd and turns its error into one line on stderr (and the
// runtime's log file, where conmon looks for it) and an exit status.
func Execute(cmd *cobra.Command, args []string, name string) int {
	return execute(cmd, args, name, nil)
}

func execute(cmd *cobra.Command, args []string, name string, g *runtimeGlobals) int {
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	var se *errdefs.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	if err == nil {
		return 0
	}
	if g != nil && g.log != "" && g.logger != nil {
		g.logger.Error(err.Error())
	}
	fmt.Fprintln(os.Stderr, name+": "+err.Error())
	if g != nil {
		// runc's exit statuses, which its callers and suite expect: 1 for
		// a failure, 255 for exec's own.
		if g.failStatus != 0 {
			return g.failStatus
		}
		return 1
	}
	return errdefs.ExitCode(err)
}

func defaultRuntimeRoot() string {
	if os.Geteuid() == 0 {
		return "/run/berth-runtime"
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return dir + "/berth-runtime"
	}
	return fmt.Sprintf("/tmp/berth-runtime-%d", os.Geteuid())
}

func newRuntimeCommand(g *runtimeGlobals) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "berth-runtime",
		Short:         "berth's OCI runtime, with runc's command line",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.setup()
		},
	}
	cmd.SetVersionTemplate(fmt.Sprintf("berth-runtime version {{.Version}}\nspec: %s\n", runtimeSpecVersion()))
	f := cmd.PersistentFlags()
	f.StringVar(&g.root, "root", defaultRuntimeRoot(), "directory for container state")
	f.StringVar(&g.log, "log", "", "write the runtime's log to this file (default: stderr)")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	f.BoolVar(&g.debug, "debug", false, "log debug messages")
	f.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "manage cgroups through systemd (not supported)")
	// Accepted for runc compatibility; berth has no use for them.
	f.String("criu", "", "ignored (checkpointing is not supported)")
	f.String("rootless", "auto", "ignored; berth detects rootless mode itself")
	_ = f.MarkHidden("criu")
	_ = f.MarkHidden("rootless")
	cmd.AddCommand(
		newRuntimeCreate(g), newRuntimeStart(g), newRuntimeRun(g), newRuntimeState(g),
		newRuntimeKill(g), newRuntimeDelete(g), newRuntimeExec(g), newRuntimePs(g),
		newRuntimeList(g), newRuntimePause(g), newRuntimeResume(g), newRuntimeUpdate(g),
		newRuntimeFeatures(), newRuntimeSpec(),
	)
	return cmd
}

func (g *runtimeGlobals) setup() error {
	if g.systemdCgroup {
		return fmt.Errorf("--systemd-cgroup: berth-runtime manages cgroups through cgroupfs only; drop the flag (podman: --cgroup-manager=cgroupfs): %w", errdefs.ErrNotImplemented)
	}
	var w io.Writer = os.Stderr
	if g.log != "" {
		f, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("--log %s: %w", g.log, err)
		}
		w = f
	}
	level := slog.LevelWarn
	if g.debug {
		level = slog.LevelDebug
	}
	// runc (logrus) writes lowercase levels, and conmon looks for them.
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey {
			return slog.String("level", strings.ToLower(a.Value.String()))
		}
		return a
	}}
	switch g.logFormat {
	case "text":
		g.logger = slog.New(slog.NewTextHandler(w, opts))
	case "json":
		g.logger = slog.New(slog.NewJSONHandler(w, opts))
	default:
		return fmt.Errorf("--log-format %q: must be text or json: %w", g.logFormat, errdefs.ErrInvalidArgument)
	}
	g.rt = &runtime.Runtime{Root: g.root, Log: g.logger}
	return nil
}

// exactID is the Args validator for commands that take one container id.
func exactID(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s: expects exactly one container id, got %d arguments: %w", cmd.Name(), len(args), errdefs.ErrInvalidArgument)
	}
	return nil
}
