package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
)

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
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	var se *errdefs.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth: "+err.Error())
		return errdefs.ExitCode(err)
	}
	return 0
}
