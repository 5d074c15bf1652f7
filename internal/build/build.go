package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	digest "github.com/opencontainers/go-digest"
)

// Options say what to build and how, as docker build's flags do.
type Options struct {
	// ContextDir is the build context, the directory COPY and ADD read.
	ContextDir string
	// File names the Containerfile for messages ("Containerfile");
	// Source is its content.
	File   string
	Source []byte
	// Tags name the image (fully qualified references); none leaves it
	// without a name.
	Tags      []string
	BuildArgs map[string]string
	// Target is the stage to build; "" means the last one.
	Target string
	// Platform is the image's platform; nil means the host's. RUN needs
	// the host's.
	Platform *v1.Platform
	NoCache  bool
	// Pull pulls every FROM image, even one the store has.
	Pull   bool
	Labels map[string]string
	// Network is RUN's network: bridge (default), none or host.
	Network string
	// FetchTimeout is how long ADD waits for a URL's server to connect,
	// to answer, and to send more of a download; 0 means
	// DefaultFetchTimeout.
	FetchTimeout time.Duration
	Registry     image.RegistryOptions
	// Out receives the steps and RUN's output; nil discards them.
	Out io.Writer
	// WorkDir holds the build's scratch directories; it must be on the
	// file system of the image store (layers are moved, not copied).
	WorkDir string
}

// Build builds the image o describes with the engine e and returns it.
func Build(ctx context.Context, e *container.Engine, o Options) (*image.Image, error) {
	b, err := newBuilder(ctx, e, o)
	if err != nil {
		return nil, err
	}
	defer b.close()
	release, err := b.images.Hold()
	if err != nil {
		return nil, err
	}
	defer release()
	final, err := b.stage(ctx, b.target)
	// The finished steps' cache entries are written even if a later one
	// failed, and before the store lock goes: until then, nothing else
	// keeps their layers.
	if ferr := b.flush(); err == nil && ferr != nil {
		err = fmt.Errorf("build cache: %w", ferr)
	}
	if err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(b.o.BuildArgs)) {
		if !b.usedArgs[k] {
			b.printf("[Warning] build argument %s is not declared by any ARG in %s; it was not used\n", k, b.o.File)
		}
	}
	cfg := final.cfg.DeepCopy()
	if len(b.o.Labels) > 0 {
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		maps.Copy(cfg.Config.Labels, b.o.Labels)
	}
	// The image is as old as its newest step, so that an unchanged
	// rebuild, all cache hits, gives the very same image.
	if n := len(cfg.History); n > 0 {
		cfg.Created = cfg.History[n-1].Created
	}
	if len(b.o.Tags) > 0 {
		b.printf("COMMIT %s\n", b.o.Tags[0])
	}
	img, err := b.images.AddImage(ctx, cfg, final.layers, b.o.Tags)
	if err != nil {
		return nil, err
	}
	for _, t := range b.o.Tags {
		b.printf("Successfully tagged %s\n", t)
	}
	return img, nil
}

// builder is one build in progress.
type builder struct {
	o         Options
	e         *container.Engine
	images    *image.Store
	escape    rune
	stages    []instructions.Stage
	metaArgs  []instructions.ArgCommand
	target    int
	done      map[int]*state
	usedArgs  map[string]bool
	downloads map[string]*download
	pending   map[string]*image.CacheEntry // cache entries not written yet, see remember
	work      string                       // this build's directory under o.WorkDir
	workLock  *os.File                     // holds it locked, see claimWork
	// get looks up a cache entry (see execAll).
	get   func(key string) (*image.CacheEntry, error)
	step  int
	steps int
	ctx   *buildContext
}

// state is the image a stage has made so far. Each step changes it in
// place (a copy per step would make a build of N steps cost N²), so a
// state that another stage starts from is cloned first.
type state struct {
	cfg    *v1.ConfigFile
	layers []image.Layer
	// key identifies everything that led to this state: the cache key of
	// the next step derives from it.
	key string
	env *envIndex // nil until asked for, see envIndex
}

func (s *state) chainID() digest.Digest {
	if len(s.layers) == 0 {
		return ""
	}
	return s.layers[len(s.layers)-1].ChainID
}

// parse parses a Containerfile into a builder with its stages, the target
// and the number of steps, with nothing opened yet.
func parse(o Options) (*builder, error) {
	res, err := parser.Parse(bytes.NewReader(o.Source))
	if err != nil {
		return nil, locate(o.File, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, locate(o.File, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s has no FROM: %w", o.File, errdefs.ErrInvalidArgument)
	}
	b := &builder{o: o, escape: res.EscapeToken, stages: stages, metaArgs: metaArgs,
		target: len(stages) - 1, done: map[int]*state{}, usedArgs: map[string]bool{}, downloads: map[string]*download{},
		pending: map[string]*image.CacheEntry{}}
	if o.Target != "" {
		i := b.stageIndex(o.Target)
		if i < 0 {
			return nil, fmt.Errorf("build: %s has no stage named %q (it has %s): %w", o.File, o.Target, b.stageNames(), errdefs.ErrNotFound)
		}
		b.target = i
	}
	b.steps = b.countSteps(b.target, map[int]bool{})
	return b, nil
}

func newBuilder(ctx context.Context, e *container.Engine, o Options) (*builder, error) {
	if o.Network == "" {
		o.Network = "bridge"
	}
	switch o.Network {
	case "bridge", "none", "host":
	default:
		return nil, fmt.Errorf("build: network %q: want bridge, none or host: %w", o.Network, errdefs.ErrInvalidArgument)
	}
	if o.Platform == nil {
		o.Platform = image.HostPlatform()
	}
	b, err := parse(o)
	if err != nil {
		return nil, err
	}
	b.e, b.images = e, e.Images()
	if b.ctx, err = openContext(o.ContextDir); err != nil {
		return nil, err
	}
	if err := b.claimWork(ctx); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// locate rewrites a parser error as "FILE:LINE: message".
func locate(file string, err error) error {
	var loc *parser.LocationError
	if errors.As(err, &loc) && len(loc.Locations) > 0 && len(loc.Locations[0]) > 0 {
		return fmt.Errorf("%s:%d: %v: %w", file, loc.Locations[0][0].Start.Line, loc.Unwrap(), errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("%s: %v: %w", file, err, errdefs.ErrInvalidArgument)
}

// at prefixes an instruction's error with its place in the file.
func (b *builder) at(cmd instructions.Command, err error) error {
	line := 0
	if l := cmd.Location(); len(l) > 0 {
		line = l[0].Start.Line
	}
	return fmt.Errorf("%s:%d: %s: %w", b.o.File, line, cmd.Name(), err)
}

func (b *builder) printf(format string, args ...any) {
	if b.o.Out != nil {
		fmt.Fprintf(b.o.Out, format, args...)
	}
}

// stageIndex finds a stage by name or number; -1 if there is none.
func (b *builder) stageIndex(name string) int {
	for i, s := range b.stages {
		if s.Name != "" && strings.EqualFold(s.Name, name) {
			return i
		}
	}
	if n, err := strconv.Atoi(name); err == nil && strconv.Itoa(n) == name && n >= 0 && n < len(b.stages) {
		return n
	}
	return -1
}

func (b *builder) stageNames() string {
	var names []string
	for i, s := range b.stages {
		if s.Name != "" {
			names = append(names, s.Name)
		} else {
			names = append(names, fmt.Sprint(i))
		}
	}
	return strings.Join(names, ", ")
}

// deps returns the earlier stages stage i needs: its base and COPY --from.
func (b *builder) deps(i int) []int {
	var out []int
	add := func(name string) {
		if j := b.stageIndex(name); j >= 0 && j < i && !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	add(b.expandMeta(b.stages[i].BaseName))
	for _, c := range b.stages[i].Commands {
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
			add(cp.From)
		}
	}
	return out
}

// countSteps counts the instructions (FROM included) of stage i and the
// stages it needs, each stage once.
func (b *builder) countSteps(i int, seen map[int]bool) int {
	if seen[i] {
		return 0
	}
	seen[i] = true
	n := 1 + len(b.stages[i].Commands)
	for _, d := range b.deps(i) {
		n += b.countSteps(d, seen)
	}
	return n
}

// stage builds stage i (after the stages it needs) and returns its result.
func (b *builder) stage(ctx context.Context, i int) (*state, error) {
	if s, ok := b.done[i]; ok {
		return s, nil
	}
	for _, d := range b.deps(i) {
		if _, err := b.stage(ctx, d); err != nil {
			return nil, err
		}
	}
	st := b.stages[i]
	b.step++
	b.printf("STEP %d/%d: %s\n", b.step, b.steps, st.SourceCode)
	s, err := b.from(ctx, i)
	if err != nil {
		return nil, err
	}
	sc := &stageScope{args: map[string]string{}}
	triggers := s.cfg.Config.OnBuild
	if len(triggers) > 0 {
		s = s.with(func(cfg *v1.ConfigFile) { cfg.Config.OnBuild = nil })
		cmds := make([]instructions.Command, len(triggers))
		for j, t := range triggers {
			if cmds[j], err = parseTrigger(t); err != nil {
				return nil, fmt.Errorf("%s: ONBUILD trigger %q of the base image: %w", b.o.File, t, err)
			}
		}
		if s, err = b.execAll(ctx, s, sc, cmds, false); err != nil {
			return nil, err
		}
	}
	if s, err = b.execAll(ctx, s, sc, st.Commands, true); err != nil {
		return nil, err
	}
	b.done[i] = s
	return s, nil
}

// execAll carries out cmds on s in order, counting them as steps if
// counted. A file may have thousands of instructions in a row that only
// edit the config, each done in microseconds: each such run looks its
// cache entries up through one opening of the image index, which costs
// more than a lookup. Nothing in such a run writes to the store.
func (b *builder) execAll(ctx context.Context, s *state, sc *stageScope, cmds []instructions.Command, counted bool) (*state, error) {
	for len(cmds) > 0 {
		n := 1
		if !makesLayer(cmds[0]) {
			for n < len(cmds) && !makesLayer(cmds[n]) {
				n++
			}
		}
		run := func(get func(string) (*image.CacheEntry, error)) error {
			b.get = get
			defer func() { b.get = nil }()
			for _, cmd := range cmds[:n] {
				if counted {
					b.step++
					b.printf("STEP %d/%d: %s\n", b.step, b.steps, cmd)
				}
				var err error
				if s, err = b.exec(ctx, s, sc, cmd); err != nil {
					return err
				}
			}
			return nil
		}
		var err error
		if makesLayer(cmds[0]) || b.o.NoCache {
			err = run(b.images.CacheGet)
		} else {
			err = b.images.CacheView(run)
		}
		if err != nil {
			return nil, err
		}
		cmds = cmds[n:]
	}
	return s, nil
}

func parseTrigger(t string) (instructions.Command, error) {
	res, err := parser.Parse(strings.NewReader(t))
	if err != nil || len(res.AST.Children) != 1 {
		return nil, fmt.Errorf("not one instruction: %w", errdefs.ErrInvalidArgument)
	}
	v, err := instructions.ParseInstruction(res.AST.Children[0])
	if err != nil {
		return nil, err
	}
	cmd, ok := v.(instructions.Command)
	if !ok {
		return nil, fmt.Errorf("%s is not allowed here: %w", res.AST.Children[0].Value, errdefs.ErrInvalidArgument)
	}
	return cmd, nil
}

// withLayer puts layer on top of s, recorded in the config's history, and
// returns s.
func (s *state) withLayer(layer image.Layer, createdBy string) *state {
	s.addLayer(layer)
	s.cfg.History = append(s.cfg.History, v1.History{Created: v1.Time{Time: time.Now().UTC()}, CreatedBy: createdBy})
	return s
}

// addLayer puts layer on top of s.
func (s *state) addLayer(layer image.Layer) {
	s.cfg.RootFS.Type = "layers"
	s.cfg.RootFS.DiffIDs = append(s.cfg.RootFS.DiffIDs, v1.Hash{Algorithm: layer.DiffID.Algorithm().String(), Hex: layer.DiffID.Encoded()})
	s.layers = append(s.layers, layer)
}

// with changes s by fn and returns it.
func (s *state) with(fn func(cfg *v1.ConfigFile)) *state {
	fn(s.cfg)
	s.env = nil // fn may have changed the environment
	return s
}

// clone returns a copy of s that can be changed without changing s.
func (s *state) clone() *state {
	return &state{cfg: s.cfg.DeepCopy(), layers: slices.Clone(s.layers), key: s.key}
}

// metaEnv is the environment FROM lines expand in: the ARGs before the
// first FROM, as --build-arg overrides them.
func (b *builder) metaEnv() shell.EnvGetter {
	var env []string
	for _, a := range b.metaArgs {
		for _, kv := range a.Args {
			if v, ok := b.o.BuildArgs[kv.Key]; ok {
				b.usedArgs[kv.Key] = true
				env = append(env, kv.Key+"="+v)
			} else if kv.Value != nil {
				env = append(env, kv.Key+"="+*kv.Value)
			}
		}
	}
	return shell.EnvsFromSlice(env)
}

func (b *builder) expandMeta(word string) string {
	s, _, err := shell.NewLex(b.escape).ProcessWord(word, b.metaEnv())
	if err != nil {
		return word
	}
	return s
}

// from resolves stage i's base: scratch, an earlier stage or an image.
func (b *builder) from(ctx context.Context, i int) (*state, error) {
	st := b.stages[i]
	base := b.expandMeta(st.BaseName)
	if st.Platform != "" {
		p, err := image.ParsePlatform(b.expandMeta(st.Platform))
		if err != nil {
			return nil, fmt.Errorf("%s: FROM --platform: %w", b.o.File, err)
		}
		if p.OS != b.o.Platform.OS || p.Architecture != b.o.Platform.Architecture {
			return nil, fmt.Errorf("%s: FROM --platform=%s: only the build's platform %s is supported: %w", b.o.File, st.Platform, platformString(b.o.Platform), errdefs.ErrNotImplemented)
		}
	}
	if base == "scratch" {
		cfg := &v1.ConfigFile{OS: b.o.Platform.OS, Architecture: b.o.Platform.Architecture, Variant: b.o.Platform.Variant,
			RootFS: v1.RootFS{Type: "layers"}}
		cfg.Config.Env = []string{"PATH=" + defaultPath}
		return &state{cfg: cfg, key: keyOf("scratch", platformString(b.o.Platform))}, nil
	}
	if j := b.stageIndex(base); j >= 0 && j < i {
		return b.done[j].clone(), nil
	}
	img, err := b.image(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("%s: FROM %s: %w", b.o.File, base, err)
	}
	return b.imageState(img)
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// image finds name in the store, pulling it if it is missing (or always,
// with Pull).
func (b *builder) image(ctx context.Context, name string) (*image.Image, error) {
	policy := image.PullMissing
	if b.o.Pull {
		policy = image.PullAlways
	}
	progress := &image.Progress{Step: func(format string, args ...any) { b.printf(format+"\n", args...) }}
	return b.images.Ensure(ctx, name, policy, image.PullOptions{RegistryOptions: b.o.Registry, Platform: b.o.Platform, Progress: progress})
}

// imageState is the state an image makes, checked against the platform.
func (b *builder) imageState(img *image.Image) (*state, error) {
	raw, err := b.images.Config(img)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", img.ID, err)
	}
	if cfg.OS != b.o.Platform.OS || cfg.Architecture != b.o.Platform.Architecture {
		return nil, fmt.Errorf("image %s is for %s/%s, the build for %s: %w", img.ID, cfg.OS, cfg.Architecture, platformString(b.o.Platform), errdefs.ErrInvalidArgument)
	}
	return &state{cfg: cfg, layers: slices.Clone(img.Layers), key: keyOf("image", img.ID.String())}, nil
}

func platformString(p *v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// keyOf hashes parts into a cache key.
func keyOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// randomName is a name for a build's container.
func randomName() string {
	var p [6]byte
	rand.Read(p[:])
	return "berth-build-" + hex.EncodeToString(p[:])
}
