package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// runContainer creates and starts the container with cio as its stdio:
// through berth's runtime in this process, which saves starting two
// runtime processes per run, or through the --runtime command.
func (m *monitor) runContainer(ctx context.Context, cio *ctrIO, spec *specs.Spec, pidFile string) error {
	e, c := m.e, m.c
	if c.Host.Runtime == "" {
		// Run detached: created and started with the runtime's record kept
		// in memory between the two.
		_, err := e.OwnRuntime(c).Run(ctx, c.ID, runtime.CreateOptions{Bundle: m.dir, PidFile: pidFile,
			ConsoleSocket: cio.consoleSocket, Stdin: cio.stdin, Stdout: cio.stdout, Stderr: cio.stderr, Spec: spec}, true)
		return err
	}
	rtLog := filepath.Join(m.dir, "runtime.log")
	os.Remove(rtLog)
	args := []string{"--log", rtLog, "--log-format", "json", "run", "--detach", "--bundle", m.dir, "--pid-file", pidFile}
	if cio.consoleSocket != "" {
		args = append(args, "--console-socket", cio.consoleSocket)
	}
	cmd := e.RuntimeCmd(ctx, c, append(args, c.ID)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = cio.stdin, cio.stdout, cio.stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	ws := <-m.reaper.wait(cmd.Process.Pid)
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("%s", runtimeError(rtLog, ws))
	}
	return nil
}

// watchLoopback looks, a few times in the first seconds after the start,
// for published ports whose application listens on 127.0.0.1 only inside
// the container (the seeds' "bind to 0.0.0.0" pitfall), and says so in
// the container's log and state. The returned func stops it; the channel
// is closed when it is done.
func (m *monitor) watchLoopback(ctx context.Context) (stop func(), done <-chan struct{}) {
	if len(m.c.Host.Ports) == 0 && !m.c.Host.PublishAll {
		return func() {}, nil
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for _, d := range []time.Duration{300 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second} {
			select {
			case <-quit:
				return
			case <-time.After(d):
			}
			warnings, err := m.e.LoopbackOnly(ctx, m.c.ID)
			if err != nil || len(warnings) == 0 {
				continue
			}
			m.e.UpdateState(ctx, m.c.ID, func(s *container.State) error {
				for _, w := range warnings {
					if !slices.Contains(s.Warnings, w) {
						s.Warnings = append(s.Warnings, w)
						m.logLine("berth: warning: " + w)
					}
				}
				return nil
			})
			return
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit) }); <-finished }, finished
}

// runtimeError is the runtime's own last error message from its JSON log,
// or a description of how it exited.
func runtimeError(logPath string, ws unix.WaitStatus) string {
	b, _ := os.ReadFile(logPath)
	var msg string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") && entry.Msg != "" {
			msg = entry.Msg
		}
	}
	if msg == "" {
		msg = fmt.Sprintf("runtime exited with status %d", exitCode(ws))
	}
	return msg
}

// oomKilled reports whether the kernel's OOM killer killed a process in
// the container's cgroup.
func oomKilled(id string) bool {
	for _, f := range []string{
		filepath.Join("/sys/fs/cgroup/memory/berth", id, "memory.oom_control"),
		filepath.Join("/sys/fs/cgroup/berth", id, "memory.events"),
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "oom_kill "); ok && v != "0" {
				return true
			}
		}
	}
	return false
}
