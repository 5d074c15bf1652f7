package image

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func instruction(t *testing.T, line string) instructions.Command {
	t.Helper()
	res, err := parser.Parse(strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	v, err := instructions.ParseInstruction(res.AST.Children[0])
	if err != nil {
		t.Fatal(err)
	}
	return v.(instructions.Command)
}

// What only a build applies (SHELL, MAINTAINER), and the CMD a Configurer
// remembers for a later ENTRYPOINT.
func TestConfigurer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  v1.Config
	}{
		{"SHELL then shell form", []string{`SHELL ["/bin/bash", "-c"]`, `CMD ls`},
			v1.Config{Shell: []string{"/bin/bash", "-c"}, Cmd: []string{"/bin/bash", "-c", "ls"}}},
		{"MAINTAINER", []string{`MAINTAINER me@example.org`}, v1.Config{Cmd: []string{"base"}, Labels: map[string]string{"maintainer": "me@example.org"}}},
		{"ENTRYPOINT drops the base CMD", []string{`ENTRYPOINT ["/init"]`}, v1.Config{Entrypoint: []string{"/init"}}},
		{"ENTRYPOINT keeps a CMD applied before it", []string{`CMD ["-v"]`, `ENTRYPOINT ["/init"]`},
			v1.Config{Cmd: []string{"-v"}, Entrypoint: []string{"/init"}}},
		{"an empty CMD is not a CMD set", []string{`CMD []`, `ENTRYPOINT ["/init"]`}, v1.Config{Entrypoint: []string{"/init"}}},
	} {
		cfg := v1.Config{Cmd: []string{"base"}}
		c := NewConfigurer(&cfg)
		for _, l := range tc.lines {
			if err := c.Apply(instruction(t, l)); err != nil {
				t.Fatalf("%s: %s: %v", tc.name, l, err)
			}
		}
		if !reflect.DeepEqual(cfg, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, cfg, tc.want)
		}
	}
	for line, class := range map[string]error{
		`STOPSIGNAL SIGNOPE`: errdefs.ErrInvalidArgument,
		`EXPOSE 80/icmp`:     errdefs.ErrInvalidArgument,
		`RUN true`:           errdefs.ErrNotImplemented,
	} {
		if err := NewConfigurer(&v1.Config{}).Apply(instruction(t, line)); !errors.Is(err, class) {
			t.Errorf("%s: %v, want %v", line, err, class)
		}
	}
}
