// Package cli is berth's command line: thin cobra commands, one file per
// command group, that parse flags and call the libraries under internal/.
// The runtime's command line is internal/cli/runtimecli.
package cli

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/cli/runtimecli"
	"github.com/spf13/cobra"
)

// globals are berth's global flags.
type globals struct {
	root string
}

func defaultRoot() string {
	if os.Geteuid() == 0 {
		return "/var/lib/berth"
	}
	if dir := os.Getenv("XDG_DATA_HOME"); dir != "" {
		return filepath.Join(dir, "berth")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "berth")
}

// Main runs berth's command line and returns the exit status.
func Main(args []string) int {
	g := &globals{}
	cmd := &cobra.Command{
		Use:           "berth",
		Short:         "berth runs containers and the services built from them",
		Version:       runtimecli.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&g.root, "root", defaultRoot(), "directory for images and containers")
	cmd.AddCommand(newPull(g), newPush(g), newImages(g), newTag(g), newRmi(g), newImport(g),
		newSave(g), newLoad(g), newLogin(g), newLogout(g), newImageCommand(g),
		newNetworkCommand(g), newRun(g), newCreate(g), newStart(g), newStop(g), newRestart(g), newKill(g), newRm(g),
		newWait(g), newAttach(g), newPs(g), newLogs(g), newExec(g), newInspect(g), newVolumeCommand(g), newContainerMonitor(g),
		newStats(g), newTop(g), newPort(g), newRename(g), newCp(g), newEvents(g), newSystemCommand(g), newContainerGroup(g), newBuild(g), newBuilderCommand(g), newHistory(g))
	return runtimecli.Execute(cmd, args, "berth")
}
