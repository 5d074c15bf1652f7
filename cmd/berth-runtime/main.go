// Command berth-runtime is berth's OCI runtime with runc's command line.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/cli/runtimecli"
	"github.com/berth-dev/berth/internal/runtime"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
)

func main() {
	if runtime.IsInit() {
		runtime.Init()
	}
	os.Exit(runtimecli.RuntimeMain(os.Args[1:]))
}
