package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/spf13/cobra"
)

func registryFlags(cmd *cobra.Command, o *image.RegistryOptions) {
	tlsVerify := cmd.Flags().Bool("tls-verify", true, "verify the registry's TLS certificate (false also allows plain HTTP)")
	cmd.Flags().StringVar(&o.CertDir, "cert-dir", "/etc/containers/certs.d", "directory of per-registry CA certificates (DIR/HOST:PORT/*.crt)")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		o.Insecure = !*tlsVerify
		conf := os.Getenv("CONTAINERS_REGISTRIES_CONF")
		if conf == "" {
			conf = image.DefaultRegistriesConf
		}
		var err error
		o.InsecureRegistries, err = image.LoadInsecureRegistries(conf)
		return err
	}
}

func newPush(g *globals) *cobra.Command {
	var o image.PushOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [flags] IMAGE [DESTINATION]",
		Short: "Send an image to a registry",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dst := args[0]
			if len(args) == 2 {
				dst = args[1]
			}
			ref, err := image.ParseReference(dst)
			if err != nil {
				return err
			}
			s, err := g.store()
			if err != nil {
				return err
			}
			// On a terminal a line per layer sent with bytes and rate.
			var bars *pullProgress
			if !quiet {
				fmt.Fprintf(os.Stderr, "Pushing %s...\n", ref)
				if isTerminal(os.Stderr) {
					bars = newPullProgress(os.Stderr)
					o.Progress = bars.progress()
				}
			}
			d, err := s.Push(cmd.Context(), args[0], ref, o)
			if bars != nil {
				bars.close()
			}
			if err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(os.Stderr, "Pushed %s@%s\n", ref.Repository(), d)
			}
			return nil
		},
	}
	registryFlags(cmd, &o.RegistryOptions)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	return cmd
}

func newSave(g *globals) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [-o FILE] [--format docker-archive|oci-archive] IMAGE...",
		Short: "Write images to a tar archive",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.store()
			if err != nil {
				return err
			}
			var w io.Writer = os.Stdout
			if output != "" {
				tmp := output + ".tmp"
				f, err := os.Create(tmp)
				if err != nil {
					return fmt.Errorf("--output: %w", err)
				}
				defer os.Remove(tmp)
				bw := bufio.NewWriter(f)
				if err := s.Save(bw, args, format); err != nil {
					f.Close()
					return err
				}
				if err := bw.Flush(); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				return os.Rename(tmp, output)
			}
			if isTerminal(os.Stdout) {
				return fmt.Errorf("save: refusing to write an archive to a terminal; use -o FILE or redirect: %w", errdefs.ErrInvalidArgument)
			}
			return s.Save(w, args, format)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of standard output")
	cmd.Flags().StringVar(&format, "format", image.DockerArchive, "docker-archive or oci-archive")
	return cmd
}

func newLoad(g *globals) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [-i FILE]",
		Short: "Read images from a docker-archive or oci-archive",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if input == "" {
				return fmt.Errorf("load: give the archive with -i FILE: %w", errdefs.ErrInvalidArgument)
			}
			s, err := g.store()
			if err != nil {
				return err
			}
			imgs, err := s.Load(cmd.Context(), input, nil)
			if err != nil {
				return err
			}
			for _, img := range imgs {
				if quiet {
					fmt.Println(img.ID.Encoded())
					continue
				}
				names := img.Names
				if len(names) == 0 {
					names = []string{img.ID.String()}
				}
				fmt.Println("Loaded image: " + strings.Join(names, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "the archive to read")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only image IDs")
	return cmd
}

func newLogin(g *globals) *cobra.Command {
	var o image.RegistryOptions
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [-u USER] [-p PASSWORD | --password-stdin] REGISTRY",
		Short: "Store credentials for a registry (in Docker's config.json)",
		Args:  exactArg("registry"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if passwordStdin {
				data, err := io.ReadAll(os.Stdin)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(data), "\r\n")
			}
			if err := image.Login(cmd.Context(), args[0], user, password, o); err != nil {
				return err
			}
			fmt.Println("Login Succeeded!")
			return nil
		},
	}
	registryFlags(cmd, &o)
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

func newLogout(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Forget the credentials stored for a registry",
		Args:  exactArg("registry"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := image.Logout(args[0]); err != nil {
				return err
			}
			fmt.Printf("Removed login credentials for %s\n", args[0])
			return nil
		},
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
