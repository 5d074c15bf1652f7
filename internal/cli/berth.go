package cli

import "github.com/spf13/cobra"

// Main runs berth's command line and returns the exit status.
func Main(args []string) int {
	cmd := &cobra.Command{
		Use:           "berth",
		Short:         "berth runs containers and the services built from them",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// `berth runtime ...` is berth-runtime's command line, for when only
	// one binary is installed.
	g := &runtimeGlobals{}
	rt := newRuntimeCommand(g)
	rt.Use = "runtime"
	cmd.AddCommand(rt)
	return execute(cmd, args, "berth", g)
}
