package monitor

import (
	"bytes"
	"context"
	"io"
	"os"
	"time"

	"github.com/berth-dev/berth/internal/container"
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

// healthCheck is a container's health check with Docker's defaults filled
// in.
type healthCheck struct {
	args                           []string
	interval, timeout, startPeriod time.Duration
	retries                        int
}

// healthOf returns c's health check, or nil if it has none.
func healthOf(c *container.Container) *healthCheck {
	h := c.Config.Healthcheck
	if h == nil || len(h.Test) == 0 {
		return nil
	}
	hc := &healthCheck{interval: h.Interval, timeout: h.Timeout, startPeriod: h.StartPeriod, retries: h.Retries}
	switch h.Test[0] {
	case "CMD":
		hc.args = h.Test[1:]
	case "CMD-SHELL":
		if len(h.Test) > 1 {
			hc.args = []string{"/bin/sh", "-c", h.Test[1]}
		}
	}
	if len(hc.args) == 0 {
		return nil
	}
	if hc.interval <= 0 {
		hc.interval = defaultHealthInterval
	}
	if hc.timeout <= 0 {
		hc.timeout = defaultHealthTimeout
	}
	if hc.retries <= 0 {
		hc.retries = defaultHealthRetries
	}
	return hc
}

// startHealth runs the container's health check every interval while it
// runs; the returned func stops it.
func (m *monitor) startHealth(ctx context.Context) (stop func()) {
	hc := healthOf(m.c)
	if hc == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(hc.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			m.checkHealth(ctx, hc)
		}
	}()
	return func() { cancel(); <-done }
}

// checkHealth runs the health check once and records the result in the
// container's state.
func (m *monitor) checkHealth(ctx context.Context, hc *healthCheck) {
	res := m.check(ctx, hc.args, hc.timeout)
	var before, after string
	m.e.UpdateState(ctx, m.c.ID, func(s *container.State) error {
		if s.Health == nil {
			s.Health = &container.Health{Status: "starting"}
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
		case res.Start.Sub(s.StartedAt) < hc.startPeriod:
			// Failures while the container starts up do not count.
		default:
			hs.FailingStreak++
			if hs.FailingStreak >= hc.retries {
				hs.Status = "unhealthy"
			}
		}
		after = hs.Status
		return nil
	})
	if after != before {
		m.e.Emit(ctx, "health_status: "+after, m.c, nil)
	}
}

// checkHealthOnce is a resting monitor's health check (see package idle):
// one check in a process of its own.
func checkHealthOnce(ctx context.Context, e *container.Engine, id string) error {
	c, st, err := e.Get(ctx, id)
	if err != nil {
		return err
	}
	hc := healthOf(c)
	if hc == nil || !st.Running() {
		return nil
	}
	m := &monitor{e: e, c: c, reaper: newReaper()}
	m.checkHealth(ctx, hc)
	return nil
}

// check runs the health check command once in the container.
func (m *monitor) check(ctx context.Context, args []string, timeout time.Duration) container.HealthLog {
	res := container.HealthLog{Start: time.Now().UTC(), ExitCode: -1}
	r, w, err := os.Pipe()
	if err != nil {
		res.Output = err.Error()
		return res
	}
	defer r.Close()
	cmd := m.e.RuntimeCmd(context.Background(), m.c, append([]string{"exec", m.c.ID}, args...)...)
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
