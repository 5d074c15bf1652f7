package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/spf13/cobra"
)

// runFlags are the flags `run` and `create` share, as Docker spells them.
type runFlags struct {
	name, workdir, user, entrypoint, hostname, network, memory, memorySwap, cpus, cpusetCpus, restart string
	shmSize, stopSignal                                                                               string
	env, envFiles, publish, volumes, mounts, tmpfs, dns, addHosts, caps, capDrop, securityOpts        []string
	devices, labels, ulimits, logOpts, expose                                                         []string
	interactive, tty, rm, publishAll, readOnly, privileged, init, noHealthcheck                       bool
	cpuShares                                                                                         uint64
	pidsLimit                                                                                         int64
	blkioWeight                                                                                       uint16
	stopTimeout                                                                                       int
	healthCmd                                                                                         string
	healthInterval, healthTimeout, healthStart                                                        time.Duration
	healthRetries                                                                                     int
	runtime                                                                                           string
	pull                                                                                              string
}

func (r *runFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.SetInterspersed(false) // flags after the image belong to the command
	f.StringVar(&r.name, "name", "", "name of the container")
	f.StringVar(&r.pull, "pull", "missing", "pull the image: always, missing or never")
	f.BoolVarP(&r.interactive, "interactive", "i", false, "keep stdin open")
	f.BoolVarP(&r.tty, "tty", "t", false, "allocate a pseudo-terminal")
	f.BoolVar(&r.rm, "rm", false, "remove the container when it exits")
	f.StringArrayVarP(&r.env, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to pass this one's)")
	f.StringArrayVar(&r.envFiles, "env-file", nil, "read environment variables from a file")
	f.StringVarP(&r.workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&r.user, "user", "u", "", "user[:group] to run as")
	f.StringVar(&r.entrypoint, "entrypoint", "", "replace the image's entrypoint")
	f.StringVarP(&r.hostname, "hostname", "h", "", "container host name")
	f.StringArrayVarP(&r.publish, "publish", "p", nil, "publish a port: [IP:][HOST:]CONTAINER[/udp]")
	f.BoolVarP(&r.publishAll, "publish-all", "P", false, "publish every exposed port on a free host port")
	f.StringArrayVar(&r.expose, "expose", nil, "expose a port or range (80, 8000-8010/udp)")
	f.StringVar(&r.network, "network", "", "network: bridge, none, host or a network's name")
	f.StringVar(&r.network, "net", "", "same as --network")
	f.MarkHidden("net")
	f.StringArrayVar(&r.dns, "dns", nil, "DNS server")
	f.StringArrayVar(&r.addHosts, "add-host", nil, "add HOST:IP to /etc/hosts")
	f.StringArrayVarP(&r.volumes, "volume", "v", nil, "bind mount or volume: HOST-PATH|NAME:CONTAINER-PATH[:ro]")
	f.StringArrayVar(&r.mounts, "mount", nil, "mount: type=bind|volume|tmpfs,source=…,target=…[,readonly]")
	f.StringArrayVar(&r.tmpfs, "tmpfs", nil, "mount a tmpfs: PATH[:OPTIONS]")
	f.BoolVar(&r.readOnly, "read-only", false, "mount the root file system read-only")
	f.StringVarP(&r.memory, "memory", "m", "", "memory limit (e.g. 64m)")
	f.StringVar(&r.memorySwap, "memory-swap", "", "memory plus swap limit; -1 for unlimited swap")
	f.StringVar(&r.cpus, "cpus", "", "number of CPUs")
	f.Uint64VarP(&r.cpuShares, "cpu-shares", "c", 0, "relative CPU weight")
	f.StringVar(&r.cpusetCpus, "cpuset-cpus", "", "CPUs to run on (0-1, 3)")
	f.Int64Var(&r.pidsLimit, "pids-limit", 0, "maximum number of processes (-1 unlimited)")
	f.Uint16Var(&r.blkioWeight, "blkio-weight", 0, "relative block I/O weight (10-1000)")
	f.StringVar(&r.shmSize, "shm-size", "", "size of /dev/shm")
	f.StringArrayVar(&r.ulimits, "ulimit", nil, "resource limit NAME=SOFT[:HARD]")
	f.StringArrayVar(&r.caps, "cap-add", nil, "add a capability")
	f.StringArrayVar(&r.capDrop, "cap-drop", nil, "drop a capability")
	f.BoolVar(&r.privileged, "privileged", false, "give the container every capability and device")
	f.StringArrayVar(&r.securityOpts, "security-opt", nil, "no-new-privileges, seccomp=PROFILE.json or seccomp=unconfined")
	f.StringArrayVar(&r.devices, "device", nil, "add a host device: HOST[:CONTAINER[:rwm]]")
	f.StringVar(&r.restart, "restart", "no", "restart policy: no, on-failure[:N], always, unless-stopped")
	f.StringVar(&r.healthCmd, "health-cmd", "", "command to check health")
	f.DurationVar(&r.healthInterval, "health-interval", 0, "time between health checks")
	f.DurationVar(&r.healthTimeout, "health-timeout", 0, "maximum time a health check may take")
	f.DurationVar(&r.healthStart, "health-start-period", 0, "start-up time during which failures do not count")
	f.IntVar(&r.healthRetries, "health-retries", 0, "consecutive failures to be unhealthy")
	f.BoolVar(&r.noHealthcheck, "no-healthcheck", false, "disable the image's health check")
	f.BoolVar(&r.init, "init", false, "run an init inside the container that reaps zombies and forwards signals")
	f.StringArrayVarP(&r.labels, "label", "l", nil, "set a label KEY=VALUE")
	f.StringArrayVar(&r.logOpts, "log-opt", nil, "log option: max-size=SIZE, max-file=N")
	f.StringVar(&r.stopSignal, "stop-signal", "", "signal that stops the container")
	f.IntVar(&r.stopTimeout, "stop-timeout", -1, "seconds to wait for the stop signal before SIGKILL")
	f.StringVar(&r.runtime, "runtime", "", "path of a runc-compatible OCI runtime (default: berth's own)")
}

// options turns the flags, the image and the command after it into
// CreateOptions.
func (r *runFlags) options(cmd *cobra.Command, args []string) (container.CreateOptions, error) {
	o := container.CreateOptions{Name: r.name, ImageRef: args[0]}
	c, h := &o.Config, &o.Host
	c.Cmd = args[1:]
	c.User, c.WorkingDir, c.Hostname, c.StopSignal = r.user, r.workdir, r.hostname, r.stopSignal
	c.Tty, c.OpenStdin = r.tty, r.interactive
	if cmd.Flags().Changed("entrypoint") {
		o.EntrypointSet = true
		if r.entrypoint != "" {
			c.Entrypoint = []string{r.entrypoint}
		}
	}
	if r.stopTimeout >= 0 {
		c.StopTimeout = &r.stopTimeout
	}
	for _, f := range r.envFiles {
		env, err := container.ParseEnvFile(f)
		if err != nil {
			return o, err
		}
		c.Env = append(c.Env, env...)
	}
	for _, e := range r.env {
		kv, ok, err := container.ParseEnv(e)
		if err != nil {
			return o, err
		}
		if ok {
			c.Env = append(c.Env, kv)
		}
	}
	var err error
	if c.Labels, err = keyValues("--label", r.labels); err != nil {
		return o, err
	}
	if h.LogOpts, err = keyValues("--log-opt", r.logOpts); err != nil {
		return o, err
	}
	if r.healthCmd != "" || r.healthInterval != 0 || r.healthTimeout != 0 || r.healthStart != 0 || r.healthRetries != 0 {
		c.Healthcheck = &container.Healthcheck{Interval: r.healthInterval, Timeout: r.healthTimeout, StartPeriod: r.healthStart, Retries: r.healthRetries}
		if r.healthCmd != "" {
			c.Healthcheck.Test = []string{"CMD-SHELL", r.healthCmd}
		}
	}
	o.NoHealthcheck = r.noHealthcheck
	for _, p := range r.publish {
		ps, err := container.ParsePorts(p)
		if err != nil {
			return o, err
		}
		h.Ports = append(h.Ports, ps...)
	}
	for _, x := range r.expose {
		ps, err := container.ParsePorts(x)
		if err != nil || strings.Contains(x, ":") {
			return o, fmt.Errorf("--expose %q: use PORT[-PORT][/PROTO]: %w", x, errdefs.ErrInvalidArgument)
		}
		for _, p := range ps {
			c.ExposedPorts = append(c.ExposedPorts, fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol))
		}
	}
	h.PublishAll, h.NetworkMode, h.DNS, h.AutoRemove = r.publishAll, r.network, r.dns, r.rm
	for _, a := range r.addHosts {
		name, ip, ok := strings.Cut(a, ":")
		if !ok || name == "" || ip == "" {
			return o, fmt.Errorf("--add-host %q: use HOST:IP: %w", a, errdefs.ErrInvalidArgument)
		}
		h.ExtraHosts = append(h.ExtraHosts, a)
	}
	for _, v := range r.volumes {
		m, err := container.ParseVolume(v)
		if err != nil {
			return o, err
		}
		h.Mounts = append(h.Mounts, m)
	}
	for _, v := range r.mounts {
		m, err := container.ParseMount(v)
		if err != nil {
			return o, err
		}
		h.Mounts = append(h.Mounts, m)
	}
	for _, v := range r.tmpfs {
		m, err := container.ParseTmpfs(v)
		if err != nil {
			return o, err
		}
		h.Mounts = append(h.Mounts, m)
	}
	if err := r.resources(h); err != nil {
		return o, err
	}
	h.ReadOnly, h.Privileged, h.Init, h.CapAdd, h.CapDrop = r.readOnly, r.privileged, r.init, r.caps, r.capDrop
	for _, s := range r.securityOpts {
		k, v, _ := strings.Cut(strings.Replace(s, ":", "=", 1), "=")
		switch {
		case k == "no-new-privileges" && (v == "" || v == "true"):
			h.NoNewPrivs = true
		case k == "no-new-privileges" && v == "false":
		case k == "seccomp" && v == "unconfined":
			h.Seccomp = "unconfined"
		case k == "seccomp" && v != "":
			b, err := readFileArg("--security-opt seccomp", v)
			if err != nil {
				return o, err
			}
			h.Seccomp = string(b)
		default:
			return o, fmt.Errorf("--security-opt %q: use no-new-privileges, seccomp=PROFILE.json or seccomp=unconfined: %w", s, errdefs.ErrInvalidArgument)
		}
	}
	for _, d := range r.devices {
		dev, err := container.ParseDevice(d)
		if err != nil {
			return o, err
		}
		h.Devices = append(h.Devices, dev)
	}
	for _, u := range r.ulimits {
		ul, err := container.ParseUlimit(u)
		if err != nil {
			return o, err
		}
		h.Ulimits = append(h.Ulimits, ul)
	}
	if h.RestartPolicy, err = container.ParseRestart(r.restart); err != nil {
		return o, err
	}
	h.Runtime = r.runtime
	return o, nil
}

func (r *runFlags) resources(h *container.HostConfig) error {
	res := &h.Resources
	var err error
	if r.memory != "" {
		if res.Memory, err = container.ParseBytes(r.memory); err != nil {
			return fmt.Errorf("--memory: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	switch r.memorySwap {
	case "":
	case "-1":
		res.MemorySwap = -1
	default:
		if res.MemorySwap, err = container.ParseBytes(r.memorySwap); err != nil {
			return fmt.Errorf("--memory-swap: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		if res.Memory == 0 {
			return fmt.Errorf("--memory-swap needs --memory: %w", errdefs.ErrInvalidArgument)
		}
	}
	if r.shmSize != "" {
		if res.ShmSize, err = container.ParseBytes(r.shmSize); err != nil {
			return fmt.Errorf("--shm-size: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if r.cpus != "" {
		if res.NanoCPUs, err = container.ParseCPUs(r.cpus); err != nil {
			return err
		}
	}
	if r.blkioWeight != 0 && (r.blkioWeight < 10 || r.blkioWeight > 1000) {
		return fmt.Errorf("--blkio-weight %d: must be from 10 to 1000: %w", r.blkioWeight, errdefs.ErrInvalidArgument)
	}
	res.CPUShares, res.CpusetCpus, res.PidsLimit, res.BlkioWeight = r.cpuShares, r.cpusetCpus, r.pidsLimit, r.blkioWeight
	return nil
}

// keyValues reads repeated KEY=VALUE flags.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("%s %q: use KEY=VALUE: %w", flag, kv, errdefs.ErrInvalidArgument)
		}
		m[k] = v
	}
	return m, nil
}

// readFileArg reads the file a flag names.
func readFileArg(flag, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", flag, err, errdefs.ErrInvalidArgument)
	}
	return b, nil
}
