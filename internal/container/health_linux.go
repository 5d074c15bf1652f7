package container

import (
	"bytes"
	"context"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Docker's health check defaults.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
	healthLogKeep         = 5
	healthOutputMax       = 4096
)

// startHealth runs the container's health check every interval while it
// runs and records the results in its state; the returned func stops it.
func (m *monitor) startHealth(ctx context.Context) (stop func()) {
	h := m.c.Config.Healthcheck
	if h == nil || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return func() {}
	}
	var args []string
	switch h.Test[0] {
	case "CMD":
		args = h.Test[1:]
	case "CMD-SHELL":
		if len(h.Test) > 1 {
			args = []string{"/bin/sh", "-c", h.Test[1]}
		}
	}
	if len(args) == 0 {
		return func() {}
	}
	interval, timeout, retries := h.Interval, h.Timeout, h.Retries
	if interval <= 0 {
		interval = defaultHealthInterval
	}
	if timeout <= 0 {
		timeout = defaultHealthTimeout
	}
	if retries <= 0 {
		retries = defaultHealthRetries
	}
	started := time.Now()
	m.e.updateState(m.c.ID, func(s *State) error { s.Health = &Health{Status: "starting"}; return nil })
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			res := m.check(ctx, args, timeout)
			inStart := time.Since(started) < h.StartPeriod
			var before, after string
			m.e.updateState(m.c.ID, func(s *State) error {
				if s.Health == nil {
					s.Health = &Health{Status: "starting"}
				}
				hs := s.Health
				before = hs.Status
				hs.Log = append(hs.Log, res)
				if len(hs.Log) > healthLogKeep {
					hs.Log = hs.Log[len(hs.Log)-healthLogKeep:]
				}
				switch {
				case res.ExitCode == 0:
					hs.Status, hs.FailingStreak = "healthy", 0
				case inStart:
					// Failures while the container starts up do not count.
				default:
					hs.FailingStreak++
					if hs.FailingStreak >= retries {
						hs.Status = "unhealthy"
					}
				}
				after = hs.Status
				return nil
			})
			if after != before {
				m.e.emit("health_status: "+after, m.c, nil)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// check runs the health check command once in the container.
func (m *monitor) check(ctx context.Context, args []string, timeout time.Duration) HealthLog {
	res := HealthLog{Start: time.Now().UTC(), ExitCode: -1}
	r, w, err := os.Pipe()
	if err != nil {
		res.Output = err.Error()
		return res
	}
	defer r.Close()
	cmd := m.e.runtimeCmd(context.Background(), m.c, append([]string{"exec", m.c.ID}, args...)...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		res.Output = err.Error()
		return res
	}
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&out, io.LimitReader(r, healthOutputMax)); io.Copy(io.Discard, r); close(copied) }()
	select {
	case ws := <-m.reaper.wait(cmd.Process.Pid):
		res.ExitCode = exitCode(ws)
		select {
		case <-copied:
		case <-time.After(time.Second):
		}
		res.Output = out.String()
	case <-time.After(timeout):
		unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		res.Output = "Health check exceeded timeout (" + timeout.String() + ")"
	case <-ctx.Done():
		unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		res.Output = "container stopped"
	}
	res.End = time.Now().UTC()
	return res
}
