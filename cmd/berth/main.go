// Command berth runs containers and the services built from them.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/runtime"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
)

func main() {
	if runtime.IsInit() {
		runtime.Init()
	}
	os.Exit(cli.Main(os.Args[1:]))
}
