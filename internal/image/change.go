package image

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
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
// environment, as in a Containerfile. A Configurer applies them.
//
// A change that is not one such valid instruction is an
// errdefs.ErrInvalidArgument naming it; cfg is then left as it was.
func ApplyChanges(cfg *v1.Config, changes []string) error {
	work := cfg.DeepCopy()
	c := NewConfigurer(work)
	for _, change := range changes {
		if err := applyChange(c, change); err != nil {
			return fmt.Errorf("change %q: %w", change, err)
		}
	}
	*cfg = *work
	return nil
}

// applyChange checks one change, parses it into its instruction, expands
// its words in the environment of the config c edits and has c apply it.
func applyChange(c *Configurer, change string) error {
	node, err := parseChange(change)
	if err != nil {
		return err
	}
	name := strings.ToUpper(node.Value)
	if err := checkChange(node, name); err != nil {
		return err
	}
	v, err := instructions.ParseInstruction(node)
	if err != nil {
		return invalid("%v", withoutLocation(err))
	}
	cmd := v.(instructions.Command)
	lex := shell.NewLex(parser.DefaultEscapeToken)
	env := shell.EnvsFromSlice(c.cfg.Env)
	word := func(w string) (string, error) {
		s, _, err := lex.ProcessWord(w, env)
		return s, err
	}
	switch ins := cmd.(type) {
	case *instructions.ExposeCommand: // BuildKit expands its ports later, not in Expand
		for i, p := range ins.Ports {
			if ins.Ports[i], err = word(p); err != nil {
				break
			}
		}
	case instructions.SupportsSingleWordExpansion:
		err = ins.Expand(word)
	}
	if err != nil {
		return invalid("%s: %v", name, err)
	}
	if err := checkExpanded(cmd, name); err != nil {
		return err
	}
	return c.Apply(cmd)
}

// checkChange refuses what a change may not hold, before it is parsed
// further: instructions other than changeInstructions, options (but
// HEALTHCHECK's), and the wrong number of arguments.
func checkChange(node *parser.Node, name string) error {
	if !slices.Contains(changeInstructions, name) {
		return invalid("%s cannot be used in a change (only %s)", name, strings.Join(changeInstructions, ", "))
	}
	if name != "HEALTHCHECK" && len(node.Flags) > 0 {
		return invalid("%s takes no options (%s); write arguments that start with -- in JSON form", name, strings.Join(node.Flags, " "))
	}
	args := nodeArgs(node)
	switch name {
	case "ENV", "LABEL":
		if len(args) == 0 || len(args)%3 != 0 {
			return invalid("%s needs NAME=VALUE pairs", name)
		}
	case "EXPOSE":
		if len(args) == 0 {
			return invalid("EXPOSE needs at least one port")
		}
	case "HEALTHCHECK":
		return checkHealthcheck(node, args)
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
	case "STOPSIGNAL", "USER", "WORKDIR":
		if len(args) != 1 {
			return invalid("%s needs exactly one argument", name)
		}
	case "VOLUME":
		if len(args) == 0 {
			return invalid("VOLUME needs at least one path")
		}
	}
	return nil
}

// checkExpanded refuses what expanding a change's variables left empty.
// A CMD or ENTRYPOINT without arguments is made to clear the command, in
// either form.
func checkExpanded(cmd instructions.Command, name string) error {
	var kvs instructions.KeyValuePairs
	switch ins := cmd.(type) {
	case *instructions.EnvCommand:
		kvs = ins.Env
	case *instructions.LabelCommand:
		kvs = ins.Labels
	case *instructions.StopSignalCommand:
		if ins.Signal == "" {
			return invalid("%s needs exactly one argument", name)
		}
	case *instructions.UserCommand:
		if ins.User == "" {
			return invalid("%s needs exactly one argument", name)
		}
	case *instructions.WorkdirCommand:
		if ins.Path == "" {
			return invalid("%s needs exactly one argument", name)
		}
	case *instructions.CmdCommand:
		ins.PrependShell = ins.PrependShell && len(ins.CmdLine) > 0
	case *instructions.EntrypointCommand:
		ins.PrependShell = ins.PrependShell && len(ins.CmdLine) > 0
	}
	for _, kv := range kvs {
		if kv.Key == "" {
			return invalid("%s names can not be blank", name)
		}
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
		return nil, invalid("%v", withoutLocation(err))
	}
	if len(res.AST.Children) != 1 {
		return nil, invalid("a change is one instruction, this has %d", len(res.AST.Children))
	}
	// A bare CMD or ENTRYPOINT would clear it: say what is missing.
	if n := res.AST.Children[0]; n.Next == nil && len(n.Flags) == 0 && (word == "CMD" || word == "ENTRYPOINT") {
		return nil, invalid("%s needs a command, as %s [\"sh\"]", word, word)
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
	return slices.Contains(changeInstructions, word)
}

// withoutLocation drops the line number the parser adds: a change is one
// line.
func withoutLocation(err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) {
		return le.Unwrap()
	}
	return err
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

// checkHealthcheck refuses a HEALTHCHECK other than NONE or [OPTIONS] CMD …
// with the options the image config holds.
func checkHealthcheck(node *parser.Node, args []string) error {
	for _, f := range node.Flags {
		name, value, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if !ok {
			return invalid("HEALTHCHECK option %s needs a value (--%s=VALUE)", f, name)
		}
		switch name {
		case "interval", "timeout", "start-period":
			d, err := time.ParseDuration(value)
			if err != nil || (d != 0 && d < time.Millisecond) {
				return invalid("HEALTHCHECK --%s=%s: want a duration of at least 1ms, such as 30s", name, value)
			}
		case "retries":
			if n, err := strconv.ParseInt(value, 10, 32); err != nil || n < 0 {
				return invalid("HEALTHCHECK --retries=%s: want a number ≥ 0", value)
			}
		default:
			return invalid("HEALTHCHECK: unknown option --%s (--interval, --timeout, --start-period, --retries)", name)
		}
	}
	if len(args) == 0 {
		return invalid("HEALTHCHECK needs NONE or CMD")
	}
	switch typ, cmd := strings.ToUpper(args[0]), args[1:]; {
	case typ == "NONE":
		if len(cmd) > 0 || len(node.Flags) > 0 {
			return invalid("HEALTHCHECK NONE takes no arguments")
		}
	case typ != "CMD":
		return invalid("HEALTHCHECK: unknown type %q (try CMD or NONE)", args[0])
	case len(cmd) == 0:
		return invalid("HEALTHCHECK CMD needs a command")
	}
	return nil
}
