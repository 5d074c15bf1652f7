package runtimecli

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/moby/sys/signal"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func addCreateFlags(cmd *cobra.Command, o *runtime.CreateOptions) {
	f := cmd.Flags()
	f.StringVarP(&o.Bundle, "bundle", "b", ".", "path to the bundle directory")
	f.StringVar(&o.PidFile, "pid-file", "", "write the container's init pid to this file")
	f.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master when process.terminal is set")
	f.BoolVar(&o.NoPivot, "no-pivot", false, "use chroot instead of pivot_root (for a root on ramfs)")
	f.BoolVar(&o.NoNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	f.IntVar(&o.PreserveFDs, "preserve-fds", 0, "pass this many extra descriptors (from fd 3) to the container")
}

func newRuntimeCreate(g *runtimeGlobals) *cobra.Command {
	var o runtime.CreateOptions
	cmd := &cobra.Command{
		Use:   "create [flags] ID",
		Short: "Create a container from a bundle; its process waits for start",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.rt.Create(cmd.Context(), args[0], o)
		},
	}
	addCreateFlags(cmd, &o)
	return cmd
}

func newRuntimeStart(g *runtimeGlobals) *cobra.Command {
	return &cobra.Command{
		Use:   "start ID",
		Short: "Run the program of a created container",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.rt.Start(cmd.Context(), args[0])
		},
	}
}

func newRuntimeRun(g *runtimeGlobals) *cobra.Command {
	var o runtime.CreateOptions
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [flags] ID",
		Short: "Create and start a container; without --detach, wait and exit with its status",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			status, err := g.rt.Run(cmd.Context(), args[0], o, detach)
			if err != nil {
				return err
			}
			if status != 0 {
				return &errdefs.StatusError{Status: status}
			}
			return nil
		},
	}
	addCreateFlags(cmd, &o)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return once the container runs")
	return cmd
}

func newRuntimeState(g *runtimeGlobals) *cobra.Command {
	return &cobra.Command{
		Use:   "state ID",
		Short: "Print a container's state as JSON",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.rt.State(args[0])
			if err != nil {
				return err
			}
			return printJSON(st)
		},
	}
}

func newRuntimeKill(g *runtimeGlobals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [--all] ID [SIGNAL]",
		Short: "Send a signal (default SIGTERM) to a container",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("kill: expects ID [SIGNAL]: %w", errdefs.ErrInvalidArgument)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				s, err := signal.ParseSignal(args[1])
				if err != nil {
					return fmt.Errorf("kill: signal %q: %w", args[1], errdefs.ErrInvalidArgument)
				}
				sig = unix.Signal(s)
			}
			return g.rt.Kill(args[0], sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process in the container")
	return cmd
}

func newRuntimeDelete(g *runtimeGlobals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [--force] ID",
		Short: "Delete a stopped container (with --force, any container)",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.rt.Delete(cmd.Context(), args[0], force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container first if it runs")
	return cmd
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runtimeSpecVersion() string { return specs.Version }
