package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newBuild(g *globals) *cobra.Command {
	var (
		o                       build.Options
		file, platform          string
		tags, buildArgs, labels []string
		quiet                   bool
	)
	cmd := &cobra.Command{
		Use:   "build [flags] CONTEXT",
		Short: "Build an image from a Containerfile",
		Args:  exactArg("build context directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ContextDir = args[0]
			var err error
			if o.File, o.Source, err = readContainerfile(file, args[0]); err != nil {
				return err
			}
			for _, t := range tags {
				ref, err := image.ParseReference(t)
				if err != nil {
					return fmt.Errorf("-t %s: %w", t, err)
				}
				o.Tags = append(o.Tags, ref.String())
			}
			if o.BuildArgs, err = buildArgValues(buildArgs); err != nil {
				return err
			}
			if o.Labels, err = keyValues("--label", labels); err != nil {
				return err
			}
			if platform != "" {
				if o.Platform, err = image.ParsePlatform(platform); err != nil {
					return err
				}
			}
			if !quiet {
				o.Out = os.Stdout
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			o.WorkDir = filepath.Join(g.root, "build")
			// An interrupt stops the build cleanly: the running step's
			// container is killed and removed, its mounts undone.
			ctx, stop := signal.NotifyContext(cmd.Context(), unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
			defer stop()
			img, err := build.Build(ctx, e, o)
			if err != nil && ctx.Err() != nil {
				return fmt.Errorf("build interrupted: nothing was stored but the cache of the finished steps")
			}
			if err != nil {
				return err
			}
			if !quiet {
				fmt.Printf("--> %s\n", img.ID.Encoded()[:12])
			}
			fmt.Println(img.ID.Encoded())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&tags, "tag", "t", nil, "name the image (repeatable)")
	f.StringVarP(&file, "file", "f", "", "the Containerfile (default CONTEXT/Containerfile or CONTEXT/Dockerfile; - reads it from stdin)")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "set a build argument, KEY=VALUE or KEY (from the environment)")
	f.StringVar(&o.Target, "target", "", "build up to this stage")
	f.StringVar(&platform, "platform", "", "OS/ARCH[/VARIANT] of the image (RUN needs this machine's)")
	f.BoolVar(&o.NoCache, "no-cache", false, "do not use the build cache")
	f.BoolVar(&o.Pull, "pull", false, "pull FROM images even if they are here")
	f.StringArrayVar(&labels, "label", nil, "set a label on the image, KEY=VALUE")
	f.StringVar(&o.Network, "network", "bridge", "network of RUN: bridge, none or host")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the image ID")
	registryFlags(cmd, &o.Registry)
	return cmd
}

// readContainerfile reads the file -f names, or the context's
// Containerfile or Dockerfile, and returns its name for messages.
func readContainerfile(file, contextDir string) (string, []byte, error) {
	if file == "-" {
		data, err := io.ReadAll(os.Stdin)
		return "Containerfile", data, err
	}
	names := []string{file}
	if file == "" {
		names = []string{filepath.Join(contextDir, "Containerfile"), filepath.Join(contextDir, "Dockerfile")}
	}
	for _, n := range names {
		data, err := os.ReadFile(n)
		if errors.Is(err, os.ErrNotExist) && file == "" {
			continue
		}
		if errors.Is(err, os.ErrNotExist) {
			return "", nil, fmt.Errorf("%s does not exist: %w", n, errdefs.ErrNotFound)
		}
		if err != nil {
			return "", nil, err
		}
		return n, data, nil
	}
	return "", nil, fmt.Errorf("%s has no Containerfile or Dockerfile: name one with -f: %w", contextDir, errdefs.ErrNotFound)
}

// buildArgValues reads --build-arg KEY=VALUE flags; a bare KEY takes its
// value from the environment (and is left out if unset), as with docker
// build.
func buildArgValues(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: want KEY=VALUE: %w", kv, errdefs.ErrInvalidArgument)
		}
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		out[k] = v
	}
	return out, nil
}
