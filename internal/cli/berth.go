// Package cli is berth's command line: thin cobra commands, one file per
// command group, that parse flags and call the libraries under internal/.
// The runtime's command line is internal/cli/runtimecli.
package cli

import (
	"sync"

	"github.com/berth-dev/berth/internal/cli/runtimecli"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/root"
	"github.com/spf13/cobra"
)

// globals are berth's global flags, and the root they name, opened once.
type globals struct {
	root string

	once   sync.Once
	opened *root.Root
	err    error
}

// open opens the root the --root flag names (see package root).
func (g *globals) open() (*root.Root, error) {
	g.once.Do(func() { g.opened, g.err = root.Open(g.root) })
	return g.opened, g.err
}

// engine opens the root's container engine.
func (g *globals) engine() (*container.Engine, error) {
	r, err := g.open()
	if err != nil {
		return nil, err
	}
	return r.Engine()
}

// store opens the root's image store.
func (g *globals) store() (*image.Store, error) {
	r, err := g.open()
	if err != nil {
		return nil, err
	}
	return r.Images()
}

// networks opens the root's network manager.
func (g *globals) networks() (*network.Manager, error) {
	r, err := g.open()
	if err != nil {
		return nil, err
	}
	return r.Networks()
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
	cmd.SetFlagErrorFunc(flagError)
	cmd.PersistentFlags().StringVar(&g.root, "root", root.Default(), "directory for images and containers")
	cmd.AddCommand(newPull(g), newPush(g), newImages(g), newTag(g), newRmi(g), newImport(g),
		newSave(g), newLoad(g), newLogin(g), newLogout(g), newImageCommand(g),
		newNetworkCommand(g), withRunStatus(newRun(g), nil), newCreate(g), newStart(g), newStop(g), newRestart(g), newKill(g), newRm(g),
		newWait(g), newAttach(g), newPs(g), newLogs(g), withRunStatus(newExec(g), nil), newInspect(g), newVolumeCommand(g), newContainerMonitor(g),
		newStats(g), newTop(g), newPort(g), newRename(g), newCp(g), newEvents(g), newSystemCommand(g), newContainerGroup(g), newBuild(g), newBuilderCommand(g), newHistory(g),
		newServe(g), newServiceCommand(g))
	return runtimecli.Execute(cmd, args, "berth")
}
