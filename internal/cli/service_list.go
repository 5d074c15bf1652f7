package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/server"
	"github.com/berth-dev/berth/internal/container/logfile"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filter"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// serviceRow is a line of `service ls`.
type serviceRow struct {
	ID, Name, Mode, Replicas, Image, Ports string
}

func newServiceLs(g *globals) *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "ls [-q] [--filter K=V]… [--format F]",
		Short: "List services",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quiet {
				format = "{{.ID}}"
			}
			f, err := parseListFormat(format, "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}", nil)
			if err != nil {
				return err
			}
			match, err := serviceFilter(filters)
			if err != nil {
				return err
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			list, err := c.Services(cmd.Context())
			if err != nil {
				return err
			}
			list = slices.DeleteFunc(list, func(s server.ServiceSummary) bool { return !match.Match(s.Service) })
			rows := make([]serviceRow, len(list))
			for i, s := range list {
				var ports []string
				for _, p := range s.Service.Spec.Ports {
					ports = append(ports, fmt.Sprintf("*:%d->%d/%s", p.PublishedPort, p.TargetPort, p.Protocol))
				}
				rows[i] = serviceRow{ID: s.Service.ID[:12], Name: s.Service.Name, Mode: "replicated",
					Replicas: fmt.Sprintf("%d/%d", s.Ready, s.Service.Spec.DesiredReplicas()),
					Image:    s.Service.Spec.Template.Image, Ports: strings.Join(ports, ", ")}
			}
			return printList(os.Stdout, f, rows)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "show only IDs")
	cmd.Flags().StringVar(&format, "format", "", "table (default), json or a Go template")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "show only services that match: id=PREFIX, name=PREFIX, mode=replicated, label=K[=V]")
	return cmd
}

// serviceFilter compiles `service ls --filter` arguments, with Docker's
// keys: id and name match a prefix, mode is replicated (the one mode
// today), label the service's own labels.
func serviceFilter(args []string) (*filter.Filter[api.Service], error) {
	prefix := func(get func(api.Service) string) func(string) (func(api.Service) bool, error) {
		return func(v string) (func(api.Service) bool, error) {
			return func(s api.Service) bool { return strings.HasPrefix(get(s), v) }, nil
		}
	}
	return filter.New(args,
		filter.Key[api.Service]{Name: "id", Value: prefix(func(s api.Service) string { return s.ID })},
		filter.Key[api.Service]{Name: "name", Value: prefix(func(s api.Service) string { return s.Name })},
		filter.Key[api.Service]{Name: "mode", Value: func(v string) (func(api.Service) bool, error) {
			if v != "replicated" {
				return nil, fmt.Errorf("mode is replicated (the one mode there is): %w", errdefs.ErrInvalidArgument)
			}
			return func(api.Service) bool { return true }, nil
		}},
		filter.Labels(func(s api.Service) map[string]string { return s.Labels }))
}

// taskRow is a line of `service ps`.
type taskRow struct {
	ID, Name, Image, Node, DesiredState, CurrentState, Error string
}

func newServicePs(g *globals) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "ps [-q] [--no-trunc] [--format F] SERVICE",
		Short: "List a service's replicas and their history",
		Args:  exactArg("service"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if quiet {
				format = "{{.ID}}"
			}
			f, err := parseListFormat(format, "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}",
				map[string]string{"DesiredState": "DESIRED STATE", "CurrentState": "CURRENT STATE"})
			if err != nil {
				return err
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			tasks, err := c.Tasks(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			nodes, err := c.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			names := map[string]string{}
			for _, n := range nodes {
				names[n.ID] = n.Name
			}
			rows := make([]taskRow, len(tasks))
			for i, t := range tasks {
				id, msg := t.ID, t.Status.Message
				if !noTrunc {
					id = id[:min(12, len(id))]
				}
				name := fmt.Sprintf("%s.%d", t.ServiceName, t.Slot)
				if i > 0 && tasks[i-1].Slot == t.Slot {
					name = ` \_ ` + name // history of the slot, as Docker shows it
				}
				state := string(t.Status.State)
				if state != "" {
					state = strings.ToUpper(state[:1]) + state[1:] + " " + units.HumanDuration(time.Since(t.Status.Timestamp)) + " ago"
				}
				if t.Status.State != api.TaskFailed && t.Status.State != api.TaskRejected && t.Status.State != api.TaskPending {
					msg = ""
				}
				rows[i] = taskRow{ID: id, Name: name, Image: t.Template.Image, Node: names[t.NodeID],
					DesiredState: strings.ToUpper(string(t.DesiredState)[:1]) + string(t.DesiredState)[1:], CurrentState: state, Error: msg}
			}
			return printList(os.Stdout, f, rows)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "show only task IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate IDs")
	cmd.Flags().StringVar(&format, "format", "", "table (default), json or a Go template")
	return cmd
}

func newServiceInspect(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [--format F] SERVICE…",
		Short: "Show services as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseInspectFormat(format)
			if err != nil {
				return err
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			var out []api.Service
			for _, name := range args {
				svc, err := c.Service(cmd.Context(), name)
				if err != nil {
					return err
				}
				out = append(out, svc)
			}
			return printInspect(os.Stdout, f, out)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "json or a Go template over each service's JSON")
	return cmd
}

func newServiceLogs(g *globals) *cobra.Command {
	var follow bool
	var tail string
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] SERVICE",
		Short: "Show the output of a service's replicas, each line prefixed with its replica",
		Args:  exactArg("service"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := logfile.ReadOptions{Tail: -1, Follow: follow}
			if tail != "" && tail != "all" {
				n, err := strconv.Atoi(tail)
				if err != nil || n < 0 {
					return fmt.Errorf("--tail %q: use a number of lines or all: %w", tail, errdefs.ErrInvalidArgument)
				}
				o.Tail = n
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := c.Service(cmd.Context(), args[0]); err != nil {
				return err
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			all, _, err := e.List(cmd.Context())
			if err != nil {
				return err
			}
			host, _ := os.Hostname()
			ctx, stop := signal.NotifyContext(cmd.Context(), unix.SIGINT, unix.SIGTERM)
			defer stop()
			var mu sync.Mutex
			var wg sync.WaitGroup
			errs := make(chan error, len(all))
			for _, ct := range all {
				l := ct.Config.Labels
				if l["berth.service.name"] != args[0] {
					continue
				}
				prefix := fmt.Sprintf("%s.%s.%s@%s    | ", args[0], l["berth.task.slot"], l["berth.task.id"][:min(12, len(l["berth.task.id"]))], host)
				co := o
				id := ct.ID
				co.Stop = func() bool {
					_, st, err := e.Get(ctx, id)
					return err != nil || !st.Running()
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- e.Logs(ctx, id, co, func(en logfile.Entry) error {
						mu.Lock()
						defer mu.Unlock()
						w := os.Stdout
						if en.Stream == "stderr" {
							w = os.Stderr
						}
						_, err := fmt.Fprint(w, prefix+string(en.Line))
						return err
					})
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil && !errors.Is(err, context.Canceled) {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	cmd.Flags().StringVarP(&tail, "tail", "n", "all", "show only the last N lines of each replica")
	return cmd
}
