package build

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"golang.org/x/sys/unix"
)

// run carries out RUN: the command runs in a container of berth's engine
// on the stage's layers, and what it changed becomes a new layer.
func (b *builder) run(ctx context.Context, s *state, sc *stageScope, c *instructions.RunCommand) (*state, error) {
	if len(c.FlagsUsed) > 0 {
		return nil, fmt.Errorf("RUN --%s is not supported: %w", strings.Join(c.FlagsUsed, ", --"), errdefs.ErrNotImplemented)
	}
	host := image.HostPlatform()
	if b.o.Platform.OS != host.OS || b.o.Platform.Architecture != host.Architecture {
		return nil, fmt.Errorf("cannot run commands for %s on this %s machine: %w", platformString(b.o.Platform), platformString(host), errdefs.ErrNotImplemented)
	}
	if s.chainID() == "" {
		return nil, fmt.Errorf("the stage has no files yet (FROM scratch), so nothing to run: %w", errdefs.ErrInvalidArgument)
	}
	cmdLine, mounts, err := b.heredoc(c.ShellDependantCmdLine)
	if err != nil {
		return nil, err
	}
	argv := image.CommandLine(&s.cfg.Config, cmdLine)
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command: %w", errdefs.ErrInvalidArgument)
	}
	// The step's container sees the image's user, directory and
	// environment, but none of what only containers run later get: no
	// volumes, health check or published ports.
	base := s.cfg.Config
	base.Volumes, base.Healthcheck, base.ExposedPorts, base.OnBuild = nil, nil, nil, nil
	ct, err := b.e.Create(ctx, container.CreateOptions{
		Name:     randomName(),
		ImageRef: stepImage,
		Base:     &container.Base{ChainID: s.chainID(), Config: base},
		Config: container.Config{Cmd: argv, Env: sc.env(&s.cfg.Config), Hostname: "buildsandbox",
			Labels: map[string]string{buildLabel: filepath.Base(b.work)}},
		EntrypointSet: true,
		NoHealthcheck: true,
		Host:          container.HostConfig{NetworkMode: b.o.Network, Mounts: mounts},
	})
	if err != nil {
		return nil, err
	}
	defer b.e.Remove(context.WithoutCancel(ctx), ct.ID, container.RemoveOptions{Force: true, Volumes: true})
	code, err := b.runAttached(ctx, ct.ID)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("%s: exit status %d", strings.Join(argv, " "), code)
	}
	upper, err := b.e.UpperDir(ctx, ct.ID)
	if err != nil {
		return nil, err
	}
	layer, err := b.images.CommitDiff(ctx, upper, s.chainID())
	if err != nil {
		return nil, err
	}
	createdBy := "RUN " + argPrefix(sc) + strings.Join(argv, " ")
	return s.withLayer(layer, createdBy), nil
}

// heredoc turns a RUN with here-documents into the command to run, as
// BuildKit does: a RUN that is only a here-document runs its text in the
// shell, or, if it starts with "#!", as a script of its own (mounted at
// /dev/pipes); any other gives the shell the whole text, which then reads
// its here-documents itself.
func (b *builder) heredoc(c instructions.ShellDependantCmdLine) (instructions.ShellDependantCmdLine, []container.Mount, error) {
	if len(c.Files) == 0 {
		return c, nil, nil
	}
	if len(c.CmdLine) != 1 || !c.PrependShell {
		return c, nil, fmt.Errorf("a here-document needs the shell form: %w", errdefs.ErrInvalidArgument)
	}
	if parser.MustParseHeredoc(c.CmdLine[0]) == nil {
		var sb strings.Builder
		sb.WriteString(c.CmdLine[0])
		for _, f := range c.Files {
			sb.WriteString("\n" + f.Data + f.Name)
		}
		return instructions.ShellDependantCmdLine{CmdLine: []string{sb.String()}, PrependShell: true}, nil, nil
	}
	f := c.Files[0]
	data := f.Data
	if f.Chomp {
		data = parser.ChompHeredocContent(data)
	}
	if !strings.HasPrefix(data, "#!") {
		return instructions.ShellDependantCmdLine{CmdLine: []string{data}, PrependShell: true}, nil, nil
	}
	dir, err := os.MkdirTemp(b.work, "script-")
	if err != nil {
		return c, nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return c, nil, err
	}
	name := filepath.Base(f.Name)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o755); err != nil {
		return c, nil, err
	}
	return instructions.ShellDependantCmdLine{CmdLine: []string{"/dev/pipes/" + name}},
		[]container.Mount{{Type: "bind", Source: dir, Destination: "/dev/pipes", ReadOnly: true}}, nil
}

// runAttached starts the container with its output going to the build's
// output and returns its exit status; if ctx ends first, the container is
// killed.
func (b *builder) runAttached(ctx context.Context, id string) (int, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "attach"), os.NewFile(uintptr(fds[1]), "attach")
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		theirs.Close()
		return 0, err
	}
	defer conn.Close()
	_, err = b.e.Start(ctx, id, theirs)
	theirs.Close()
	if err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	out := b.o.Out
	if out == nil {
		out = io.Discard
	}
	code, err := container.AttachStreams(conn, container.Streams{Stdout: out, Stderr: out})
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if err != nil {
		// The monitor went away without saying how the step ended: its
		// state says.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if code, werr := b.e.Wait(wctx, id); werr == nil {
			return code, nil
		}
		return 0, err
	}
	return code, nil
}
