package runtimecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

func newRuntimePs(g *runtimeGlobals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [--format table|json] ID [PS_ARGS...]",
		Short: "List the processes running in a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pids, err := g.rt.Pids(args[0])
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(os.Stdout).Encode(pids)
			case "table":
			default:
				return fmt.Errorf("--format %q: must be table or json: %w", format, errdefs.ErrInvalidArgument)
			}
			psArgs := args[1:]
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			out, err := exec.Command("ps", psArgs...).Output()
			if err != nil {
				return fmt.Errorf("ps: %w", err)
			}
			return filterPs(os.Stdout, string(out), pids)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

// filterPs keeps ps's header and the lines whose PID column is one of pids.
func filterPs(w io.Writer, out string, pids []int) error {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return errors.New("ps: output has no PID column")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	fmt.Fprintln(w, lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > col {
			if pid, err := strconv.Atoi(f[col]); err == nil && want[pid] {
				fmt.Fprintln(w, l)
			}
		}
	}
	return nil
}

func newRuntimeList(g *runtimeGlobals) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			states, err := g.rt.List()
			if err != nil {
				return err
			}
			if quiet {
				for _, s := range states {
					fmt.Println(s.ID)
				}
				return nil
			}
			switch format {
			case "json":
				if states == nil {
					fmt.Println("null")
					return nil
				}
				return json.NewEncoder(os.Stdout).Encode(states)
			case "table":
				tw := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
				for _, s := range states {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				return tw.Flush()
			}
			return fmt.Errorf("--format %q: must be table or json: %w", format, errdefs.ErrInvalidArgument)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only ids")
	return cmd
}

func newRuntimePause(g *runtimeGlobals) *cobra.Command {
	return &cobra.Command{Use: "pause ID", Short: "Freeze all processes of a container", Args: exactID,
		RunE: func(cmd *cobra.Command, args []string) error { return g.rt.Pause(args[0]) }}
}

func newRuntimeResume(g *runtimeGlobals) *cobra.Command {
	return &cobra.Command{Use: "resume ID", Short: "Thaw a paused container", Args: exactID,
		RunE: func(cmd *cobra.Command, args []string) error { return g.rt.Resume(args[0]) }}
}

func newRuntimeUpdate(g *runtimeGlobals) *cobra.Command {
	var resources string
	var memory, pids int64
	cmd := &cobra.Command{
		Use:   "update [--resources FILE|-] ID",
		Short: "Change a container's resource limits",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			res := &specs.LinuxResources{}
			if resources != "" {
				var data []byte
				var err error
				if resources == "-" {
					data, err = io.ReadAll(os.Stdin)
				} else {
					data, err = os.ReadFile(resources)
				}
				if err != nil {
					return fmt.Errorf("--resources: %w", err)
				}
				if err := json.Unmarshal(data, res); err != nil {
					return fmt.Errorf("--resources: %v: %w", err, errdefs.ErrInvalidArgument)
				}
			}
			if cmd.Flags().Changed("memory") {
				res.Memory = &specs.LinuxMemory{Limit: &memory}
			}
			if cmd.Flags().Changed("pids-limit") {
				res.Pids = &specs.LinuxPids{Limit: &pids}
			}
			return g.rt.Update(args[0], res)
		},
	}
	cmd.Flags().StringVarP(&resources, "resources", "r", "", "JSON file with linux.resources (- for stdin)")
	cmd.Flags().Int64Var(&memory, "memory", 0, "memory limit in bytes")
	cmd.Flags().Int64Var(&pids, "pids-limit", 0, "maximum number of processes")
	return cmd
}

func newRuntimeFeatures() *cobra.Command {
	return &cobra.Command{Use: "features", Short: "Print the runtime's features as JSON", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return printJSON(runtime.Features()) }}
}

func newRuntimeSpec() *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "Write a starting config.json into the bundle directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := bundle + "/config.json"
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s: %w; remove it first", path, errdefs.ErrAlreadyExists)
			}
			data, err := json.MarshalIndent(runtime.Example(rootless, uint32(os.Getuid()), uint32(os.Getgid())), "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(data, '\n'), 0o644)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "a configuration for an unprivileged user")
	return cmd
}
