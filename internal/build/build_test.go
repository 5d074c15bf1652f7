package build

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

func parseOne(t *testing.T, line string) instructions.Command {
	t.Helper()
	res, err := parser.Parse(strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	v, err := instructions.ParseInstruction(res.AST.Children[0])
	if err != nil {
		t.Fatal(err)
	}
	if ex, ok := v.(instructions.SupportsSingleWordExpansion); ok {
		lex := shell.NewLex('\\')
		ex.Expand(func(w string) (string, error) {
			s, _, err := lex.ProcessWord(w, shell.EnvsFromSlice(nil))
			return s, err
		})
	}
	return v.(instructions.Command)
}

func TestConfigure(t *testing.T) {
	cfg := v1.Config{Cmd: []string{"base-cmd"}, WorkingDir: "/srv"}
	for _, line := range []string{
		`ENV A=1 B="two words"`, `LABEL k=v`, `EXPOSE 80 8000-8001/udp`, `USER app:app`, `WORKDIR sub`,
		`VOLUME ["/data"]`, `STOPSIGNAL SIGQUIT`, `SHELL ["/bin/bash", "-c"]`, `ENTRYPOINT echo hi`,
		`HEALTHCHECK --interval=3s --retries=2 CMD true`, `ONBUILD RUN make`,
	} {
		if err := configure(&cfg, parseOne(t, line)); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
	}
	if !slices.Equal(cfg.Env, []string{"A=1", "B=two words"}) || cfg.Labels["k"] != "v" || cfg.User != "app:app" ||
		cfg.WorkingDir != "/srv/sub" || cfg.StopSignal != "SIGQUIT" || len(cfg.ExposedPorts) != 3 {
		t.Fatalf("config: %+v", cfg)
	}
	if _, ok := cfg.ExposedPorts["8001/udp"]; !ok {
		t.Fatalf("ports: %v", cfg.ExposedPorts)
	}
	// The shell form runs in the SHELL set before it; a new ENTRYPOINT
	// drops the base image's CMD.
	if !slices.Equal(cfg.Entrypoint, []string{"/bin/bash", "-c", "echo hi"}) || cfg.Cmd != nil {
		t.Fatalf("entrypoint %q, cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
	if h := cfg.Healthcheck; h == nil || h.Retries != 2 || h.Interval.Seconds() != 3 || !slices.Equal(h.Test, []string{"CMD-SHELL", "true"}) {
		t.Fatalf("healthcheck: %+v", cfg.Healthcheck)
	}
	if !slices.Equal(cfg.OnBuild, []string{"RUN make"}) {
		t.Fatalf("onbuild: %q", cfg.OnBuild)
	}
	for _, bad := range []string{`STOPSIGNAL SIGNOPE`, `EXPOSE 0`, `EXPOSE 80/icmp`} {
		if err := configure(&cfg, parseOne(t, bad)); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestParse(t *testing.T) {
	src := "ARG V=1\nFROM a AS one\nRUN x\nFROM b AS two\nRUN y\nFROM one\nCOPY --from=two /a /b\n"
	b, err := parse(Options{File: "F", Source: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	if b.target != 2 || b.steps != 6 {
		t.Fatalf("target %d, steps %d", b.target, b.steps)
	}
	if b, err = parse(Options{File: "F", Source: []byte(src), Target: "TWO"}); err != nil || b.target != 1 || b.steps != 2 {
		t.Fatalf("--target two: %v, target %d, steps %d", err, b.target, b.steps)
	}
	for src, want := range map[string]string{
		"FROM a\nFOO b\n":    "F:2: unknown instruction: FOO",
		"FROM a\nENV\n":      "F:2: ENV requires at least one argument",
		"RUN x\n":            "F:1: no build stage in current context",
		"# just a comment\n": "F:1: file with no instructions",
		"FROM a\nCOPY x\n":   "F:2: COPY requires at least two arguments",
	} {
		_, err := parse(Options{File: "F", Source: []byte(src)})
		if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
	if _, err := parse(Options{File: "F", Source: []byte("FROM a\n"), Target: "x"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown target: %v", err)
	}
}

func TestContextMatch(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.txt", "b.txt", "c.md", "sub/d.txt", "skip/e.txt"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644)
	}
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("skip\n*.md\n"), 0o644)
	c, err := openContext(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.match("*.txt"); err != nil || !slices.Equal(got, []string{"/a.txt", "/b.txt"}) {
		t.Fatalf("*.txt: %v %v", got, err)
	}
	if _, err := c.match("*.md"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("ignored *.md: %v", err)
	}
	if _, err := c.match("skip/e.txt"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("ignored skip/e.txt: %v", err)
	}
	if _, err := c.match("../etc/passwd"); !errors.Is(err, errdefs.ErrPermission) {
		t.Fatalf("outside: %v", err)
	}
	tr, err := c.tree()
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	h1, err := hashTree(tr, "/")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "skip/e.txt"), []byte("changed"), 0o644)
	if h2, _ := hashTree(tr, "/"); h2 != h1 {
		t.Fatal("an ignored file changed the context's hash")
	}
	os.WriteFile(filepath.Join(dir, "sub/d.txt"), []byte("changed"), 0o644)
	if h3, _ := hashTree(tr, "/"); h3 == h1 {
		t.Fatal("a changed file kept the context's hash")
	}
}

// FuzzParse feeds arbitrary Containerfiles through parsing and step
// counting: an error is fine, a panic or a hang is not.
func FuzzParse(f *testing.F) {
	f.Add([]byte("ARG B=x\nFROM ${B} AS a\nRUN echo\nFROM a\nCOPY --from=a /x /y\n"), "a")
	f.Add([]byte("FROM a\nONBUILD RUN x\nHEALTHCHECK NONE\n"), "")
	f.Add([]byte("# escape=`\nFROM a\nRUN x `\n y\n"), "0")
	f.Fuzz(func(t *testing.T, src []byte, target string) {
		b, err := parse(Options{File: "F", Source: src, Target: target})
		if err != nil {
			return
		}
		if b.steps < 1 || b.target < 0 || b.target >= len(b.stages) {
			t.Fatalf("steps %d, target %d of %d", b.steps, b.target, len(b.stages))
		}
	})
}
