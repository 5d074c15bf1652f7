package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/containerd/console"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// statsRow is one line of `stats`, with Docker's --format field names.
type statsRow struct {
	Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

var statsTitles = map[string]string{"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

func newStats(g *globals) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [flags] [CONTAINER...]",
		Short: "Show containers' CPU, memory, network, block I/O and process counts",
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := parseListFormat(format, statsTable, statsTitles)
			if err != nil {
				return err
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			// Named containers are shown even when stopped; without names,
			// the running ones (all with -a), looked for at each refresh.
			refs := func() ([]string, error) {
				if len(args) > 0 {
					return args, nil
				}
				cs, sts, err := e.List(cmd.Context())
				var ids []string
				for i, c := range cs {
					if all || sts[i].Running() {
						ids = append(ids, c.ID)
					}
				}
				return ids, err
			}
			sample := func(refs []string) (map[string]*container.Stats, error) {
				out := map[string]*container.Stats{}
				for _, r := range refs {
					s, err := e.Stats(cmd.Context(), r)
					if err != nil {
						if len(args) > 0 {
							return nil, err
						}
						continue // removed meanwhile
					}
					out[r] = s
				}
				return out, nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), unix.SIGINT, unix.SIGTERM)
			defer stop()
			_, notTerm := console.ConsoleFromFile(os.Stdout)
			cur, err := refs()
			if err != nil {
				return err
			}
			prev, err := sample(cur)
			if err != nil {
				return err
			}
			for {
				// Docker's CPU % is over an interval: two samples a second
				// apart (nothing to wait for if nothing runs).
				running := false
				for _, s := range prev {
					running = running || s.Running
				}
				if running || !noStream {
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(time.Second):
					}
				}
				if cur, err = refs(); err != nil {
					return err
				}
				now, err := sample(cur)
				if err != nil {
					return err
				}
				var rows []statsRow
				for _, r := range cur {
					if s := now[r]; s != nil {
						rows = append(rows, newStatsRow(r, prev[r], s, noTrunc))
					}
				}
				if !noStream && notTerm == nil {
					fmt.Print("\033[2J\033[H")
				}
				if err := printList(os.Stdout, out, rows); err != nil {
					return err
				}
				if noStream {
					return nil
				}
				prev = now
			}
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers, not only running ones")
	f.BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate IDs")
	f.StringVar(&format, "format", "", `Go template per container, e.g. {{.MemUsage}}; "table …" with titles; json`)
	return cmd
}

func newStatsRow(ref string, prev, s *container.Stats, noTrunc bool) statsRow {
	id := s.ID
	if !noTrunc && len(id) > 12 {
		id = id[:12]
	}
	return statsRow{
		Container: ref, ID: id, Name: s.Name,
		CPUPerc:  fmt.Sprintf("%.2f%%", container.CPUPercent(prev, s)),
		MemUsage: binarySize(s.MemoryUsage) + " / " + binarySize(s.MemoryLimit),
		MemPerc:  fmt.Sprintf("%.2f%%", s.MemoryPercent()),
		NetIO:    decimalSize(s.NetRx, 3) + " / " + decimalSize(s.NetTx, 3),
		BlockIO:  decimalSize(s.BlockRead, 3) + " / " + decimalSize(s.BlockWrite, 3),
		PIDs:     fmt.Sprint(s.Pids),
	}
}

// binarySize is Docker's memory size: 1.5MiB, 64MiB.
func binarySize(n uint64) string {
	return scaledSize(float64(n), 1024, "%.4g%s", []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"})
}

// decimalSize is Docker's other sizes: 1.23kB, 45MB.
func decimalSize(n uint64, precision int) string {
	return scaledSize(float64(n), 1000, fmt.Sprintf("%%.%dg%%s", precision), []string{"B", "kB", "MB", "GB", "TB", "PB"})
}

func scaledSize(size, base float64, format string, units []string) string {
	i := 0
	for size >= base && i < len(units)-1 {
		size /= base
		i++
	}
	return fmt.Sprintf(format, size, units[i])
}

func newTop(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Show the processes of a container (as ps -ef, or with ps's options)",
		Args:  argsBetween(1, 1<<20, "CONTAINER [ps OPTIONS]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			titles, procs, err := e.Top(cmd.Context(), args[0], args[1:])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(titles, "\t"))
			for _, p := range procs {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().SetInterspersed(false) // ps's options after the container are ps's
	return cmd
}
