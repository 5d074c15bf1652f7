package build

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// envIndex finds the variables of a state's config by name, without a scan
// of its Env per instruction, which would make a file of N ENV lines cost
// N². A state builds it when first asked and keeps it while only setEnv
// changes the environment.
type envIndex struct {
	first map[string]int // the one ENV replaces
	last  map[string]int // the one expansion reads (a base image may have a name twice)
}

func (s *state) envIndex() *envIndex {
	if s.env == nil {
		x := &envIndex{first: map[string]int{}, last: map[string]int{}}
		for i, kv := range s.cfg.Config.Env {
			k, _, _ := strings.Cut(kv, "=")
			k = shell.NormalizeEnvKey(k)
			if _, ok := x.first[k]; !ok {
				x.first[k] = i
			}
			x.last[k] = i
		}
		s.env = x
	}
	return s.env
}

// getEnv returns the value of variable key, the last of that name, as the
// shell lexer's EnvsFromSlice reads an environment.
func (s *state) getEnv(key string) (string, bool) {
	i, ok := s.envIndex().last[shell.NormalizeEnvKey(key)]
	if !ok {
		return "", false
	}
	_, v, _ := strings.Cut(s.cfg.Config.Env[i], "=")
	return v, true
}

// setEnv sets variable key to value as image.SetEnv does: in place of the
// first of that name, or else at the end.
func (s *state) setEnv(key, value string) {
	x, k := s.envIndex(), shell.NormalizeEnvKey(key)
	if i, ok := x.first[k]; ok {
		s.cfg.Config.Env[i] = key + "=" + value
		return
	}
	s.cfg.Config.Env = append(s.cfg.Config.Env, key+"="+value)
	x.first[k], x.last[k] = len(s.cfg.Config.Env)-1, len(s.cfg.Config.Env)-1
}

// configure applies cmd, an instruction that only edits the config, to s:
// ENV through the index, the others as configure does.
func (s *state) configure(cmd instructions.Command) error {
	if env, ok := cmd.(*instructions.EnvCommand); ok {
		for _, kv := range env.Env {
			s.setEnv(kv.Key, kv.Value)
		}
		return nil
	}
	return configure(&s.cfg.Config, cmd)
}

// envLookup is the environment instructions expand in: the state's, then
// the build arguments the stage declared that no ENV overrides, as
// stageScope.env has it, looked up a name at a time.
type envLookup struct {
	s  *state
	sc *stageScope
}

func (l envLookup) Get(key string) (string, bool) {
	if v, ok := l.s.getEnv(key); ok {
		return v, true
	}
	v, ok := l.sc.args[key]
	return v, ok
}

func (l envLookup) Keys() []string {
	var keys []string
	for _, kv := range l.sc.env(&l.s.cfg.Config) {
		k, _, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
	}
	return keys
}
