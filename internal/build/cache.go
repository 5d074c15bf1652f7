package build

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/berth-dev/berth/internal/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
)

// The build cache keeps, under each step's key (see keyOf), only what the
// step added: its history entry and its layer. Storing the whole config
// after each step, as berth did before, made a build of N steps store N
// configs of up to N history entries and environment variables, N² in
// all. A hit replays the step on the state before it: the layer and the
// history entry are appended, and an instruction that only edits the
// config is applied again. That gives the config the step once gave, as
// the key names both the instruction, expanded, and the state it was
// applied to. Entries of the old kind, whole configs, are still used as
// they are.

// stepRecord is the builder's part of a cache entry (image.CacheEntry.Step).
type stepRecord struct {
	History []v1.History `json:"history"`
}

// cached returns the state after cmd as the cache entry under key has it,
// or nil if there is none. The new state is s changed in place; a miss
// leaves s as it was.
func (b *builder) cached(s *state, cmd instructions.Command, key string) (*state, error) {
	if b.o.NoCache {
		return nil, nil
	}
	e, err := b.get(key)
	if err != nil {
		return nil, nil
	}
	if len(e.Config) > 0 { // the old kind: the whole state
		cfg, err := v1.ParseConfigFile(bytes.NewReader(e.Config))
		if err != nil {
			return nil, nil
		}
		return &state{cfg: cfg, layers: e.Layers, key: key}, nil
	}
	var rec stepRecord
	if json.Unmarshal(e.Step, &rec) != nil || len(rec.History) == 0 {
		return nil, nil
	}
	// The step's layers must have been made on s's: if an earlier step
	// ran again (its entry lost), they were made on layers s no longer has.
	chain := s.chainID()
	for _, l := range e.Layers {
		if chainOf(chain, l.DiffID) != l.ChainID {
			return nil, nil
		}
		chain = l.ChainID
	}
	if !makesLayer(cmd) {
		if err := s.configure(cmd); err != nil {
			return nil, err
		}
	}
	for _, l := range e.Layers {
		s.addLayer(l)
	}
	s.cfg.History = append(s.cfg.History, rec.History...)
	s.key = key
	return s, nil
}

// remember queues the cache entry of the step that made s from a state
// with history entries and layers: what it added beyond those. A step
// that made a layer writes the queue at once (a layer is costly to make
// again); the others wait for it, or for the end of the build, so that a
// file of many ENV or LABEL lines costs one write, not one each.
func (b *builder) remember(s *state, history, layers int) error {
	raw, err := json.Marshal(stepRecord{History: s.cfg.History[history:]})
	if err != nil {
		return err
	}
	b.pending[s.key] = &image.CacheEntry{Step: raw, Layers: slices.Clone(s.layers[layers:])}
	if len(s.layers) > layers {
		return b.flush()
	}
	return nil
}

// flush writes the queued cache entries.
func (b *builder) flush() error {
	if len(b.pending) == 0 {
		return nil
	}
	err := b.images.CachePutAll(b.pending)
	clear(b.pending)
	return err
}

// makesLayer reports whether cmd adds a layer; the other instructions
// (ARG aside) only edit the config.
func makesLayer(cmd instructions.Command) bool {
	switch cmd.(type) {
	case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand:
		return true
	}
	return false
}

// chainOf is the chain ID of a layer with diffID on the layers whose chain
// ID is parent ("" for none).
func chainOf(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return identity.ChainID([]digest.Digest{parent, diffID})
}
