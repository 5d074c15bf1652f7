package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

func newPull(g *globals) *cobra.Command {
	var platform string
	var quiet bool
	var ro image.RegistryOptions
	cmd := &cobra.Command{
		Use:   "pull [flags] REF",
		Short: "Fetch an image from a registry",
		Args:  exactArg("image reference"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := image.ParseReference(args[0])
			if err != nil {
				return err
			}
			opts := image.PullOptions{RegistryOptions: ro}
			if platform != "" {
				if opts.Platform, err = image.ParsePlatform(platform); err != nil {
					return err
				}
			}
			s, err := g.store()
			if err != nil {
				return err
			}
			// On a terminal a line per layer with bytes and rate; otherwise
			// one quiet line when done.
			start := time.Now()
			var bars *pullProgress
			if !quiet && isTerminal(os.Stderr) {
				fmt.Fprintf(os.Stderr, "Trying to pull %s...\n", ref)
				bars = newPullProgress(os.Stderr)
				opts.Progress = bars.progress()
			}
			img, err := s.Pull(cmd.Context(), ref, opts)
			if bars != nil {
				bars.close()
			}
			if err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(os.Stderr, "Pulled %s (%d layers, %s) in %.1fs\n", ref, len(img.Layers), humanSize(img.Size), time.Since(start).Seconds())
			}
			fmt.Println(img.ID.Encoded())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&platform, "platform", "", "OS/ARCH[/VARIANT] to select from a multi-platform image")
	registryFlags(cmd, &ro)
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the image ID")
	return cmd
}

// imageRow is one line of `images`, with Docker's --format names.
type imageRow struct {
	Repository   string
	Tag          string
	Digest       string
	ID           string
	CreatedSince string
	CreatedAt    string
	Size         string
}

var imageTitles = map[string]string{"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT"}

func newImages(g *globals) *cobra.Command {
	var quiet, digests, noTrunc bool
	var filters []string
	var format string
	def := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	cmd := &cobra.Command{
		Use:     "images [flags] [REPOSITORY[:TAG]]",
		Aliases: []string{"ls"},
		Short:   "List images",
		Args:    argsBetween(0, 1, "[REPOSITORY[:TAG]]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case quiet:
				format = "{{.ID}}"
			case digests:
				def = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			out, err := parseListFormat(format, def, imageTitles)
			if err != nil {
				return err
			}
			s, err := g.store()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				// As Docker's: one more reference filter, which any may match.
				filters = append(filters, "reference="+args[0])
			}
			match, err := s.ParseFilter(filters)
			if err != nil {
				return err
			}
			imgs, err := s.List()
			if err != nil {
				return err
			}
			var rows []imageRow
			for _, img := range imgs {
				id := img.ID.Encoded()
				if !noTrunc {
					id = id[:12]
				}
				names := img.Names
				if len(names) == 0 {
					names = []string{""}
				}
				for _, n := range names {
					if !match.Match(image.Named{Image: img, Name: n}) {
						continue
					}
					r := imageRow{ID: id, Digest: "<none>", CreatedSince: ago(img.Created),
						CreatedAt: img.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), Size: humanSize(img.Size)}
					r.Repository, r.Tag = "<none>", "<none>"
					if n != "" {
						r.Repository, r.Tag = splitName(n)
					}
					if img.Manifest != "" {
						r.Digest = img.Manifest.String()
					}
					rows = append(rows, r)
					if quiet {
						break // one ID per image
					}
				}
			}
			return printList(os.Stdout, out, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "print only image IDs")
	f.BoolVar(&digests, "digests", false, "show manifest digests")
	f.BoolVar(&noTrunc, "no-trunc", false, "show full image IDs")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter: dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE; a key repeated is either value")
	f.StringVar(&format, "format", "", `Go template per image, e.g. {{.Repository}}:{{.Tag}}; "table …" with titles; json`)
	return cmd
}

func newTag(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image another name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.store()
			if err != nil {
				return err
			}
			return s.Tag(args[0], args[1])
		},
	}
}

func newRmi(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [-f] IMAGE...",
		Short: "Remove images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.store()
			if err != nil {
				return err
			}
			var firstErr error
			for _, a := range args {
				untagged, deleted, err := s.Remove(a, force)
				if err != nil {
					fmt.Fprintln(os.Stderr, "berth: "+err.Error())
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				for _, u := range untagged {
					fmt.Println("Untagged: " + u)
				}
				if deleted != "" {
					fmt.Println("Deleted: " + deleted.String())
				}
			}
			if firstErr != nil {
				return &errdefs.StatusError{Status: errdefs.ExitCode(firstErr)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the image even if it has other names")
	return cmd
}

func newImport(g *globals) *cobra.Command {
	var changes []string
	var message string
	cmd := &cobra.Command{
		Use:   "import [-c INSTRUCTION]... [-m MESSAGE] TARBALL|- REF",
		Short: "Make a one-layer image from a root file system tarball (- reads it from stdin)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := image.ParseReference(args[1])
			if err != nil {
				return err
			}
			if ref.Digest() != "" {
				return fmt.Errorf("import %s: an imported image gets a name and tag; its digest is its content's, not one to choose: %w", args[1], errdefs.ErrInvalidArgument)
			}
			s, err := g.store()
			if err != nil {
				return err
			}
			opts := []image.ImportOption{image.WithChanges(changes...), image.WithMessage(message)}
			var img *image.Image
			if args[0] == "-" {
				img, err = s.ImportReader(cmd.Context(), os.Stdin, ref, nil, opts...)
			} else {
				img, err = s.Import(cmd.Context(), args[0], ref, nil, opts...)
			}
			if err != nil {
				return err
			}
			fmt.Println(img.ID.Encoded())
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil,
		`apply a Dockerfile instruction to the image's configuration (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR); repeatable`)
	cmd.Flags().StringVarP(&message, "message", "m", "", "comment for the imported layer's history")
	return cmd
}

func newImageCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images"}
	ls := newImages(g)
	ls.Use, ls.Aliases = "ls", []string{"list"}
	rm := newRmi(g)
	rm.Use = "rm [-f] IMAGE..."
	cmd.AddCommand(ls, rm, newPull(g), newPush(g), newTag(g), newImport(g), newSave(g), newLoad(g),
		newImageInspect(g), newImagePrune(g))
	return cmd
}

func newImagePrune(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "prune [-a]",
		Short: "Remove images without a name (with -a, all images)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.store()
			if err != nil {
				return err
			}
			ids, err := s.Prune(all)
			for _, id := range ids {
				fmt.Println(id.Encoded())
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all images, not only dangling ones")
	return cmd
}

// inspectImage is Docker's shape of `image inspect`.
type inspectImage struct {
	ID           string         `json:"Id"`
	RepoTags     []string       `json:"RepoTags"`
	RepoDigests  []string       `json:"RepoDigests"`
	Created      time.Time      `json:"Created"`
	Architecture string         `json:"Architecture"`
	Os           string         `json:"Os"`
	Variant      string         `json:"Variant,omitempty"`
	Size         int64          `json:"Size"`
	Comment      string         `json:"Comment"`
	Config       v1.Config      `json:"Config"`
	RootFS       map[string]any `json:"RootFS"`
	Digest       string         `json:"Digest"`
}

func newImageInspect(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [--format TEMPLATE] IMAGE...",
		Short: "Show images' details as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseInspectFormat(format)
			if err != nil {
				return err
			}
			s, err := g.store()
			if err != nil {
				return err
			}
			var out []inspectImage
			for _, a := range args {
				img, err := s.Get(a)
				if err != nil {
					return err
				}
				raw, err := s.Config(img)
				if err != nil {
					return err
				}
				var cfg v1.ConfigFile
				if err := json.Unmarshal(raw, &cfg); err != nil {
					return fmt.Errorf("image %s: config: %w", img.ID, err)
				}
				var comment string
				if n := len(cfg.History); n > 0 {
					comment = cfg.History[n-1].Comment
				}
				var diffIDs []string
				for _, l := range img.Layers {
					diffIDs = append(diffIDs, l.DiffID.String())
				}
				out = append(out, inspectImage{
					ID: img.ID.String(), RepoTags: nonNil(img.Names), RepoDigests: nonNil(img.RepoDigests),
					Created: img.Created, Architecture: img.Arch, Os: img.OS, Variant: img.Variant,
					Size: img.Size, Comment: comment, Config: cfg.Config, Digest: img.Manifest.String(),
					RootFS: map[string]any{"Type": "layers", "Layers": diffIDs},
				})
			}
			return printInspect(os.Stdout, f, out)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template applied to each image, e.g. {{.Id}}; json")
	return cmd
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func exactArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return fmt.Errorf("%s: expects one %s, got %d arguments: %w", cmd.Name(), what, len(args), errdefs.ErrInvalidArgument)
		}
		return nil
	}
}

// splitName splits docker.io/library/nginx:latest into repository and tag.
func splitName(n string) (string, string) {
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		return n[:i], n[i+1:]
	}
	return n, "<none>"
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d.Hours()), "hour") + " ago"
	case d < 14*24*time.Hour:
		return plural(int(d.Hours()/24), "day") + " ago"
	case d < 60*24*time.Hour:
		return plural(int(d.Hours()/24/7), "week") + " ago"
	case d < 730*24*time.Hour:
		return plural(int(d.Hours()/24/30), "month") + " ago"
	}
	return plural(int(d.Hours()/24/365), "year") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// humanSize prints bytes in decimal units, as Docker and Podman do.
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.3g %s", f, units[i])
}
