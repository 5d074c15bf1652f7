package build

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// stageScope is what a stage's instructions see besides the image config:
// the build arguments it declared, with their values.
type stageScope struct {
	args  map[string]string
	order []string
}

// env is the environment instructions expand in and RUN gets: the image's,
// then the declared build arguments that no ENV overrides.
func (sc *stageScope) env(cfg *v1.Config) []string {
	env := slices.Clone(cfg.Env)
	for _, k := range sc.order {
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") }) {
			env = append(env, k+"="+sc.args[k])
		}
	}
	return env
}

// exec carries out one instruction on s and returns the new state.
func (b *builder) exec(ctx context.Context, s *state, sc *stageScope, cmd instructions.Command) (*state, error) {
	// Words expand in the stage's environment; the bodies of COPY's
	// here-documents too, keeping their quotes.
	env := envLookup{s: s, sc: sc}
	expander := func(keepQuotes bool) instructions.SingleWordExpander {
		lex := shell.NewLex(b.escape)
		lex.SkipProcessQuotes = keepQuotes
		return func(word string) (string, error) {
			out, _, err := lex.ProcessWord(word, env)
			return out, err
		}
	}
	var err error
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		err = ex.Expand(expander(false))
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok && err == nil {
		err = ex.ExpandRaw(expander(true))
	}
	if err != nil {
		return nil, b.at(cmd, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument))
	}
	if a, ok := cmd.(*instructions.ArgCommand); ok {
		return b.arg(s, sc, a), nil
	}
	// What the key depends on besides the instruction's line: the sources'
	// content, and here-documents' text.
	var inputs string
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		inputs, err = b.copyInputs(ctx, c.From, c.SourcePaths)
		inputs += contentsKey(c.SourceContents)
	case *instructions.AddCommand:
		inputs, err = b.addInputs(ctx, c)
		inputs += contentsKey(c.SourceContents)
	case *instructions.RunCommand:
		for _, f := range c.Files {
			inputs += fmt.Sprintf("\n%q %q %t", f.Name, f.Data, f.Chomp)
		}
	}
	if err != nil {
		return nil, b.at(cmd, err)
	}
	key := keyOf(s.key, code(cmd), inputs)
	if hit, err := b.cached(s, cmd, key); err != nil {
		return nil, b.at(cmd, err)
	} else if hit != nil {
		b.printf("--> Using cache %s\n", key[:12])
		return hit, nil
	}
	history, layers := len(s.cfg.History), len(s.layers)
	next, err := b.apply(ctx, s, sc, cmd)
	if err != nil {
		return nil, b.at(cmd, err)
	}
	next.key = key
	if err := b.remember(next, history, layers); err != nil {
		return nil, b.at(cmd, err)
	}
	return next, nil
}

// arg declares build arguments in the stage: the --build-arg value, else
// the default, else the value of the same ARG before the first FROM.
func (b *builder) arg(s *state, sc *stageScope, a *instructions.ArgCommand) *state {
	var parts []string
	for _, kv := range a.Args {
		v, ok := b.o.BuildArgs[kv.Key]
		if ok {
			b.usedArgs[kv.Key] = true
		} else if kv.Value != nil {
			v, ok = *kv.Value, true
		} else if pv, found := b.predefined(kv.Key); found {
			v, ok = pv, true
		}
		if !ok {
			for _, m := range b.metaArgs {
				for _, mkv := range m.Args {
					if mkv.Key == kv.Key && mkv.Value != nil {
						v, ok = b.expandMeta(*mkv.Value), true
					}
				}
			}
		}
		if !ok {
			continue
		}
		if _, seen := sc.args[kv.Key]; !seen {
			sc.order = append(sc.order, kv.Key)
		}
		sc.args[kv.Key] = v
		parts = append(parts, kv.Key+"="+v)
	}
	s.key = keyOf(s.key, "ARG", strings.Join(parts, "\n"))
	return s
}

// predefined are the platform arguments BuildKit defines for every build.
func (b *builder) predefined(name string) (string, bool) {
	host := image.HostPlatform()
	p := b.o.Platform
	switch name {
	case "TARGETPLATFORM":
		return platformString(p), true
	case "TARGETOS":
		return p.OS, true
	case "TARGETARCH":
		return p.Architecture, true
	case "TARGETVARIANT":
		return p.Variant, true
	case "BUILDPLATFORM":
		return platformString(host), true
	case "BUILDOS":
		return host.OS, true
	case "BUILDARCH":
		return host.Architecture, true
	}
	return "", false
}

// apply carries out cmd, which no cache entry had, on s in place.
func (b *builder) apply(ctx context.Context, s *state, sc *stageScope, cmd instructions.Command) (*state, error) {
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		return b.run(ctx, s, sc, c)
	case *instructions.CopyCommand:
		return b.copy(ctx, s, copyOp{from: c.From, sources: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
			chown: c.Chown, chmod: c.Chmod, exclude: c.ExcludePatterns, parents: c.Parents, code: code(c)})
	case *instructions.AddCommand:
		if c.Checksum != "" && (len(c.SourcePaths) != 1 || !isURL(c.SourcePaths[0])) {
			return nil, fmt.Errorf("--checksum needs one URL source: %w", errdefs.ErrInvalidArgument)
		}
		return b.copy(ctx, s, copyOp{sources: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath, chown: c.Chown,
			chmod: c.Chmod, exclude: c.ExcludePatterns, add: true, unpack: c.Unpack == nil || *c.Unpack, checksum: c.Checksum, code: code(c)})
	}
	if err := s.configure(cmd); err != nil {
		return nil, err
	}
	s.cfg.History = append(s.cfg.History, v1.History{Created: v1.Time{Time: time.Now().UTC()}, CreatedBy: code(cmd), EmptyLayer: true})
	return s, nil
}

// configure applies an instruction that only changes the image's config.
// Each instruction is applied on its own (its result is cached on its own),
// so a new ENTRYPOINT always drops the CMD before it.
func configure(cfg *v1.Config, cmd instructions.Command) error {
	return image.NewConfigurer(cfg).Apply(cmd)
}

// argPrefix is how Docker's history shows the build arguments a RUN had:
// "|2 A=1 B=2 ".
func argPrefix(sc *stageScope) string {
	if len(sc.order) == 0 {
		return ""
	}
	keys := slices.Clone(sc.order)
	slices.Sort(keys)
	parts := []string{fmt.Sprintf("|%d", len(keys))}
	for _, k := range keys {
		parts = append(parts, k+"="+sc.args[k])
	}
	return strings.Join(parts, " ") + " "
}

func contentsKey(contents []instructions.SourceContent) string {
	var sb strings.Builder
	for _, c := range contents {
		fmt.Fprintf(&sb, "\n%q %q", c.Path, c.Data)
	}
	return sb.String()
}

// code is an instruction as written in the file.
func code(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return s.String()
	}
	return cmd.Name()
}
