package image

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/sys/signal"
)

// A Configurer applies the Containerfile instructions that only edit an
// image's configuration to one config, in order. It is the one
// implementation behind a build's ENV, CMD, … and the changes of import
// and commit (ApplyChanges); each caller parses and checks the
// instructions its own way first.
type Configurer struct {
	cfg    *v1.Config
	cmdSet bool // a CMD with arguments was applied: a later ENTRYPOINT keeps it
}

// NewConfigurer returns a Configurer that edits cfg in place.
func NewConfigurer(cfg *v1.Config) *Configurer { return &Configurer{cfg: cfg} }

// Apply applies cmd, whose words the caller has expanded: ENV, LABEL,
// MAINTAINER (as the "maintainer" label), EXPOSE, USER, WORKDIR, VOLUME,
// STOPSIGNAL, CMD, ENTRYPOINT, SHELL, HEALTHCHECK or ONBUILD. A shell-form
// CMD or ENTRYPOINT runs in the config's SHELL (["/bin/sh", "-c"] by
// default); a new ENTRYPOINT drops the config's CMD unless this Configurer
// applied one with arguments before it, as Docker does.
//
// An invalid port, signal or volume is an errdefs.ErrInvalidArgument, any
// other instruction an errdefs.ErrNotImplemented; the config may then be
// partly edited (callers that promise otherwise apply to a copy).
func (c *Configurer) Apply(cmd instructions.Command) error {
	cfg := c.cfg
	switch ins := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range ins.Env {
			cfg.Env = SetEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		for _, kv := range ins.Labels {
			setLabel(cfg, kv.Key, kv.Value)
		}
	case *instructions.MaintainerCommand:
		// Docker puts it in the config's author field; the label is what
		// the OCI image config can carry.
		setLabel(cfg, "maintainer", ins.Maintainer)
	case *instructions.ExposeCommand:
		for _, p := range ins.Ports {
			ports, err := ExposedPorts(p)
			if err != nil {
				return err
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, port := range ports {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	case *instructions.UserCommand:
		cfg.User = ins.User
	case *instructions.WorkdirCommand:
		p := ins.Path
		if !path.IsAbs(p) {
			p = path.Join("/", cfg.WorkingDir, p)
		}
		cfg.WorkingDir = path.Clean(p)
	case *instructions.VolumeCommand:
		for _, v := range ins.Volumes {
			if v == "" {
				return invalid("VOLUME specified can not be an empty string")
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		if _, err := signal.ParseSignal(ins.Signal); err != nil {
			return invalid("STOPSIGNAL: %q is not a signal", ins.Signal)
		}
		cfg.StopSignal = ins.Signal
	case *instructions.CmdCommand:
		cfg.Cmd = CommandLine(cfg, ins.ShellDependantCmdLine)
		c.cmdSet = c.cmdSet || len(ins.CmdLine) > 0
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = CommandLine(cfg, ins.ShellDependantCmdLine)
		if !c.cmdSet {
			cfg.Cmd = nil
		}
	case *instructions.ShellCommand:
		cfg.Shell = slices.Clone(ins.Shell)
	case *instructions.HealthCheckCommand:
		h := ins.Health
		cfg.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, ins.Expression)
	default:
		return fmt.Errorf("%s is not supported: %w", cmd.Name(), errdefs.ErrNotImplemented)
	}
	return nil
}

func setLabel(cfg *v1.Config, key, value string) {
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[key] = value
}

// CommandLine is CMD's, ENTRYPOINT's and RUN's argv: the JSON form as
// written, the shell form run by the image's shell.
func CommandLine(cfg *v1.Config, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	sh := cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
}

// SetEnv sets key to value in env, in place of an earlier value.
func SetEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); shell.EqualEnvKeys(k, key) {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// ExposedPorts expands "80", "80/udp" or "8000-8010/tcp" into the config's
// "PORT/PROTO" keys.
func ExposedPorts(spec string) ([]string, error) {
	ports, proto, _ := strings.Cut(spec, "/")
	proto = strings.ToLower(proto)
	switch proto {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return nil, invalid("EXPOSE %s: unknown protocol %q (tcp, udp or sctp)", spec, proto)
	}
	first, last, isRange := strings.Cut(ports, "-")
	if !isRange {
		last = first
	}
	lo, err1 := strconv.ParseUint(first, 10, 16)
	hi, err2 := strconv.ParseUint(last, 10, 16)
	if err1 != nil || err2 != nil || lo == 0 || hi < lo {
		return nil, invalid("EXPOSE %s: invalid port; want PORT[-END][/PROTO] with ports 1-65535", spec)
	}
	var out []string
	for p := lo; p <= hi; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// invalid makes an errdefs.ErrInvalidArgument out of a message.
func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}
