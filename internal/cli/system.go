package cli

import (
	"fmt"

	"github.com/berth-dev/berth/internal/container"
	"github.com/spf13/cobra"
)

// newSystemCommand is berth's `system` command group.
func newSystemCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage berth as a whole"}
	var all, volumes bool
	prune := &cobra.Command{
		Use:   "prune [-a] [--volumes] [-f]",
		Short: "Remove stopped containers, unused networks, dangling images (and more with -a, --volumes)",
		Long: `Remove what nothing uses: every container that is not running, the
user-defined networks no container is connected to or names, images
without a name (with -a every image no container uses, running or not) and,
with --volumes, the anonymous volumes no container mounts, and the build
cache. berth never
asks for confirmation: -f is accepted for Docker's sake.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			var r container.PruneReport
			defer printPrune(&r)
			if err := e.PruneContainers(cmd.Context(), &r); err != nil {
				return err
			}
			if err := e.PruneNetworks(cmd.Context(), &r); err != nil {
				return err
			}
			if volumes {
				if err := e.PruneAnonymousVolumes(cmd.Context(), &r); err != nil {
					return err
				}
			}
			if err := e.PruneImages(cmd.Context(), all, &r); err != nil {
				return err
			}
			r.BuildCache, err = e.Images().PruneCache()
			return err
		},
	}
	f := prune.Flags()
	f.BoolVarP(&all, "all", "a", false, "remove every image no container uses, not only dangling ones")
	f.BoolVar(&volumes, "volumes", false, "remove anonymous volumes no container mounts")
	f.BoolP("force", "f", false, "do not ask for confirmation (berth never asks)")
	cmd.AddCommand(prune)
	return cmd
}

// newContainerGroup is berth's `container` command group: Docker's
// `container prune` and the container commands of this file's siblings
// under their group.
func newContainerGroup(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers"}
	prune := &cobra.Command{
		Use:   "prune [-f]",
		Short: "Remove every container that is not running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			var r container.PruneReport
			defer printPrune(&r)
			return e.PruneContainers(cmd.Context(), &r)
		},
	}
	prune.Flags().BoolP("force", "f", false, "do not ask for confirmation (berth never asks)")
	cmd.AddCommand(prune, newStats(g), newTop(g), newPort(g), newRename(g), newCp(g))
	return cmd
}

// newBuilderCommand is Docker's `builder` group: the build cache.
func newBuilderCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "builder", Short: "Manage the build cache"}
	prune := &cobra.Command{
		Use:   "prune [-f]",
		Short: "Remove the build cache, and the layers only it kept",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.store()
			if err != nil {
				return err
			}
			n, err := s.PruneCache()
			if err != nil {
				return err
			}
			fmt.Printf("Deleted build cache entries: %d\n", n)
			return nil
		},
	}
	prune.Flags().BoolP("force", "f", false, "do not ask for confirmation (berth never asks)")
	prune.Flags().BoolP("all", "a", false, "accepted for Docker's sake: the whole cache goes")
	cmd.AddCommand(prune)
	return cmd
}

// printPrune prints what a prune removed, as Docker does.
func printPrune(r *container.PruneReport) {
	section := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Println(title + ":")
		for _, it := range items {
			fmt.Println(it)
		}
		fmt.Println()
	}
	section("Deleted Containers", r.Containers)
	section("Deleted Networks", r.Networks)
	section("Deleted Volumes", r.Volumes)
	var imgs []string
	for _, id := range r.Images {
		imgs = append(imgs, "deleted: "+id.String())
	}
	section("Deleted Images", imgs)
	if r.BuildCache > 0 {
		fmt.Printf("Deleted build cache entries: %d\n\n", r.BuildCache)
	}
	fmt.Println("Total reclaimed space: " + decimalSize(uint64(r.SpaceReclaimed), 4))
}
