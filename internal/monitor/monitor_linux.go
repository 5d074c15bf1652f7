package monitor

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/container/logfile"
	"github.com/berth-dev/berth/internal/container/monitorproto"
	"golang.org/x/sys/unix"
)

// monitor keeps one container: it starts it through the runtime, copies
// its output to the log and to attached clients, waits for it to exit,
// records how, restarts it as its policy says, and cleans up after it.
// While nothing but copying is to be done it rests in package idle.
type monitor struct {
	e      *container.Engine
	c      *container.Container
	dir    string
	reaper *reaper
	log    *logfile.Writer
	hub    *hub
	stop   chan os.Signal
	// logLine writes a line of berth's own to the container's log.
	logLine func(string)
	// backoff is the wait before the next restart.
	backoff time.Duration
	// maxSize and maxFiles are the log's rotation (logfile.ParseOptions).
	maxSize  int64
	maxFiles int
}

// Run runs the monitor of container id, which e keeps, started as package
// monitorproto says; it is the body of the hidden `berth container-monitor`
// command, and returns when the container has exited for good. The same
// command goes on after a rest (see package idle), or runs a resting
// monitor's health check.
func Run(ctx context.Context, e *container.Engine, id string) error {
	// Descriptors the caller left open without close-on-exec (a shell's,
	// a pipeline's) must not reach the container or be held by the
	// monitor for as long as the container runs.
	unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if os.Getenv(healthEnv) != "" {
		return checkHealthOnce(ctx, e, id)
	}
	rs, err := resumed()
	if err != nil {
		return err
	}
	var sync, attach *os.File
	if rs == nil {
		sync = os.NewFile(monitorproto.ReportFd, "sync")
		if id == monitorproto.Unassigned {
			var ok bool
			if id, attach, ok, err = monitorproto.Assigned(os.NewFile(monitorproto.CtlFd, "monitor-ctl")); !ok {
				sync.Close()
				return err // its starter went away
			}
			retitle(id)
		} else if os.Getenv(monitorproto.AttachEnv) != "" {
			attach = os.NewFile(monitorproto.AttachFd, "attach")
		}
	}
	report := func(r monitorproto.StartReport) {
		if sync != nil {
			monitorproto.WriteReport(sync, r)
			sync.Close()
			sync = nil
		}
	}
	err = keep(ctx, e, id, rs, attach, report)
	if err != nil {
		report(container.StartFailure(err))
	}
	return err
}

// retitle writes the container's ID over monitorproto.Unassigned in the
// process's command line (the argument memory that /proc/PID/cmdline and ps
// show, which os.Args' last string shares), so that an early monitor is
// found by its container's ID like any other; its re-executions (see rest)
// then carry the ID too.
func retitle(id string) {
	last := os.Args[len(os.Args)-1]
	if last != monitorproto.Unassigned || len(id) != len(last) {
		return
	}
	copy(unsafe.Slice(unsafe.StringData(last), len(last)), id)
}

// keep keeps container id from its start (or, with rs, from where a rest
// left it) until it has exited for good, and then releases what it held;
// report gets the start report once the first run has started.
func keep(ctx context.Context, e *container.Engine, id string, rs *restState, attach *os.File, report func(monitorproto.StartReport)) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("monitor: subreaper: %w", err)
	}
	signal.Ignore(unix.SIGPIPE, unix.SIGHUP)
	c, _, err := e.Get(ctx, id)
	if err != nil {
		return err
	}
	m := &monitor{e: e, c: c, dir: e.Dir(id), reaper: newReaper(), stop: make(chan os.Signal, 1),
		backoff: 100 * time.Millisecond}
	signal.Notify(m.stop, unix.SIGUSR1)
	if m.maxSize, m.maxFiles, err = logfile.ParseOptions(c.Host.LogOpts); err != nil {
		return err
	}
	if m.log, err = logfile.NewWriter(filepath.Join(m.dir, monitorproto.LogFile), m.maxSize, m.maxFiles); err != nil {
		return err
	}
	defer m.log.Close()
	var listener *os.File
	if rs != nil {
		listener = rs.file(rs.Listener, "attach")
		m.backoff = rs.Backoff
	}
	if m.hub, err = newHub(m.dir, c.Config.Tty, listener); err != nil {
		return err
	}
	defer m.hub.close()
	streams := map[string]io.Writer{"stdout": m.log.Stream("stdout"), "stderr": m.log.Stream("stderr")}
	m.hub.out = func(stream string, p []byte) { streams[stream].Write(p) }
	m.logLine = func(line string) { streams["stderr"].Write([]byte(line + "\n")) }
	m.hub.onSignal = func(sig int) { e.Signal(context.Background(), c, unix.Signal(sig)) }
	if attach != nil {
		m.hub.adopt(attach)
	}
	code, err := m.run(ctx, rs, report)
	// Attached clients hear once the container is gone (with --rm) or
	// recorded as exited; its network endpoints, whose removal can take a
	// while when a bridge goes with them, are released after that. A
	// failed start's caller hears last.
	finish := e.ReleaseRun(ctx, c)
	m.hub.exit(code)
	finish()
	return err
}

// run starts the container, or goes on with the one a rest left running,
// and starts it again as long as its restart policy says so; it returns the
// last exit status, or why the container could not start the first time.
func (m *monitor) run(ctx context.Context, rs *restState, report func(monitorproto.StartReport)) (int, error) {
	for first := rs == nil; ; first = false {
		var code int
		var err error
		if rs != nil {
			var exited <-chan unix.WaitStatus = rs.exited
			if exited == nil {
				exited = m.reaper.wait(rs.Pid)
			}
			code = m.watch(ctx, m.hub.resumeIO(rs), rs.Pid, exited, false)
			rs = nil
		} else {
			code, err = m.once(ctx, first, report)
		}
		if err != nil {
			m.setExited(ctx, 255, err.Error(), false)
			if first {
				return 255, err
			}
			code = 255
		}
		st, _ := m.e.State(ctx, m.c.ID)
		if !m.restart(st, code) {
			return code, nil
		}
		// Docker's backoff: double from 100 ms up to a minute, back to the
		// start after a run of at least 10 s.
		if st.FinishedAt.Sub(st.StartedAt) >= 10*time.Second {
			m.backoff = 100 * time.Millisecond
		}
		m.e.UpdateState(ctx, m.c.ID, func(s *container.State) error {
			s.Status, s.RestartCount = container.Restarting, s.RestartCount+1
			return nil
		})
		select {
		case <-time.After(m.backoff):
		case <-m.stop:
			m.e.UpdateState(ctx, m.c.ID, func(s *container.State) error { s.Status = container.Exited; return nil })
			return code, nil
		}
		m.backoff = min(2*m.backoff, time.Minute)
	}
}

// restart applies the restart policy to an exit with code.
func (m *monitor) restart(st *container.State, code int) bool {
	if st == nil || st.ManualStop {
		return false
	}
	p := m.c.Host.RestartPolicy
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (p.MaxRetries == 0 || st.RestartCount < p.MaxRetries)
	}
	return false
}

// once runs the container one time and returns its exit status.
func (m *monitor) once(ctx context.Context, first bool, report func(monitorproto.StartReport)) (int, error) {
	c := m.c
	cio, err := m.hub.containerIO(c.Config.OpenStdin)
	if err != nil {
		return 0, err
	}
	pidFile := filepath.Join(m.dir, "pid")
	os.Remove(pidFile)
	spec, err := m.e.WriteSpec(ctx, c)
	if err == nil {
		err = m.runContainer(ctx, cio, spec, pidFile)
	}
	if err != nil {
		cio.closeChildEnds()
		cio.close()
		m.e.DeleteRuntimeState(context.Background(), c)
		return 0, err
	}
	cio.closeChildEnds()
	if err := cio.afterStart(); err != nil {
		cio.close()
		m.e.DeleteRuntimeState(context.Background(), c)
		return 0, err
	}
	b, err := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		cio.close()
		return 0, fmt.Errorf("runtime wrote no pid file")
	}
	exited := m.reaper.wait(pid)
	m.e.UpdateState(ctx, c.ID, func(s *container.State) error {
		s.Status, s.Pid, s.StartedAt, s.Monitor, s.Error = container.Running, pid, time.Now().UTC(), container.Self(), ""
		s.ExitCode, s.OOMKilled = 0, false
		if healthOf(c) != nil {
			s.Health = &container.Health{Status: "starting"}
		}
		return nil
	})
	m.e.Emit(ctx, "start", c, nil)
	if first {
		report(monitorproto.StartReport{Pid: pid})
	}
	return m.watch(ctx, cio, pid, exited, true), nil
}

// restAfter is how long a container runs before its monitor first rests.
const restAfter = time.Second

// watch follows the running container pid until it exits, and records
// how. Whenever no client is attached it rests (see rest); fresh is false
// when it goes on after a rest.
func (m *monitor) watch(ctx context.Context, cio *ctrIO, pid int, exited <-chan unix.WaitStatus, fresh bool) int {
	defer cio.close()
	c := m.c
	stopWatch, watched := func() {}, (<-chan struct{})(nil)
	var settle <-chan time.Time
	if fresh {
		stopWatch, watched = m.watchLoopback(ctx)
		// A container that exits at once (a crash loop, a short job) is
		// not worth a rest and a wake-up.
		settle = time.After(restAfter)
	}
	stopHealth := m.startHealth(ctx)
	var ws unix.WaitStatus
wait:
	for resting := true; ; {
		select {
		case ws = <-exited:
			break wait
		default:
		}
		if resting && settle == nil && watched == nil && m.hub.clients() == 0 {
			stopHealth()
			if err := m.rest(cio, pid); err != nil { // returns only if it did not rest
				m.logLine("berth: monitor: " + err.Error())
				resting = false
			}
			stopHealth = m.startHealth(ctx)
		}
		select {
		case ws = <-exited:
			break wait
		case <-m.hub.idle:
		case <-watched:
			watched = nil
		case <-settle:
			settle = nil
		}
	}
	stopWatch()
	stopHealth()
	cio.drain(2 * time.Second)
	code := exitCode(ws)
	oom := oomKilled(c.ID)
	m.e.DeleteRuntimeState(context.Background(), c)
	m.reaper.forget()
	m.setExited(ctx, code, "", oom)
	if oom {
		m.e.Emit(ctx, "oom", c, nil)
	}
	m.e.Emit(ctx, "die", c, map[string]string{"exitCode": strconv.Itoa(code)})
	return code
}

// setExited records that the container has exited with code (msg: why it
// could not start).
func (m *monitor) setExited(ctx context.Context, code int, msg string, oom bool) {
	m.e.UpdateState(ctx, m.c.ID, func(s *container.State) error {
		s.Status, s.Pid, s.ExitCode, s.Error, s.OOMKilled = container.Exited, 0, code, msg, oom
		s.FinishedAt = time.Now().UTC()
		if s.Monitor.Pid == 0 {
			s.Monitor = container.Self()
		}
		return nil
	})
}
