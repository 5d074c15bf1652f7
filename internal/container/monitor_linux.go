package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/berth-dev/berth/internal/container/logfile"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The monitor's inherited files: the pipe on which it reports whether the
// container started, and, for a foreground run, the first attached client
// — or, for a monitor started ahead of its container, the socket that
// names the container and passes that client (see Prestart).
const (
	monitorSyncFd   = 3
	monitorAttachFd = 4
	attachEnv       = "_BERTH_MONITOR_ATTACH"
)

// startReport is what the monitor says on the sync pipe once the container
// runs or failed to.
type startReport struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	Class string `json:"class,omitempty"` // the errdefs class of Error
}

// monitor keeps one container: it starts it through the runtime, copies
// its output to the log and to attached clients, waits for it to exit,
// records how, restarts it as its policy says, and cleans up after it.
// While nothing but copying is to be done it rests in package idle.
type monitor struct {
	e      *Engine
	c      *Container
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

// Monitor runs the monitor of container id; it is the body of the hidden
// `berth container-monitor` command that Start runs, and returns when the
// container has exited for good. The same command goes on after a rest
// (see package idle), or runs a resting monitor's health check.
func (e *Engine) Monitor(ctx context.Context, id string) error {
	// Descriptors the caller left open without close-on-exec (a shell's,
	// a pipeline's) must not reach the container or be held by the
	// monitor for as long as the container runs.
	unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if os.Getenv(healthEnv) != "" {
		return e.checkHealthOnce(ctx, id)
	}
	rs, err := resumed()
	if err != nil {
		return err
	}
	var sync, attach *os.File
	if rs == nil {
		sync = os.NewFile(monitorSyncFd, "sync")
		if id == unassigned {
			var ok bool
			if id, attach, ok, err = assigned(); !ok {
				sync.Close()
				return err // its starter went away
			}
			retitle(id)
		} else if os.Getenv(attachEnv) != "" {
			attach = os.NewFile(monitorAttachFd, "attach")
		}
	}
	report := func(r startReport) {
		if sync != nil {
			json.NewEncoder(sync).Encode(r)
			sync.Close()
			sync = nil
		}
	}
	err = e.monitor(ctx, id, rs, attach, report)
	if err != nil {
		report(startReport{Error: err.Error(), Class: errdefs.ClassName(err)})
	}
	return err
}

func (e *Engine) monitor(ctx context.Context, id string, rs *restState, attach *os.File, report func(startReport)) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("monitor: subreaper: %w", err)
	}
	signal.Ignore(unix.SIGPIPE, unix.SIGHUP)
	c, _, err := e.load(id)
	if err != nil {
		return err
	}
	m := &monitor{e: e, c: c, dir: e.dir(id), reaper: newReaper(), stop: make(chan os.Signal, 1),
		backoff: 100 * time.Millisecond}
	signal.Notify(m.stop, unix.SIGUSR1)
	if m.maxSize, m.maxFiles, err = logfile.ParseOptions(c.Host.LogOpts); err != nil {
		return err
	}
	if m.log, err = logfile.NewWriter(filepath.Join(m.dir, logFile), m.maxSize, m.maxFiles); err != nil {
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
	m.hub.onSignal = func(sig int) { e.signal(context.Background(), c, unix.Signal(sig)) }
	if attach != nil {
		m.hub.adopt(attach)
	}
	code, err := m.run(ctx, rs, report)
	st, _ := e.state(id)
	e.releaseLocal(ctx, c)
	var trash string
	if c.Host.AutoRemove {
		e.Remove(ctx, id, RemoveOptions{Force: true, Volumes: true, keepNetworks: true, trash: &trash})
	}
	// Attached clients hear once the container is gone (with --rm) or
	// recorded as exited; its network endpoints, whose removal can take a
	// while when a bridge goes with them, are released after that. A
	// failed start's caller hears last.
	m.hub.exit(code)
	if trash != "" {
		os.RemoveAll(trash)
	}
	e.releaseNetworks(ctx, c, st)
	return err
}

// run starts the container, or goes on with the one a rest left running,
// and starts it again as long as its restart policy says so; it returns the
// last exit status, or why the container could not start the first time.
func (m *monitor) run(ctx context.Context, rs *restState, report func(startReport)) (int, error) {
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
			m.setExited(255, err.Error(), false)
			if first {
				return 255, err
			}
			code = 255
		}
		st, _ := m.e.state(m.c.ID)
		if !m.restart(st, code) {
			return code, nil
		}
		// Docker's backoff: double from 100 ms up to a minute, back to the
		// start after a run of at least 10 s.
		if st.FinishedAt.Sub(st.StartedAt) >= 10*time.Second {
			m.backoff = 100 * time.Millisecond
		}
		m.e.updateState(m.c.ID, func(s *State) error {
			s.Status, s.RestartCount = Restarting, s.RestartCount+1
			return nil
		})
		select {
		case <-time.After(m.backoff):
		case <-m.stop:
			m.e.updateState(m.c.ID, func(s *State) error { s.Status = Exited; return nil })
			return code, nil
		}
		m.backoff = min(2*m.backoff, time.Minute)
	}
}

// restart applies the restart policy to an exit with code.
func (m *monitor) restart(st *State, code int) bool {
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
func (m *monitor) once(ctx context.Context, first bool, report func(startReport)) (int, error) {
	c := m.c
	cio, err := m.hub.containerIO(c.Config.OpenStdin)
	if err != nil {
		return 0, err
	}
	pidFile := filepath.Join(m.dir, "pid")
	os.Remove(pidFile)
	spec, err := m.e.writeSpec(c)
	if err == nil {
		err = m.runContainer(ctx, cio, spec, pidFile)
	}
	if err != nil {
		cio.closeChildEnds()
		cio.close()
		m.e.deleteRuntimeState(context.Background(), c)
		return 0, err
	}
	cio.closeChildEnds()
	if err := cio.afterStart(); err != nil {
		cio.close()
		m.e.deleteRuntimeState(context.Background(), c)
		return 0, err
	}
	b, err := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		cio.close()
		return 0, fmt.Errorf("runtime wrote no pid file")
	}
	exited := m.reaper.wait(pid)
	m.e.updateState(c.ID, func(s *State) error {
		s.Status, s.Pid, s.StartedAt, s.Monitor, s.Error = Running, pid, time.Now().UTC(), self(), ""
		s.ExitCode, s.OOMKilled = 0, false
		if healthOf(c) != nil {
			s.Health = &Health{Status: "starting"}
		}
		return nil
	})
	m.e.emit("start", c, nil)
	if first {
		report(startReport{Pid: pid})
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
		stopWatch, watched = m.watchLoopback()
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
	m.e.deleteRuntimeState(context.Background(), c)
	m.reaper.forget()
	m.setExited(code, "", oom)
	if oom {
		m.e.emit("oom", c, nil)
	}
	m.e.emit("die", c, map[string]string{"exitCode": strconv.Itoa(code)})
	return code
}

func (m *monitor) setExited(code int, msg string, oom bool) {
	m.e.updateState(m.c.ID, func(s *State) error {
		s.Status, s.Pid, s.ExitCode, s.Error, s.OOMKilled = Exited, 0, code, msg, oom
		s.FinishedAt = time.Now().UTC()
		if s.Monitor.Pid == 0 {
			s.Monitor = self()
		}
		return nil
	})
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

// startMonitor runs the monitor of container c, or hands c to the one
// Prestart started, and waits for its report.
func (e *Engine) startMonitor(c *Container, attach *os.File) (startReport, error) {
	m := e.early
	e.early = nil
	if m == nil {
		var err error
		if m, err = e.spawnMonitor(c.ID, attach); err != nil {
			return startReport{}, err
		}
	} else if err := m.assign(c.ID, attach); err != nil {
		m.report.Close()
		return startReport{}, fmt.Errorf("monitor: %w", err)
	}
	defer m.report.Close()
	var rep startReport
	if err := json.NewDecoder(m.report).Decode(&rep); err != nil {
		if errors.Is(err, io.EOF) {
			return rep, fmt.Errorf("the container's monitor exited without a report")
		}
		return rep, fmt.Errorf("monitor: %w", err)
	}
	return rep, nil
}

// earlyMonitor is a monitor process as its starter sees it: the pipe of its
// start report and, for one started ahead of its container, the socket
// that names the container.
type earlyMonitor struct {
	report *os.File
	ctl    *os.File
}

// Prestart starts a monitor before the container it is to keep exists, so
// that its start-up — a Go program's, some 15 ms on small machines —
// overlaps the creation of the container; the next Start hands the
// container to it. A monitor that gets none exits with this process.
func (e *Engine) Prestart() error {
	if e.early != nil {
		return nil
	}
	m, err := e.spawnMonitor(unassigned, nil)
	e.early = m
	return err
}

// Adopt takes a monitor that was started ahead of this process's Go code
// (package prestart) as Prestart's: report is the read end of its report
// pipe, ctl its control socket.
func (e *Engine) Adopt(pid int, report, ctl *os.File) {
	if e.early != nil {
		report.Close()
		ctl.Close()
		return
	}
	e.early = &earlyMonitor{report: report, ctl: ctl}
	go func() { // collect it if it ends while this command runs
		if p, err := os.FindProcess(pid); err == nil {
			p.Wait()
		}
	}()
}

// spawnMonitor starts a monitor for container id, or with id unassigned
// one that waits to be told (assign).
func (e *Engine) spawnMonitor(id string, attach *os.File) (*earlyMonitor, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	m := &earlyMonitor{report: r}
	cmd := exec.Command(e.berth[0], append(e.berth[1:], "container-monitor", id)...)
	cmd.Args[0] = "berth-monitor"
	cmd.ExtraFiles = []*os.File{w}
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	if id == unassigned {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			r.Close()
			return nil, err
		}
		m.ctl = os.NewFile(uintptr(fds[0]), "monitor-ctl")
		theirs := os.NewFile(uintptr(fds[1]), "monitor-ctl")
		defer theirs.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
	} else if attach != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, attach)
		cmd.Env = append(cmd.Env, attachEnv+"=1")
	}
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		if m.ctl != nil {
			m.ctl.Close()
		}
		return nil, fmt.Errorf("monitor: %w", err)
	}
	go cmd.Wait() // the monitor outlives this command; collect it if not
	return m, nil
}

// assign names the container an early monitor keeps, and passes it the
// first attached client, if any.
func (m *earlyMonitor) assign(id string, attach *os.File) error {
	defer m.ctl.Close()
	var oob []byte
	if attach != nil {
		oob = unix.UnixRights(int(attach.Fd()))
	}
	return unix.Sendmsg(int(m.ctl.Fd()), []byte(id), oob, nil, 0)
}

// unassigned stands for the container of an early monitor on its command
// line; it is as long as a container ID, which takes its place (retitle).
var unassigned = strings.Repeat(".", 64)

// retitle writes the container's ID over the placeholder in the process's
// command line (the argument memory that /proc/PID/cmdline and ps show,
// which os.Args' last string shares), so that an early monitor is found by
// its container's ID like any other; its re-executions (see rest) then
// carry the ID too.
func retitle(id string) {
	last := os.Args[len(os.Args)-1]
	if last != unassigned || len(id) != len(last) {
		return
	}
	copy(unsafe.Slice(unsafe.StringData(last), len(last)), id)
}

// assigned is the early monitor's side of assign: it waits for its
// container's id and first client; ok is false if its starter went away
// without one.
func assigned() (id string, attach *os.File, ok bool, err error) {
	ctl := os.NewFile(monitorAttachFd, "monitor-ctl")
	defer ctl.Close()
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(ctl.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		return "", nil, false, err
	}
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) > 0 {
		if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) > 0 {
			attach = os.NewFile(uintptr(fds[0]), "attach")
		}
	}
	return string(buf[:n]), attach, true, nil
}

// runContainer creates and starts the container with cio as its stdio:
// through berth's runtime in this process, which saves starting two
// runtime processes per run, or through the --runtime command.
func (m *monitor) runContainer(ctx context.Context, cio *ctrIO, spec *specs.Spec, pidFile string) error {
	e, c := m.e, m.c
	if c.Host.Runtime == "" {
		// Run detached: created and started with the runtime's record kept
		// in memory between the two.
		_, err := e.ownRuntime(c).Run(ctx, c.ID, runtime.CreateOptions{Bundle: e.dir(c.ID), PidFile: pidFile,
			ConsoleSocket: cio.consoleSocket, Stdin: cio.stdin, Stdout: cio.stdout, Stderr: cio.stderr, Spec: spec}, true)
		return err
	}
	rtLog := filepath.Join(e.dir(c.ID), "runtime.log")
	os.Remove(rtLog)
	args := []string{"--log", rtLog, "--log-format", "json", "run", "--detach", "--bundle", e.dir(c.ID), "--pid-file", pidFile}
	if cio.consoleSocket != "" {
		args = append(args, "--console-socket", cio.consoleSocket)
	}
	cmd := e.runtimeCmd(ctx, c, append(args, c.ID)...)
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
func (m *monitor) watchLoopback() (stop func(), done <-chan struct{}) {
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
			warnings, err := m.e.LoopbackOnly(m.c.ID)
			if err != nil || len(warnings) == 0 {
				continue
			}
			m.e.updateState(m.c.ID, func(s *State) error {
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
