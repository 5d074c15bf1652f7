package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
)

func newCp(g *globals) *cobra.Command {
	var o container.CopyOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "cp [flags] CONTAINER:SRC_PATH DEST_PATH|-\n  berth cp [flags] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files and directories between a container and the host",
		Long: `Copy files and directories between a container and the host, as docker cp does.

A file is copied onto a file or into a directory; a directory is copied
into an existing directory, or becomes DEST_PATH if that does not exist;
SRC_PATH ending in /. copies a directory's contents only. "-" is a tar
stream: of SRC_PATH on stdout, or read from stdin and extracted into the
directory DEST_PATH.

Paths in the container are resolved inside its root: a symbolic link in
the container can never lead outside it. Volumes and bind mounts are
copied through: a copy to a path under a volume lands in the volume.
Containers need not be running; while a copy into or out of a stopped
container runs, the container cannot start.`,
		Args: argsBetween(2, 2, "CONTAINER:SRC_PATH DEST_PATH or SRC_PATH CONTAINER:DEST_PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, srcPath := splitCopyArg(args[0])
			dstCtr, dstPath := splitCopyArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return fmt.Errorf("cp: copying between two containers is not supported: copy to the host first: %w", errdefs.ErrInvalidArgument)
			case srcCtr == "" && dstCtr == "":
				return fmt.Errorf("cp: name a container in SRC_PATH or DEST_PATH as CONTAINER:PATH: %w", errdefs.ErrInvalidArgument)
			case srcPath == "" || dstPath == "":
				return fmt.Errorf("cp: empty path: %w", errdefs.ErrInvalidArgument)
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			var n int64
			switch {
			case srcCtr != "" && dstPath == "-":
				_, err = e.ArchiveFromContainer(cmd.Context(), srcCtr, srcPath, os.Stdout, o)
				return err
			case srcCtr != "":
				n, err = e.CopyFromContainer(cmd.Context(), srcCtr, srcPath, dstPath, o)
			case srcPath == "-":
				n, err = e.ExtractToContainer(cmd.Context(), dstCtr, dstPath, os.Stdin, o)
			default:
				n, err = e.CopyToContainer(cmd.Context(), dstCtr, srcPath, dstPath, o)
			}
			if err == nil && !quiet {
				fmt.Fprintf(os.Stderr, "Successfully copied %s to %s\n", decimalSize(uint64(n), 4), args[1])
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Archive, "archive", "a", false, "keep the owners (uid:gid) of the source")
	f.BoolVarP(&o.FollowLink, "follow-link", "L", false, "copy what a symbolic link SRC_PATH points to")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not report what was copied")
	return cmd
}

// splitCopyArg splits CONTAINER:PATH; a path that starts with / or ., or
// has no colon, is the host's (Docker's rule, so ./a:b is a file).
func splitCopyArg(arg string) (ctr, path string) {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	ctr, path, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg
	}
	return ctr, path
}
