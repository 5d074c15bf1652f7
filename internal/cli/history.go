package cli

import (
	"bytes"
	"fmt"
	"os"
	"slices"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

// historyRow is one line of `berth history`, with Docker's --format names.
type historyRow struct {
	ID           string
	CreatedSince string
	CreatedAt    string
	CreatedBy    string
	Size         string
	Comment      string
}

const historyTable = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"

var historyTitles = map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}

func newHistory(g *globals) *cobra.Command {
	var noTrunc, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "history [flags] IMAGE",
		Short: "Show how an image was made, newest step first",
		Args:  exactArg("image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if quiet {
				format = "{{.ID}}"
			}
			out, err := parseListFormat(format, historyTable, historyTitles)
			if err != nil {
				return err
			}
			s, err := g.store()
			if err != nil {
				return err
			}
			img, err := s.Get(args[0])
			if err != nil {
				return err
			}
			raw, err := s.Config(img)
			if err != nil {
				return err
			}
			cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
			if err != nil {
				return fmt.Errorf("image %s: config: %v: %w", args[0], err, errdefs.ErrInvalidArgument)
			}
			// Each history entry that made a layer takes the next layer, in
			// order; its size is the layer's unpacked content.
			var rows []historyRow
			layer := 0
			for _, h := range cfg.History {
				r := historyRow{ID: "<missing>", CreatedSince: ago(h.Created.Time), CreatedBy: h.CreatedBy, Size: "0B", Comment: h.Comment}
				if !h.Created.IsZero() {
					r.CreatedAt = h.Created.Time.Format("2006-01-02T15:04:05Z07:00")
				}
				if !h.EmptyLayer && layer < len(img.Layers) {
					if info, err := s.Snapshots().Info(img.Layers[layer].ChainID); err == nil {
						r.Size = decimalSize(uint64(info.Size), 3)
					}
					layer++
				}
				if !noTrunc && len(r.CreatedBy) > 45 {
					r.CreatedBy = r.CreatedBy[:44] + "…"
				}
				rows = append(rows, r)
			}
			slices.Reverse(rows)
			if len(rows) > 0 {
				rows[0].ID = img.ID.Encoded()
				if !noTrunc {
					rows[0].ID = rows[0].ID[:12]
				}
			}
			return printList(os.Stdout, out, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&noTrunc, "no-trunc", false, "do not shorten the output")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the image IDs")
	f.StringVar(&format, "format", "", `Go template per step, e.g. {{.CreatedBy}}; "table …" with titles; json`)
	return cmd
}
