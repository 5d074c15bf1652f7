package image

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/sys/signal"
)

// changeInstructions are the Dockerfile instructions a change may hold, as
// with `docker import --change` and `docker commit --change`: those that
// only edit the image's configuration.
var changeInstructions = []string{"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL",
	"ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// ApplyChanges applies Dockerfile instructions to cfg, in order, the way
// `docker import --change` and `docker commit --change` do. Each change is
// one instruction: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL,
// ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR, in JSON or shell form
// ("CMD ["sh"]", "CMD echo hi" → ["/bin/sh", "-c", "echo hi"]), and
// Podman's "CMD=…" spelling is accepted too. Variables in ENV, EXPOSE,
// LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR are expanded from the image's
// environment, as in a Containerfile.
//
// A change that is not one such valid instruction is an
// errdefs.ErrInvalidArgument naming it; cfg is then left as it was.
func ApplyChanges(cfg *v1.Config, changes []string) error {
	work := cfg.DeepCopy()
	cmdSet := false
	for _, change := range changes {
		if err := applyChange(work, change, &cmdSet); err != nil {
			return fmt.Errorf("change %q: %w", change, err)
		}
	}
	*cfg = *work
	return nil
}

// invalid makes an errdefs.ErrInvalidArgument out of a message.
func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

func applyChange(cfg *v1.Config, change string, cmdSet *bool) error {
	node, err := parseChange(change)
	if err != nil {
		return err
	}
	name := strings.ToUpper(node.Value)
	if name != "HEALTHCHECK" && len(node.Flags) > 0 {
		return invalid("%s takes no options (%s); write arguments that start with -- in JSON form", name, strings.Join(node.Flags, " "))
	}
	args, isJSON := nodeArgs(node), node.Attributes["json"]
	env := shell.EnvsFromSlice(cfg.Env)
	expand := func(words []string) ([]string, error) {
		lex := shell.NewLex(parser.DefaultEscapeToken)
		out := make([]string, len(words))
		for i, w := range words {
			s, _, err := lex.ProcessWord(w, env)
			if err != nil {
				return nil, invalid("%s: %v", name, err)
			}
			out[i] = s
		}
		return out, nil
	}
	switch name {
	case "CMD":
		cfg.Cmd = commandLine(cfg, args, isJSON)
		*cmdSet = *cmdSet || len(args) > 0
	case "ENTRYPOINT":
		cfg.Entrypoint = commandLine(cfg, args, isJSON)
		if !*cmdSet {
			cfg.Cmd = nil // as Docker: a new entrypoint drops the old CMD
		}
	case "ENV", "LABEL":
		if len(args) == 0 || len(args)%3 != 0 {
			return invalid("%s needs NAME=VALUE pairs", name)
		}
		words, err := expand(args)
		if err != nil {
			return err
		}
		for i := 0; i < len(words); i += 3 {
			key, value := words[i], words[i+1]
			if key == "" {
				return invalid("%s names can not be blank", name)
			}
			if name == "ENV" {
				cfg.Env = SetEnv(cfg.Env, key, value)
				continue
			}
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			cfg.Labels[key] = value
		}
	case "EXPOSE":
		words, err := expand(args)
		if err != nil {
			return err
		}
		if len(words) == 0 {
			return invalid("EXPOSE needs at least one port")
		}
		for _, w := range words {
			ports, err := ExposedPorts(w)
			if err != nil {
				return err
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range ports {
				cfg.ExposedPorts[p] = struct{}{}
			}
		}
	case "HEALTHCHECK":
		h, err := healthcheck(node, args, isJSON)
		if err != nil {
			return err
		}
		cfg.Healthcheck = h
	case "ONBUILD":
		if node.Next == nil || len(node.Next.Children) == 0 {
			return invalid("ONBUILD needs an instruction")
		}
		switch trigger := strings.ToUpper(node.Next.Children[0].Value); trigger {
		case "ONBUILD":
			return invalid("chaining ONBUILD via ONBUILD ONBUILD isn't allowed")
		case "FROM", "MAINTAINER":
			return invalid("%s isn't allowed as an ONBUILD trigger", trigger)
		default:
			if !known(trigger) {
				return invalid("ONBUILD: unknown instruction %s", trigger)
			}
		}
		expr := strings.TrimSpace(node.Original)
		expr = strings.TrimSpace(expr[len("ONBUILD"):])
		cfg.OnBuild = append(cfg.OnBuild, expr)
	case "STOPSIGNAL", "USER", "WORKDIR":
		words, err := expand(args)
		if err != nil {
			return err
		}
		if len(words) != 1 || words[0] == "" {
			return invalid("%s needs exactly one argument", name)
		}
		switch w := words[0]; name {
		case "STOPSIGNAL":
			if _, err := signal.ParseSignal(w); err != nil {
				return invalid("STOPSIGNAL: %v", err)
			}
			cfg.StopSignal = w
		case "USER":
			cfg.User = w
		case "WORKDIR":
			if !path.IsAbs(w) {
				w = path.Join("/", cfg.WorkingDir, w)
			}
			cfg.WorkingDir = path.Clean(w)
		}
	case "VOLUME":
		words, err := expand(args)
		if err != nil {
			return err
		}
		if len(words) == 0 {
			return invalid("VOLUME needs at least one path")
		}
		for _, w := range words {
			if w == "" {
				return invalid("VOLUME specified can not be an empty string")
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[w] = struct{}{}
		}
	default:
		return fmt.Errorf("%s cannot be used in a change (only %s): %w", name, strings.Join(changeInstructions, ", "), errdefs.ErrInvalidArgument)
	}
	return nil
}

// parseChange parses one change into the parser's node for its
// instruction.
func parseChange(change string) (*parser.Node, error) {
	change = strings.TrimSpace(change)
	// Podman's spelling: CMD=["sh"], ENV=A=b.
	if word, rest, ok := strings.Cut(change, "="); ok && isWord(word) {
		change = word + " " + rest
	}
	if change == "" {
		return nil, invalid("empty change")
	}
	word, _, _ := strings.Cut(change, " ")
	word = strings.ToUpper(strings.TrimSpace(word))
	if !known(word) {
		return nil, invalid("unknown instruction %s", word)
	}
	res, err := parser.Parse(strings.NewReader(change))
	if err != nil {
		var le *parser.LocationError
		if errors.As(err, &le) {
			err = le.Unwrap()
		}
		return nil, invalid("%v", err)
	}
	if len(res.AST.Children) != 1 {
		return nil, invalid("a change is one instruction, this has %d", len(res.AST.Children))
	}
	return res.AST.Children[0], nil
}

// known reports whether word is an instruction of a Containerfile, so that
// ApplyChanges can tell a misspelling from an instruction that only a
// build can run.
func known(word string) bool {
	switch word {
	case "ADD", "ARG", "COPY", "FROM", "MAINTAINER", "RUN", "SHELL":
		return true
	}
	for _, w := range changeInstructions {
		if w == word {
			return true
		}
	}
	return false
}

func isWord(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return s != ""
}

// nodeArgs returns the values of the nodes after the instruction.
func nodeArgs(node *parser.Node) []string {
	var args []string
	for n := node.Next; n != nil; n = n.Next {
		args = append(args, n.Value)
	}
	return args
}

// commandLine is CMD's and ENTRYPOINT's value: the JSON form as written,
// the shell form run by the image's shell (["/bin/sh", "-c"] by default).
func commandLine(cfg *v1.Config, args []string, isJSON bool) []string {
	if len(args) == 0 {
		return []string{}
	}
	if isJSON {
		return args
	}
	sh := cfg.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, sh...), strings.Join(args, " "))
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

// healthcheck reads HEALTHCHECK NONE or HEALTHCHECK [OPTIONS] CMD ….
func healthcheck(node *parser.Node, args []string, isJSON bool) (*v1.HealthConfig, error) {
	h := &v1.HealthConfig{}
	for _, f := range node.Flags {
		name, value, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if !ok {
			return nil, invalid("HEALTHCHECK option %s needs a value (--%s=VALUE)", f, name)
		}
		var err error
		switch name {
		case "interval":
			h.Interval, err = healthDuration(name, value)
		case "timeout":
			h.Timeout, err = healthDuration(name, value)
		case "start-period":
			h.StartPeriod, err = healthDuration(name, value)
		case "retries":
			var n int64
			if n, err = strconv.ParseInt(value, 10, 32); err != nil || n < 0 {
				err = invalid("HEALTHCHECK --retries=%s: want a number ≥ 0", value)
			}
			h.Retries = int(n)
		default:
			err = invalid("HEALTHCHECK: unknown option --%s (--interval, --timeout, --start-period, --retries)", name)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(args) == 0 {
		return nil, invalid("HEALTHCHECK needs NONE or CMD")
	}
	switch typ, cmd := strings.ToUpper(args[0]), args[1:]; {
	case typ == "NONE":
		if len(cmd) > 0 || len(node.Flags) > 0 {
			return nil, invalid("HEALTHCHECK NONE takes no arguments")
		}
		return &v1.HealthConfig{Test: []string{"NONE"}}, nil
	case typ != "CMD":
		return nil, invalid("HEALTHCHECK: unknown type %q (try CMD or NONE)", args[0])
	case len(cmd) == 0:
		return nil, invalid("HEALTHCHECK CMD needs a command")
	case isJSON:
		h.Test = append([]string{"CMD"}, cmd...)
	default:
		h.Test = []string{"CMD-SHELL", strings.Join(cmd, " ")}
	}
	return h, nil
}

// healthDuration parses a HEALTHCHECK duration: 0, or at least 1ms.
func healthDuration(name, value string) (time.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil || (d != 0 && d < time.Millisecond) {
		return 0, invalid("HEALTHCHECK --%s=%s: want a duration of at least 1ms, such as 30s", name, value)
	}
	return d, nil
}
