// Command berth runs containers and the services built from them. Run as
// berth-runtime (a link or copy under that name) it is berth's OCI runtime;
// as berth-init, --init's PID 1 (package reaper, before the Go runtime).
package main

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/cli/runtimecli"
	_ "github.com/berth-dev/berth/internal/idle"         // the monitor at rest, before the Go runtime
	_ "github.com/berth-dev/berth/internal/reaper"       // berth-init, before the Go runtime
	_ "github.com/berth-dev/berth/internal/runtime/boot" // a container's init, before the Go runtime
)

func main() {
	if filepath.Base(os.Args[0]) == "berth-runtime" {
		os.Exit(runtimecli.RuntimeMain(os.Args[1:]))
	}
	os.Exit(cli.Main(os.Args[1:]))
}
