// Command berth-runtime is berth's OCI runtime with runc's command line.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/cli/runtimecli"
	_ "github.com/berth-dev/berth/internal/runtime/boot" // a container's init, before the Go runtime
)

func main() {
	os.Exit(runtimecli.RuntimeMain(os.Args[1:]))
}
