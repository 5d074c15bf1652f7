package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/container/logfile"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/containerd/console"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newInspect(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [--format TEMPLATE] CONTAINER...",
		Short: "Show containers' details as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseInspectFormat(format)
			if err != nil {
				return err
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			var out []*container.Details
			for _, a := range args {
				d, err := e.Inspect(cmd.Context(), a)
				if err != nil {
					return err
				}
				out = append(out, d)
			}
			return printInspect(os.Stdout, f, out)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template applied to each container, e.g. {{.State.Pid}}; json")
	return cmd
}

// psRow is one line of `ps`, with Docker's --format field names.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Status, State, Ports, Names, Labels, Networks, Mounts string

	labels map[string]string
}

// Label is the value of one label, as Docker's {{.Label "KEY"}}.
func (r psRow) Label(key string) string { return r.labels[key] }

func newPs(g *globals) *cobra.Command {
	var all, quiet, noTrunc bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ps [flags]",
		Aliases: []string{"list"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			match, err := container.ParseFilter(filters)
			if err != nil {
				return err
			}
			if quiet {
				format = "{{.ID}}"
			}
			out, err := parseListFormat(format, psTable, psTitles)
			if err != nil {
				return err
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			cs, sts, err := e.List(cmd.Context())
			if err != nil {
				return err
			}
			// A status filter selects stopped containers too, as Docker's.
			all = all || match.Has("status")
			var rows []psRow
			for i, c := range cs {
				st := sts[i]
				if (!all && !st.Running()) || !match.Match(container.Entry{Container: c, State: st}) {
					continue
				}
				d, err := e.Inspect(cmd.Context(), c.ID)
				if err != nil {
					continue // removed meanwhile
				}
				rows = append(rows, newPsRow(c, st, d, noTrunc))
			}
			return printList(os.Stdout, out, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers, not only running ones")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "do not truncate IDs and commands")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter: status=, name=, id=, label=, ancestor=, exited=; a key repeated is either value")
	f.StringVar(&format, "format", "", `Go template per container, e.g. {{.Names}}; "table …" with titles; json`)
	return cmd
}

const psTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

// psTitles are the column titles of ps fields whose names differ.
var psTitles = map[string]string{"ID": "CONTAINER ID", "RunningFor": "CREATED", "CreatedAt": "CREATED AT"}

func newPsRow(c *container.Container, st *container.State, d *container.Details, noTrunc bool) psRow {
	cmd := strings.Join(append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...), " ")
	id := c.ID
	if !noTrunc {
		id = id[:12]
		if len(cmd) > 20 {
			cmd = cmd[:19] + "…"
		}
	}
	var nets []string
	for n := range d.NetworkSettings.Networks {
		nets = append(nets, n)
	}
	var mounts []string
	for _, m := range c.Host.Mounts {
		mounts = append(mounts, m.Source)
	}
	return psRow{
		ID: id, Image: c.Image, Command: strconv.Quote(cmd), CreatedAt: c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: ago(c.Created), Status: statusText(st), State: st.Status, Ports: d.PortsString(), Names: c.Name,
		Labels: joinLabels(c.Config.Labels), Networks: strings.Join(nets, ","), Mounts: strings.Join(mounts, ","),
		labels: c.Config.Labels,
	}
}

// statusText is Docker's STATUS column: "Up 3 minutes (healthy)",
// "Exited (0) 5 seconds ago", "Created", "Removal In Progress".
func statusText(st *container.State) string {
	switch st.Status {
	case container.Running, container.Paused:
		s := "Up " + since(st.StartedAt)
		if st.Status == container.Paused {
			s += " (Paused)"
		}
		if st.Health != nil {
			s += " (" + st.Health.Status + ")"
		}
		return s
	case container.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, since(st.FinishedAt))
	case container.Exited:
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, since(st.FinishedAt))
	case container.Created:
		return "Created"
	case container.Removing:
		return "Removal In Progress"
	}
	return strings.ToUpper(st.Status[:1]) + st.Status[1:]
}

// since is Docker's human duration: "Less than a second", "5 seconds",
// "About a minute", "3 minutes", "About an hour", "2 hours", "3 days".
func since(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Second:
		return "Less than a second"
	case d < time.Minute:
		return plural(int(d.Seconds()), "second")
	case d < 2*time.Minute:
		return "About a minute"
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute")
	case d < 2*time.Hour:
		return "About an hour"
	case d < 48*time.Hour:
		return plural(int(d.Hours()), "hour")
	}
	return plural(int(d.Hours()/24), "day")
}

func newLogs(g *globals) *cobra.Command {
	var follow, timestamps bool
	var tail, sinceArg, until string
	cmd := &cobra.Command{
		Use:   "logs [flags] CONTAINER",
		Short: "Show a container's output",
		Args:  exactArg("container"),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			c, _, err := e.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			o := logfile.ReadOptions{Tail: -1, Follow: follow}
			if tail != "" && tail != "all" {
				if o.Tail, err = strconv.Atoi(tail); err != nil || o.Tail < 0 {
					return fmt.Errorf("--tail %q: use a number of lines or all: %w", tail, errdefs.ErrInvalidArgument)
				}
			}
			if o.Since, err = parseTime("--since", sinceArg); err != nil {
				return err
			}
			if o.Until, err = parseTime("--until", until); err != nil {
				return err
			}
			o.Stop = func() bool {
				_, st, err := e.Get(cmd.Context(), c.ID)
				return err != nil || !st.Running()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), unix.SIGINT, unix.SIGTERM)
			defer stop()
			err = e.Logs(ctx, c.ID, o, func(en logfile.Entry) error {
				w := os.Stdout
				if en.Stream == "stderr" {
					w = os.Stderr
				}
				if timestamps {
					fmt.Fprint(w, en.Time.Format(time.RFC3339Nano)+" ")
				}
				_, err := w.Write(en.Line)
				return err
			})
			if errors.Is(err, context.Canceled) {
				return nil // interrupted while following: that is how -f ends
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new output until the container stops")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "show each line's time")
	f.StringVarP(&tail, "tail", "n", "all", "show only the last N lines")
	f.StringVar(&sinceArg, "since", "", "only lines since a time (RFC 3339, Unix seconds) or a duration ago (10m)")
	f.StringVar(&until, "until", "", "only lines before a time or a duration ago")
	return cmd
}

// parseTime reads Docker's --since/--until: a duration before now, a
// Unix time or an RFC 3339 time.
func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(f*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: use a duration (10m), Unix seconds or an RFC 3339 time: %w", flag, s, errdefs.ErrInvalidArgument)
}

func newExec(g *globals) *cobra.Command {
	var interactive, tty, detach bool
	var env []string
	var user, workdir string
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			o := container.ExecOptions{Args: args[1:], User: user, Workdir: workdir, Tty: tty, Detach: detach,
				Stdout: os.Stdout, Stderr: os.Stderr, InProcess: true}
			for _, kv := range env {
				v, ok, err := container.ParseEnv(kv)
				if err != nil {
					return err
				}
				if ok {
					o.Env = append(o.Env, v)
				}
			}
			if interactive {
				o.Stdin = os.Stdin
			}
			if tty {
				o.Terminal = func(master *os.File) { relayTerminal(master, interactive) }
			}
			code, err := e.Exec(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			if code != 0 {
				return &errdefs.StatusError{Status: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&interactive, "interactive", "i", false, "keep stdin open")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	f.BoolVarP(&detach, "detach", "d", false, "run in the background")
	f.StringArrayVarP(&env, "env", "e", nil, "set an environment variable")
	f.StringVarP(&user, "user", "u", "", "user[:group] to run as")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory")
	return cmd
}

// relayTerminal connects this command's terminal to master until the
// process in the container closes its end.
func relayTerminal(master *os.File, interactive bool) {
	if cur, err := console.ConsoleFromFile(os.Stdin); err == nil {
		if sz, err := cur.Size(); err == nil {
			unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
		}
		if interactive && cur.SetRaw() == nil {
			defer cur.Reset()
		}
	}
	defer rawOutput(os.Stdout)()
	if interactive {
		go io.Copy(master, os.Stdin)
	}
	io.Copy(os.Stdout, master)
}
