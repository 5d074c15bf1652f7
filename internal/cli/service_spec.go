package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// serviceFlags are the flags `service create` and `service update` share,
// as Docker spells them. apply writes only the flags given, so that an
// update changes what it names and nothing else.
type serviceFlags struct {
	replicas                                                   int
	publish, env, envFiles, mounts, volumes, labels, ctrLabels []string
	networks                                                   []string
	limitCPU, limitMemory, reserveCPU, reserveMemory           string
	user, workdir, stopSignal, restartCondition                string
	healthCmd, readinessCmd, readinessHTTP, livenessCmd        string
	livenessHTTP, affinity                                     string
	healthInterval, healthTimeout, healthStart                 time.Duration
	healthRetries, restartMaxAttempts                          int
	restartDelay, restartWindow, stopGrace, minReady           time.Duration
	progressDeadline, drainDelay                               time.Duration
	update, rollback                                           updateFlags
	detach                                                     bool
}

type updateFlags struct {
	parallelism     int
	delay, monitor  time.Duration
	order, failure  string
	maxFailureRatio float64
	prefix          string
}

func (s *serviceFlags) register(f *pflag.FlagSet) {
	f.IntVar(&s.replicas, "replicas", 1, "number of replicas")
	f.StringArrayVarP(&s.publish, "publish", "p", nil, "publish a port: HOST:CONTAINER[/udp] or CONTAINER[/udp]")
	f.StringArrayVarP(&s.env, "env", "e", nil, "set an environment variable KEY=VALUE")
	f.StringArrayVar(&s.envFiles, "env-file", nil, "read environment variables from a file")
	f.StringArrayVar(&s.mounts, "mount", nil, "mount: type=bind|volume|tmpfs,source=…,target=…[,readonly]")
	f.StringArrayVarP(&s.volumes, "volume", "v", nil, "bind mount or volume: HOST-PATH|NAME:CONTAINER-PATH[:ro]")
	f.StringArrayVar(&s.networks, "network", nil, "network to attach the replicas to")
	f.StringVar(&s.limitCPU, "limit-cpu", "", "CPU limit of each replica (1.5)")
	f.StringVar(&s.limitMemory, "limit-memory", "", "memory limit of each replica (256m)")
	f.StringVar(&s.reserveCPU, "reserve-cpu", "", "CPUs set aside for each replica when placing it")
	f.StringVar(&s.reserveMemory, "reserve-memory", "", "memory set aside for each replica when placing it")
	f.StringVarP(&s.user, "user", "u", "", "user[:group] the replicas run as")
	f.StringVarP(&s.workdir, "workdir", "w", "", "working directory inside the replicas")
	f.StringVar(&s.stopSignal, "stop-signal", "", "signal that stops a replica")
	f.DurationVar(&s.stopGrace, "stop-grace-period", 0, "time between the stop signal and SIGKILL (default 10s)")
	f.StringVar(&s.healthCmd, "health-cmd", "", "shell command that checks a replica: its liveness and readiness")
	f.DurationVar(&s.healthInterval, "health-interval", 0, "time between checks (default 10s)")
	f.DurationVar(&s.healthTimeout, "health-timeout", 0, "maximum time of one check (default 1s)")
	f.DurationVar(&s.healthStart, "health-start-period", 0, "wait after start before the first check")
	f.IntVar(&s.healthRetries, "health-retries", 0, "failures in a row that count as failing (default 3)")
	f.StringVar(&s.readinessCmd, "readiness-cmd", "", "shell command that says a replica is ready")
	f.StringVar(&s.readinessHTTP, "readiness-http", "", "a replica is ready when GET PORT[:PATH] answers 2xx/3xx")
	f.StringVar(&s.livenessCmd, "liveness-cmd", "", "shell command whose failure replaces a replica")
	f.StringVar(&s.livenessHTTP, "liveness-http", "", "a replica is replaced when GET PORT[:PATH] fails")
	s.update.register(f, "update", "pause, rollback or continue")
	s.rollback.register(f, "rollback", "pause or continue")
	f.StringVar(&s.restartCondition, "restart-condition", "", "when to replace an ended replica: none, on-failure or any (default)")
	f.DurationVar(&s.restartDelay, "restart-delay", 0, "wait before the first replacement")
	f.IntVar(&s.restartMaxAttempts, "restart-max-attempts", 0, "replacements allowed within --restart-window (0: no bound)")
	f.DurationVar(&s.restartWindow, "restart-window", 0, "span --restart-max-attempts counts over")
	f.DurationVar(&s.minReady, "min-ready", 0, "time a new replica must stay ready to count as available")
	f.DurationVar(&s.progressDeadline, "progress-deadline", 0, "time a rollout may go without a new replica becoming available before it fails (default 10m)")
	f.DurationVar(&s.drainDelay, "drain-delay", 0, "time a replica about to go is out of load balancing and DNS before its stop signal (default 1s)")
	f.StringVar(&s.affinity, "session-affinity", "", "None (default: each connection to a replica at random) or ClientIP (a client's connections to one replica)")
	f.StringArrayVarP(&s.labels, "label", "l", nil, "service label KEY=VALUE")
	f.StringArrayVar(&s.ctrLabels, "container-label", nil, "label of the replicas' containers KEY=VALUE")
	f.BoolVarP(&s.detach, "detach", "d", false, "return at once instead of waiting until the service converged")
}

func (u *updateFlags) register(f *pflag.FlagSet, prefix, actions string) {
	u.prefix = prefix
	f.IntVar(&u.parallelism, prefix+"-parallelism", 0, "replicas replaced at once (default 1)")
	f.DurationVar(&u.delay, prefix+"-delay", 0, "pause between two batches")
	f.StringVar(&u.order, prefix+"-order", "", "start-first or stop-first (default)")
	f.StringVar(&u.failure, prefix+"-failure-action", "", "on failure: "+actions+" (default pause)")
	f.DurationVar(&u.monitor, prefix+"-monitor", 0, "time a new replica is watched for failure (default 5s)")
	f.Float64Var(&u.maxFailureRatio, prefix+"-max-failure-ratio", 0, "share of replicas that may fail (0 to 1)")
}

// apply writes the flags that cmd was given into svc.
func (s *serviceFlags) apply(cmd *cobra.Command, svc *api.Service) error {
	f := cmd.Flags()
	set := f.Changed
	spec, t := &svc.Spec, &svc.Spec.Template
	if set("replicas") {
		if s.replicas < 0 {
			return fmt.Errorf("--replicas %d: must be 0 or more: %w", s.replicas, errdefs.ErrInvalidArgument)
		}
		spec.Replicas = &s.replicas
	}
	if set("publish") {
		spec.Ports = nil
		for _, p := range s.publish {
			bs, err := container.ParsePorts(p)
			if err != nil {
				return err
			}
			for _, b := range bs {
				if b.HostIP != "" {
					return fmt.Errorf("-p %q: a service publishes on every address; drop the IP: %w", p, errdefs.ErrInvalidArgument)
				}
				spec.Ports = append(spec.Ports, api.PortConfig{Protocol: api.Protocol(b.Protocol), TargetPort: int(b.ContainerPort), PublishedPort: int(b.HostPort)})
			}
		}
	}
	if set("env") || set("env-file") {
		t.Env = nil
		for _, file := range s.envFiles {
			env, err := container.ParseEnvFile(file)
			if err != nil {
				return err
			}
			t.Env = append(t.Env, env...)
		}
		for _, e := range s.env {
			kv, ok, err := container.ParseEnv(e)
			if err != nil {
				return err
			}
			if ok {
				t.Env = append(t.Env, kv)
			}
		}
	}
	if set("mount") || set("volume") {
		t.Mounts = nil
		for _, v := range s.volumes {
			m, err := container.ParseVolume(v)
			if err != nil {
				return err
			}
			t.Mounts = append(t.Mounts, serviceMount(m))
		}
		for _, v := range s.mounts {
			m, err := container.ParseMount(v)
			if err != nil {
				return err
			}
			t.Mounts = append(t.Mounts, serviceMount(m))
		}
	}
	if set("network") {
		t.Networks = s.networks
	}
	for _, r := range []struct {
		flag, value string
		cpu         bool
		dst         *int64
	}{
		{"limit-cpu", s.limitCPU, true, &t.Resources.Limits.NanoCPUs},
		{"limit-memory", s.limitMemory, false, &t.Resources.Limits.MemoryBytes},
		{"reserve-cpu", s.reserveCPU, true, &t.Resources.Reservations.NanoCPUs},
		{"reserve-memory", s.reserveMemory, false, &t.Resources.Reservations.MemoryBytes},
	} {
		if !set(r.flag) {
			continue
		}
		var err error
		if r.cpu {
			*r.dst, err = container.ParseCPUs(r.value)
		} else if *r.dst, err = container.ParseBytes(r.value); err != nil {
			err = fmt.Errorf("--%s: %v: %w", r.flag, err, errdefs.ErrInvalidArgument)
		}
		if err != nil {
			return err
		}
	}
	if set("user") {
		t.User = s.user
	}
	if set("workdir") {
		t.WorkDir = s.workdir
	}
	if set("stop-signal") {
		t.StopSignal = s.stopSignal
	}
	if set("stop-grace-period") {
		t.StopGracePeriod = api.Duration(s.stopGrace)
	}
	if err := s.probes(cmd, t); err != nil {
		return err
	}
	s.update.apply(cmd, &spec.Update)
	s.rollback.apply(cmd, &spec.Rollback)
	if set("restart-condition") {
		spec.Restart.Condition = api.RestartCondition(s.restartCondition)
	}
	if set("restart-delay") {
		spec.Restart.Delay = api.Duration(s.restartDelay)
	}
	if set("restart-max-attempts") {
		spec.Restart.MaxAttempts = s.restartMaxAttempts
	}
	if set("restart-window") {
		spec.Restart.Window = api.Duration(s.restartWindow)
	}
	if set("min-ready") {
		spec.MinReady = api.Duration(s.minReady)
	}
	if set("progress-deadline") {
		spec.ProgressDeadline = api.Duration(s.progressDeadline)
	}
	if set("drain-delay") {
		d := api.Duration(s.drainDelay)
		spec.DrainDelay = &d
	}
	if set("session-affinity") {
		spec.SessionAffinity = api.SessionAffinity(s.affinity)
		for _, a := range []api.SessionAffinity{api.AffinityNone, api.AffinityClientIP} {
			if strings.EqualFold(s.affinity, string(a)) {
				spec.SessionAffinity = a
			}
		}
	}
	var err error
	if set("label") {
		if svc.Labels, err = keyValues("--label", s.labels); err != nil {
			return err
		}
	}
	if set("container-label") {
		if t.Labels, err = keyValues("--container-label", s.ctrLabels); err != nil {
			return err
		}
	}
	return nil
}

func (u *updateFlags) apply(cmd *cobra.Command, c *api.UpdateConfig) {
	set := func(name string) bool { return cmd.Flags().Changed(u.prefix + "-" + name) }
	if set("parallelism") {
		c.Parallelism = u.parallelism
	}
	if set("delay") {
		c.Delay = api.Duration(u.delay)
	}
	if set("order") {
		c.Order = api.UpdateOrder(u.order)
	}
	if set("failure-action") {
		c.FailureAction = api.FailureAction(u.failure)
	}
	if set("monitor") {
		c.Monitor = api.Duration(u.monitor)
	}
	if set("max-failure-ratio") {
		c.MaxFailureRatio = u.maxFailureRatio
	}
}

// probes writes the probe flags: --health-cmd is both liveness and
// readiness (as an image's HEALTHCHECK is), the --readiness-… and
// --liveness-… flags one each; --health-interval, -timeout, -start-period
// and -retries time all of them.
func (s *serviceFlags) probes(cmd *cobra.Command, t *api.TaskTemplate) error {
	set := cmd.Flags().Changed
	probe := func(flag, shell, http string) (*api.Probe, error) {
		p := &api.Probe{Period: api.Duration(s.healthInterval), Timeout: api.Duration(s.healthTimeout),
			InitialDelay: api.Duration(s.healthStart), FailureThreshold: s.healthRetries}
		if shell != "" {
			p.Exec = []string{"/bin/sh", "-c", shell}
			return p, nil
		}
		port, path, _ := strings.Cut(http, ":")
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("--%s %q: use PORT[:PATH], such as 80:/healthz: %w", flag, http, errdefs.ErrInvalidArgument)
		}
		p.HTTPGet = &api.HTTPGet{Port: n, Path: path}
		return p, nil
	}
	var err error
	if set("health-cmd") {
		if t.LivenessProbe, err = probe("health-cmd", s.healthCmd, ""); err != nil {
			return err
		}
		t.ReadinessProbe, _ = probe("health-cmd", s.healthCmd, "")
	}
	for _, p := range []struct {
		cmdFlag, httpFlag, shell, http string
		dst                            **api.Probe
	}{
		{"readiness-cmd", "readiness-http", s.readinessCmd, s.readinessHTTP, &t.ReadinessProbe},
		{"liveness-cmd", "liveness-http", s.livenessCmd, s.livenessHTTP, &t.LivenessProbe},
	} {
		switch {
		case set(p.cmdFlag) && set(p.httpFlag):
			return fmt.Errorf("--%s and --%s: give one: %w", p.cmdFlag, p.httpFlag, errdefs.ErrInvalidArgument)
		case set(p.cmdFlag):
			*p.dst, err = probe(p.cmdFlag, p.shell, "")
		case set(p.httpFlag):
			*p.dst, err = probe(p.httpFlag, "", p.http)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// serviceMount is a parsed -v or --mount as a service's mount.
func serviceMount(m container.Mount) api.Mount {
	return api.Mount{Type: api.MountType(m.Type), Source: m.Source, Target: m.Destination, ReadOnly: m.ReadOnly}
}

// editList removes the entries whose key is in rm from list and then adds
// add, replacing in place an entry of the same key (--env-add/--env-rm):
// adding what is there already keeps the list, and so the template, as it
// was.
func editList(list, add, rm []string) []string {
	key := func(s string) string { k, _, _ := strings.Cut(s, "="); return k }
	out := slices.DeleteFunc(slices.Clone(list), func(e string) bool { return slices.Contains(rm, key(e)) })
	for _, a := range add {
		if i := slices.IndexFunc(out, func(e string) bool { return key(e) == key(a) }); i >= 0 {
			out[i] = a
		} else {
			out = append(out, a)
		}
	}
	return out
}
