package cli

import (
	"os"
	"os/signal"

	"github.com/berth-dev/berth/internal/container"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newEvents(g *globals) *cobra.Command {
	var o container.EventsOptions
	var since, until, format string
	cmd := &cobra.Command{
		Use:   "events [--since T] [--until T] [--filter KEY=VALUE] [--format T]",
		Short: "Show container events as they happen (and past ones with --since)",
		Long: `Show container events as they happen, until interrupted or until --until.
With --since, past events from that time on come first. Events are kept
in ROOT/events.log (about the last 4 MB of them, and the 4 MB before).

Filters: container=NAME|ID (or a prefix of either), event=ACTION (create,
start, die, stop, kill, destroy, rename, oom…), type=container,
image=IMAGE, label=KEY[=VALUE], label!=KEY[=VALUE]. Values of one key are
alternatives; different keys, and all label filters, must hold.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Since, err = parseTime("--since", since); err != nil {
				return err
			}
			if o.Until, err = parseTime("--until", until); err != nil {
				return err
			}
			// The default is Docker's line, the event's String.
			out, err := parseListFormat(format, "{{.}}", nil)
			if err != nil {
				return err
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), unix.SIGINT, unix.SIGTERM)
			defer stop()
			out.printTitle(os.Stdout)
			return e.Events(ctx, o, func(ev *container.Event) error { return out.printItem(os.Stdout, ev) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "show events since a time (RFC 3339, Unix seconds) or a duration ago (10m)")
	f.StringVar(&until, "until", "", "stop at a time or a duration ago")
	f.StringArrayVarP(&o.Filters, "filter", "f", nil, "filter: container=, event=, type=, image=, label=; a key repeated is either value")
	f.StringVar(&format, "format", "", "Go template per event, e.g. {{.Action}} {{.Actor.Attributes.name}}; json")
	return cmd
}
