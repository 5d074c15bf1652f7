// Command berth runs containers and the services built from them. Run as
// berth-runtime (a link or copy under that name) it is berth's OCI runtime.
package main

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/cli/runtimecli"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/runtime"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
)

func main() {
	if runtime.IsInit() {
		runtime.Init()
	}
	switch filepath.Base(os.Args[0]) {
	case "berth-runtime":
		os.Exit(runtimecli.RuntimeMain(os.Args[1:]))
	case "berth-init":
		os.Exit(container.InitMain(os.Args[1:]))
	}
	os.Exit(cli.Main(os.Args[1:]))
}
