package cli

import (
	"os"
	"path/filepath"

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
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&g.root, "root", defaultRoot(), "directory for images and containers")
	cmd.AddCommand(newPull(g), newPush(g), newImages(g), newTag(g), newRmi(g), newImport(g),
		newSave(g), newLoad(g), newLogin(g), newLogout(g), newImageCommand(g))
	return execute(cmd, args, "berth", nil)
}
