package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/server"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newServiceCommand is berth's `service` command group (Docker's verbs).
// Every command talks to the root's control plane, starting it when none
// answers.
func newServiceCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Manage services: replicas kept running, rolled out and rolled back"}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	})
	cmd.AddCommand(newServiceCreate(g), newServiceUpdate(g), newServiceLs(g), newServicePs(g), newServiceInspect(g),
		newServiceLogs(g), newServiceScale(g), newServiceAutoscale(g), newServiceRollback(g), newServiceRm(g))
	return cmd
}

// startTimeout is how long a command waits for the control plane it started.
const startTimeout = 5 * time.Second

// client returns a client of the root's control plane, started in the
// background (its own session, output to ROOT/serve.log) when none answers.
// Two commands that start one at once start one: the lock of `berth serve`
// decides, and the loser exits quietly.
func (g *globals) client(ctx context.Context) (*server.Client, error) {
	r, err := g.open()
	if err != nil {
		return nil, err
	}
	c := server.NewClient(filepath.Join(r.RunDir, server.SocketName))
	if _, err := c.Ping(ctx); err == nil {
		return c, nil
	}
	logPath := filepath.Join(r.Dir, "serve.log")
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("control plane log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(r.Berth[0], append(r.Berth[1:], "serve", "--if-not-running")...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	go cmd.Wait() // reap it if it exits while we run (it lost the race, or failed)
	deadline := time.Now().Add(startTimeout)
	for {
		if _, err := c.Ping(ctx); err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("the control plane did not start within %v; see %s: %w", startTimeout, logPath, errdefs.ErrUnavailable)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newServiceCreate(g *globals) *cobra.Command {
	var s serviceFlags
	var name string
	cmd := &cobra.Command{
		Use:   "create [flags] IMAGE [COMMAND [ARG…]]",
		Short: "Create a service",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc := api.Service{Name: name, Spec: api.ServiceSpec{Template: api.TaskTemplate{Image: args[0], Args: args[1:]}}}
			if name == "" {
				svc.Name = strings.ToLower(server.NewID()[:10])
				svc.Name = "s" + svc.Name[1:] // a DNS label starts with a letter
			}
			if err := s.apply(cmd, &svc); err != nil {
				return err
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.Create(cmd.Context(), svc)
			if err != nil {
				return err
			}
			fmt.Println(out.ID)
			if s.detach {
				return nil
			}
			return converge(cmd.Context(), c, out, false)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVar(&name, "name", "", "service name (default: generated)")
	s.register(cmd.Flags())
	return cmd
}

func newServiceUpdate(g *globals) *cobra.Command {
	var s serviceFlags
	var image string
	var envAdd, envRm, labelAdd, labelRm, args []string
	cmd := &cobra.Command{
		Use:   "update [flags] SERVICE",
		Short: "Update a service (a new revision when the template changes)",
		Args:  exactArg("service"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			svc, err := c.Service(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if err := s.apply(cmd, &svc); err != nil {
				return err
			}
			t := &svc.Spec.Template
			if cmd.Flags().Changed("image") {
				t.Image = image
			}
			if cmd.Flags().Changed("args") {
				t.Args = args
			}
			t.Env = editList(t.Env, envAdd, envRm)
			labels := editList(joinMap(svc.Labels), labelAdd, labelRm)
			if svc.Labels, err = keyValues("--label-add", labels); err != nil {
				return err
			}
			out, err := c.Update(cmd.Context(), svc)
			if err != nil {
				return err
			}
			fmt.Println(out.Name)
			if cmd.Flags().Changed("replicas") {
				warnAutoscaled(out)
			}
			if s.detach || out.Generation == svc.Generation {
				return nil
			}
			return converge(cmd.Context(), c, out, false)
		},
	}
	f := cmd.Flags()
	s.register(f)
	hideDefaults(f)
	f.StringVar(&image, "image", "", "image of the replicas")
	f.StringArrayVar(&args, "args", nil, "the replicas' command arguments")
	f.StringArrayVar(&envAdd, "env-add", nil, "add or replace an environment variable KEY=VALUE")
	f.StringArrayVar(&envRm, "env-rm", nil, "remove an environment variable KEY")
	f.StringArrayVar(&labelAdd, "label-add", nil, "add or replace a service label KEY=VALUE")
	f.StringArrayVar(&labelRm, "label-rm", nil, "remove a service label KEY")
	return cmd
}

// hideDefaults keeps help from showing create's defaults as update's: an
// update changes only what its flags give.
func hideDefaults(f *pflag.FlagSet) {
	f.VisitAll(func(fl *pflag.Flag) {
		switch fl.Value.Type() {
		case "int", "float64", "duration":
			fl.DefValue = "0"
		case "bool":
			fl.DefValue = "false"
		case "string":
			fl.DefValue = ""
		default:
			fl.DefValue = "[]"
		}
	})
}

func joinMap(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func newServiceScale(g *globals) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS…",
		Short: "Set the number of replicas of services",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			want := map[string]int{}
			for _, a := range args {
				name, n, ok := strings.Cut(a, "=")
				k, err := strconv.Atoi(n)
				if !ok || err != nil || k < 0 {
					return fmt.Errorf("scale %q: use SERVICE=REPLICAS with 0 or more replicas: %w", a, errdefs.ErrInvalidArgument)
				}
				want[name] = k
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			for _, a := range args {
				name, _, _ := strings.Cut(a, "=")
				out, err := c.Scale(cmd.Context(), name, want[name])
				if err != nil {
					return err
				}
				fmt.Printf("%s scaled to %d\n", name, want[name])
				warnAutoscaled(out)
				if !detach {
					if err := converge(cmd.Context(), c, out, false); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return at once instead of waiting until the services converged")
	return cmd
}

func newServiceRollback(g *globals) *cobra.Command {
	var detach bool
	var to int64
	cmd := &cobra.Command{
		Use:   "rollback [--to-revision N] SERVICE",
		Short: "Return a service to its previous revision (or revision N)",
		Args:  exactArg("service"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to < 0 {
				return fmt.Errorf("--to-revision %d: must be 1 or more: %w", to, errdefs.ErrInvalidArgument)
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			out, err := c.Rollback(cmd.Context(), args[0], to)
			if err != nil {
				return err
			}
			fmt.Println(out.Name)
			if detach {
				return nil
			}
			return converge(cmd.Context(), c, out, true)
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return at once instead of waiting until the rollback converged")
	cmd.Flags().Int64Var(&to, "to-revision", 0, "revision to return to (default: the one before the current)")
	return cmd
}

func newServiceRm(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm SERVICE…",
		Short: "Remove services (their replicas are stopped)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				if err := c.Remove(cmd.Context(), name); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Println(name)
			}
			if len(errs) > 0 {
				for _, e := range errs[:len(errs)-1] {
					fmt.Fprintln(os.Stderr, "berth: "+e.Error())
				}
				return errs[len(errs)-1]
			}
			return nil
		},
	}
}

// converge waits until service out, as the command wrote it, converged on
// its generation — its tasks of the current revision ready as many as
// wanted, none taken out still stopping, no rollout in progress — printing
// progress; a rollout that paused or that the controller rolled back (for
// a rollback: that paused) is a one-line error.
func converge(ctx context.Context, c *server.Client, out api.Service, rollback bool) error {
	name, gen, last := out.Name, out.Generation, ""
	// Rejected replicas are looked for among those of the template the
	// command wrote: an automatic rollback puts the old one back.
	asked := out.Spec.Template.Hash()
	for {
		svc, err := c.Service(ctx, name)
		if err != nil {
			return err
		}
		tasks, err := c.Tasks(ctx, name)
		if err != nil {
			return err
		}
		st := svc.Status
		// By template, not revision number: a rollback's revision keeps
		// the tasks of the older one with the same template.
		ready, stopping, rejected := tally(tasks, svc.Spec.Template.Hash(), asked)
		if st.ObservedGeneration >= gen {
			// The controller's automatic rollback writes a generation of
			// its own; a rollback state older than the command's is not
			// this command's failure.
			autoRollback := !rollback && svc.Generation > gen
			if err := rolloutError(name, st, autoRollback, rejected); err != nil {
				return err
			}
		}
		want := svc.Spec.DesiredReplicas()
		line := fmt.Sprintf("%s: %d/%d ready", name, ready, want)
		if stopping > 0 {
			line += fmt.Sprintf(", %d stopping", stopping)
		}
		if line != last {
			fmt.Println(line)
			last = line
		}
		busy := st.Update == api.UpdateUpdating || st.Update == api.UpdateRollbackStarted
		if st.ObservedGeneration >= gen && !busy && ready == want && stopping == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tally counts the ready tasks of the template whose hash is current and
// those taken out whose process may still run, and returns why a task of
// the template hashed asked was rejected, if one was.
func tally(tasks []api.Task, current, asked string) (ready, stopping int, rejected string) {
	for _, t := range tasks {
		switch h := t.Template.Hash(); {
		case h == current && t.DesiredState == api.TaskRunning && t.Status.State == api.TaskReady:
			ready++
		case t.DesiredState != api.TaskRunning && t.Status.State.Placed():
			stopping++
		case h == asked && t.Status.State == api.TaskRejected:
			rejected = t.Status.Message
		}
	}
	return ready, stopping, rejected
}

// rolloutError says why a service's rollout will not converge by itself:
// it paused, or the controller rolled it back (autoRollback), or its
// replicas cannot be started at all (rejected: a missing image, say),
// which is the user's input to fix and so invalid (exit status 2).
func rolloutError(name string, st api.ServiceStatus, autoRollback bool, rejected string) error {
	class := errdefs.ErrUnavailable
	if rejected != "" {
		class = errdefs.ErrInvalidArgument
	}
	switch st.Update {
	case api.UpdatePaused, api.UpdateRollbackPaused:
		return fmt.Errorf("service %s: %s: %w", name, cmpOr(st.Message, "rollout paused, see berth service ps "+name), class)
	case api.UpdateRollbackStarted, api.UpdateRollbackCompleted:
		if autoRollback {
			// The controller's message says which update failed and why.
			msg, done := strings.CutPrefix(st.Message, "rollback completed: ")
			if done {
				msg += "; rolled back"
			} else {
				msg = strings.Replace(msg, "; rolling back", "; being rolled back", 1)
			}
			return fmt.Errorf("service %s: %s: %w", name, cmpOr(msg, "rollout failed and was rolled back, see berth service ps "+name), class)
		}
	case "", api.UpdateCompleted:
		if rejected != "" {
			return fmt.Errorf("service %s: replicas cannot start: %s (berth service update fixes it, berth service rm removes it): %w",
				name, rejected, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
