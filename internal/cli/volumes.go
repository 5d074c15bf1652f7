package cli

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/container"
	"github.com/spf13/cobra"
)

// volumeRow is one line of `volume ls`, with Docker's --format names.
type volumeRow struct {
	Name, Driver, Scope, Mountpoint, Labels string
}

func newVolumeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage named volumes"}
	var labels []string
	create := &cobra.Command{
		Use:   "create [--label K=V] [NAME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			l, err := keyValues("--label", labels)
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			v, err := e.CreateVolume(cmd.Context(), name, l)
			if err != nil {
				return err
			}
			fmt.Println(v.Name)
			return nil
		},
	}
	create.Flags().StringArrayVarP(&labels, "label", "l", nil, "set a label KEY=VALUE")
	var quiet bool
	var format string
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if quiet {
				format = "{{.Name}}"
			}
			out, err := parseListFormat(format, "table {{.Driver}}\t{{.Name}}", map[string]string{"Name": "VOLUME NAME"})
			if err != nil {
				return err
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			vs, err := e.Volumes(cmd.Context())
			if err != nil {
				return err
			}
			rows := make([]volumeRow, len(vs))
			for i, v := range vs {
				rows[i] = volumeRow{Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint, Labels: joinLabels(v.Labels)}
			}
			return printList(os.Stdout, out, rows)
		},
	}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only names")
	ls.Flags().StringVar(&format, "format", "", `Go template per volume, e.g. {{.Name}}; "table …" with titles; json`)
	var inspectFormat string
	inspect := &cobra.Command{
		Use:   "inspect [--format T] VOLUME...",
		Short: "Show volumes' details as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseInspectFormat(inspectFormat)
			if err != nil {
				return err
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			var out []*container.Volume
			for _, a := range args {
				v, err := e.Volume(cmd.Context(), a)
				if err != nil {
					return err
				}
				out = append(out, v)
			}
			return printInspect(os.Stdout, f, out)
		},
	}
	inspect.Flags().StringVarP(&inspectFormat, "format", "f", "", "Go template applied to each volume, e.g. {{.Mountpoint}}; json")
	var force bool
	rm := &cobra.Command{
		Use:     "rm [-f] VOLUME...",
		Aliases: []string{"remove"},
		Short:   "Remove volumes no container uses",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			return eachContainer(args, func(name string) error { return e.RemoveVolume(cmd.Context(), name, force) })
		},
	}
	rm.Flags().BoolVarP(&force, "force", "f", false, "no error for missing volumes")
	var all bool
	prune := &cobra.Command{
		Use:   "prune [-a]",
		Short: "Remove unused anonymous volumes (all unused with -a)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			names, err := e.PruneVolumes(cmd.Context(), all)
			for _, n := range names {
				fmt.Println(n)
			}
			return err
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove named volumes too")
	prune.Flags().BoolP("force", "f", true, "do not prompt (berth never prompts)")
	cmd.AddCommand(create, ls, inspect, rm, prune)
	return cmd
}
