package cli

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
)

func newRename(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  argsBetween(2, 2, "CONTAINER NEW_NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			return e.Rename(cmd.Context(), args[0], args[1])
		},
	}
}

// argsBetween accepts min to max arguments and otherwise says what the
// command takes.
func argsBetween(min, max int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return fmt.Errorf("%s takes %s, got %d arguments: %w", cmd.Name(), usage, len(args), errdefs.ErrInvalidArgument)
		}
		return nil
	}
}
