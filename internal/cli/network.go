package cli

import "github.com/spf13/cobra"

// newNetworkCommand is berth's `network` command group.
func newNetworkCommand(g *globals) *cobra.Command {
	return &cobra.Command{Use: "network", Short: "Manage networks", Hidden: true}
}
