package cli

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// autoscaleFlags are the flags of `service autoscale` that make its spec;
// apply writes only those given, so that a change names what it changes.
type autoscaleFlags struct {
	min, max, cpu, memory                   int
	triggers                                []string
	polling, cooldown, upWindow, downWindow time.Duration
}

// autoscaleSpecFlags are the flags of autoscaleFlags, in the order they
// are checked.
var autoscaleSpecFlags = []string{"min", "max", "cpu-percent", "memory-percent", "trigger",
	"polling-interval", "cooldown", "scale-up-stabilization", "scale-down-stabilization"}

func (a *autoscaleFlags) register(f *pflag.FlagSet) {
	f.IntVar(&a.min, "min", 1, "fewest replicas (0 needs a --trigger that wakes the service)")
	f.IntVar(&a.max, "max", 0, "most replicas (needed to create an autoscaler)")
	f.IntVar(&a.cpu, "cpu-percent", 0, "target average CPU use, in percent of each replica's CPU reservation (or limit)")
	f.IntVar(&a.memory, "memory-percent", 0, "target average memory use, in percent of each replica's memory reservation (or limit)")
	f.StringArrayVar(&a.triggers, "trigger", nil, "an event or schedule to scale on, KIND,KEY=VALUE,… (replaces the autoscaler's triggers): "+
		strings.Join(api.TriggerTypes(), ", "))
	f.DurationVar(&a.polling, "polling-interval", 0, "how often metrics are read and triggers asked (default 1s)")
	f.DurationVar(&a.cooldown, "cooldown", 0, "how long the triggers must be inactive before --min 0 goes to zero (default 5m)")
	f.DurationVar(&a.upWindow, "scale-up-stabilization", 0, "scale up to the lowest count asked within this window (default 0s)")
	f.DurationVar(&a.downWindow, "scale-down-stabilization", 0, "scale down to the highest count asked within this window (default 5m)")
}

// apply checks the flags cmd was given and writes them into spec.
func (a *autoscaleFlags) apply(cmd *cobra.Command, spec *api.AutoscalerSpec) error {
	set := cmd.Flags().Changed
	bad := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
	}
	if set("min") {
		if a.min < 0 {
			return bad("--min %d: must be 0 or more", a.min)
		}
		spec.MinReplicas = a.min
	}
	if set("max") {
		if a.max < 1 {
			return bad("--max %d: must be 1 or more", a.max)
		}
		spec.MaxReplicas = a.max
	}
	for _, p := range []struct {
		flag string
		v    int
		dst  *int
	}{{"cpu-percent", a.cpu, &spec.CPUPercent}, {"memory-percent", a.memory, &spec.MemoryPercent}} {
		if !set(p.flag) {
			continue
		}
		if p.v <= 0 {
			return bad("--%s %d: must be above 0", p.flag, p.v)
		}
		*p.dst = p.v
	}
	if set("trigger") {
		spec.Triggers = nil
		for _, s := range a.triggers {
			t, err := parseTrigger(s)
			if err != nil {
				return err
			}
			spec.Triggers = append(spec.Triggers, t)
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
		dst  *api.Duration
		ptr  **api.Duration
	}{
		{"polling-interval", a.polling, &spec.PollingInterval, nil},
		{"cooldown", a.cooldown, &spec.Cooldown, nil},
		{"scale-up-stabilization", a.upWindow, nil, &spec.ScaleUpStabilization},
		{"scale-down-stabilization", a.downWindow, nil, &spec.ScaleDownStabilization},
	} {
		if !set(d.flag) {
			continue
		}
		if d.v < 0 {
			return bad("--%s %s: must not be negative", d.flag, d.v)
		}
		if v := api.Duration(d.v); d.dst != nil {
			*d.dst = v
		} else {
			*d.ptr = &v
		}
	}
	switch {
	case spec.MinReplicas > spec.MaxReplicas:
		return bad("--min %d is above --max %d", spec.MinReplicas, spec.MaxReplicas)
	case spec.CPUPercent == 0 && spec.MemoryPercent == 0 && len(spec.Triggers) == 0:
		return bad("nothing to scale on: give --cpu-percent, --memory-percent or --trigger")
	}
	return nil
}

// parseTrigger reads a --trigger: its kind, then KEY=VALUE parts, split on
// commas (a cron expression has spaces, not commas):
// cron,start=0 8 * * 1-5,end=0 18 * * 1-5,replicas=5,timezone=Europe/Paris.
func parseTrigger(s string) (api.Trigger, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--trigger %q: "+format+": %w", append(append([]any{s}, args...), errdefs.ErrInvalidArgument)...)
	}
	parts := strings.Split(s, ",")
	t := api.Trigger{Type: strings.TrimSpace(parts[0]), Metadata: map[string]string{}}
	if !slices.Contains(api.TriggerTypes(), t.Type) {
		return t, bad("unknown kind %q; start with one of %s, then KEY=VALUE parts", t.Type, strings.Join(api.TriggerTypes(), ", "))
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		switch _, dup := t.Metadata[k]; {
		case !ok || k == "":
			return t, bad("%q is not KEY=VALUE", p)
		case dup:
			return t, bad("%s is given twice", k)
		}
		t.Metadata[k] = strings.TrimSpace(v)
	}
	if err := t.Validate(); err != nil {
		return t, fmt.Errorf("--trigger %q: %w", s, err)
	}
	return t, nil
}

func newServiceAutoscale(g *globals) *cobra.Command {
	var a autoscaleFlags
	var off bool
	var format string
	cmd := &cobra.Command{
		Use:   "autoscale [flags] SERVICE",
		Short: "Set, change, show or remove a service's autoscaler",
		Long: `Set the replicas of a service from its load, between --min and --max: its
replicas' average CPU or memory use against a target (Kubernetes' HPA), and
triggers (KEDA's scalers):

  cron,start=CRON,end=CRON,replicas=K[,timezone=Area/City]
  redis-list,address=HOST:PORT,list=NAME,target=T[,password=P][,database=N][,activation=A]
  http-rps,target=T[,activation=A]
  metrics-api,url=URL,path=JSONPATH,target=T[,activation=A]

Flags given to a service that has an autoscaler change only what they name
(--trigger replaces its triggers); without flags, it is shown. --off removes
it, leaving the replicas as they are.`,
		Args: exactArg("service"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var changed []string
			for _, name := range autoscaleSpecFlags {
				if cmd.Flags().Changed(name) {
					changed = append(changed, "--"+name)
				}
			}
			if off && (len(changed) > 0 || format != "") {
				if format != "" {
					changed = append(changed, "--format")
				}
				return fmt.Errorf("--off removes the autoscaler: give it alone, not with %s: %w", strings.Join(changed, ", "), errdefs.ErrInvalidArgument)
			}
			f, err := parseInspectFormat(format)
			if err != nil {
				return err
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			if off {
				if err := c.RemoveAutoscaler(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Println(args[0])
				return nil
			}
			if len(changed) == 0 {
				out, err := c.Autoscaler(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if format != "" {
					return printInspect(os.Stdout, f, []api.Autoscaler{out})
				}
				printAutoscaler(os.Stdout, out)
				return nil
			}
			svc, err := c.Service(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			spec := api.AutoscalerSpec{MinReplicas: 1}
			if svc.Autoscaler != nil {
				spec = svc.Autoscaler.Spec
			} else if !cmd.Flags().Changed("max") {
				return fmt.Errorf("service %s has no autoscaler yet: give --max (and --min, 1 if not given): %w", svc.Name, errdefs.ErrInvalidArgument)
			}
			if err := a.apply(cmd, &spec); err != nil {
				return err
			}
			out, err := c.SetAutoscaler(cmd.Context(), svc.Name, api.Autoscaler{Service: svc.Name, Spec: spec})
			if err != nil {
				return err
			}
			if format != "" {
				return printInspect(os.Stdout, f, []api.Autoscaler{out})
			}
			fmt.Println(out.Service)
			return nil
		},
	}
	f := cmd.Flags()
	a.register(f)
	f.BoolVar(&off, "off", false, "remove the autoscaler (the replicas stay as they are)")
	f.StringVarP(&format, "format", "f", "", "json or a Go template over the autoscaler's JSON: {{.spec.maxReplicas}}, {{.status.desiredReplicas}}")
	return cmd
}

// printAutoscaler shows a readably:
//
//	Service:      web (2 → 10 replicas)
//	Targets:      cpu 50%, redis-list jobs 5 per replica
//	Timing:       polling 1s, cooldown 5m0s, stabilization up 0s, down 5m0s
//	Replicas:     current 3, desired 5
//	Metrics:      cpu  182% of 50% → 5
//	              redis-list/1  12 items of 5 per replica → 3
//	Last decisions:
//	  2026-12-06 10:02:03  2 → 5: cpu 182% of 50% target
func printAutoscaler(w io.Writer, a api.Autoscaler) {
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-14s"+format+"\n", append([]any{label}, args...)...)
	}
	s, st := a.Spec, a.Status
	line("Service:", "%s (%d–%d replicas)", a.Service, s.MinReplicas, s.MaxReplicas)
	var targets []string
	if s.CPUPercent > 0 {
		targets = append(targets, fmt.Sprintf("cpu %d%%", s.CPUPercent))
	}
	if s.MemoryPercent > 0 {
		targets = append(targets, fmt.Sprintf("memory %d%%", s.MemoryPercent))
	}
	for _, t := range s.Triggers {
		targets = append(targets, describeTrigger(t))
	}
	line("Targets:", "%s", strings.Join(targets, ", "))
	window := func(d *api.Duration) string {
		if d == nil {
			return "default"
		}
		return d.String()
	}
	line("Timing:", "polling %s, cooldown %s, stabilization up %s, down %s",
		s.PollingInterval, s.Cooldown, window(s.ScaleUpStabilization), window(s.ScaleDownStabilization))
	if st.Observed.IsZero() {
		line("Replicas:", "not read yet")
	} else {
		line("Replicas:", "current %d, desired %d (read %s)", st.CurrentReplicas, st.DesiredReplicas, st.Observed.Local().Format("15:04:05"))
	}
	label := "Metrics:"
	if len(st.Metrics) == 0 {
		line(label, "none read yet")
	}
	for _, m := range st.Metrics {
		line(label, "%s", describeMetric(m))
		label = ""
	}
	if len(st.Decisions) == 0 {
		fmt.Fprintln(w, "Last decisions: none")
		return
	}
	fmt.Fprintln(w, "Last decisions:")
	for _, d := range st.Decisions {
		fmt.Fprintf(w, "  %s  %s\n", d.Time.Local().Format("2006-01-02 15:04:05"), d)
	}
}

// describeTrigger is a trigger in a few words: "redis-list jobs 5 per
// replica".
func describeTrigger(t api.Trigger) string {
	m := t.Metadata
	switch t.Type {
	case api.TriggerCron:
		s := fmt.Sprintf("cron %s replicas from %q to %q", m["replicas"], m["start"], m["end"])
		if m["timezone"] != "" {
			s += " " + m["timezone"]
		}
		return s
	case api.TriggerRedisList:
		return fmt.Sprintf("redis-list %s %s per replica", m["list"], m["target"])
	case api.TriggerHTTPRPS:
		return fmt.Sprintf("http-rps %s per replica", m["target"])
	case api.TriggerMetricsAPI:
		return fmt.Sprintf("metrics-api %s %s %s per replica", m["url"], m["path"], m["target"])
	}
	s := t.Type
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s += " " + k + "=" + m[k]
	}
	return s
}

// describeMetric is one reading: "cpu  182% of 50% → 5", "cron/1  outside
// window → none", or its error.
func describeMetric(m api.MetricStatus) string {
	if m.Error != "" {
		return fmt.Sprintf("%s  error: %s", m.Name, m.Error)
	}
	s := m.Name + " "
	if m.Current != "" {
		s += " " + m.Current
	}
	if m.Target != "" {
		s += " (target " + m.Target + ")"
	}
	if m.Desired < 0 {
		return s + " → none"
	}
	return fmt.Sprintf("%s → %d", s, m.Desired)
}

// warnAutoscaled says on stderr, after a scale or an update of the
// replicas of svc, that its autoscaler will set them again.
func warnAutoscaled(svc api.Service) {
	if a := svc.Autoscaler; a != nil {
		fmt.Fprintf(os.Stderr, "warning: %s is autoscaled (%d–%d replicas): its autoscaler sets the replicas from its metrics, as Kubernetes' HPA does; berth service autoscale %s --off stops it\n",
			svc.Name, a.Spec.MinReplicas, a.Spec.MaxReplicas, svc.Name)
	}
}
