package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/container/monitorproto"
	"golang.org/x/sys/unix"
)

// The environment of a monitor's rest; see package idle for the contract.
const (
	idleEnv      = "_BERTH_IDLE"
	resumeEnv    = "_BERTH_RESUME"
	healthEnv    = "_BERTH_HEALTH"
	restStateEnv = "_BERTH_MONITOR_STATE" // restState, for the Go code only
)

// restState is what the monitor's Go code carries across a rest: the
// container's pid and the fds of its stdio and of the attach socket (-1
// where absent), and the restart back-off.
type restState struct {
	Pid      int           `json:"pid"`
	Stdout   int           `json:"stdout"`
	Stderr   int           `json:"stderr"`
	Pty      int           `json:"pty"`
	Stdin    int           `json:"stdin"`
	Listener int           `json:"listener"`
	Backoff  time.Duration `json:"backoff"`
	// exited has the container's wait status if its exit ended the rest.
	exited chan unix.WaitStatus
}

// rest hands the container to package idle's loop, which copies its output
// into the log with a fraction of the Go runtime's memory, by re-executing
// this program; the loop runs the monitor command again (see resumed) when
// the container exits or a client attaches. rest returns only if it did not
// hand over, and the monitor then goes on as it was: with nil if a client
// has just attached, to rest later, or with why it could not.
func (m *monitor) rest(cio *ctrIO, pid int) error {
	ln, err := m.hub.stopAccepting()
	if ln < 0 {
		return err // a client came, or the listener is lost (nil: try later)
	}
	cio.pause()
	rs := restState{Pid: pid, Stdout: -1, Stderr: -1, Pty: -1, Stdin: -1, Listener: ln, Backoff: m.backoff}
	dups := []int{ln}
	dup := func(f syscall.Conn, into *int) error {
		fd, err := dupFd(f)
		if err == nil {
			dups = append(dups, fd)
			*into = fd
		}
		return err
	}
	err = func() error {
		h := m.hub
		h.mu.Lock()
		stdin, pty := h.stdin, h.pty
		h.mu.Unlock()
		for _, o := range cio.outs {
			into := &rs.Stdout
			switch {
			case o.f == pty:
				into = &rs.Pty
			case o.stream == "stderr":
				into = &rs.Stderr
			}
			if err := dup(o.f, into); err != nil {
				return err
			}
		}
		if f, ok := stdin.(*os.File); ok && f != pty {
			if err := dup(f, &rs.Stdin); err != nil {
				return err
			}
		}
		if err := m.log.Flush(); err != nil {
			return err
		}
		var health time.Duration
		if hc := healthOf(m.c); hc != nil {
			health = hc.interval
		}
		state, _ := json.Marshal(rs)
		env := []string{
			fmt.Sprintf("%s=%d %d %d %d %d %d %d %d %d %s", idleEnv, rs.Pid, rs.Stdout, rs.Stderr, rs.Pty, rs.Listener,
				rs.Stdin, m.maxSize, m.maxFiles, health.Nanoseconds(), m.log.Path()),
			restStateEnv + "=" + string(state),
		}
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			if k != monitorproto.AttachEnv && k != resumeEnv && k != restStateEnv && k != idleEnv {
				env = append(env, kv)
			}
		}
		// berth stop's nudge for a restart back-off (SIGUSR1) must not kill
		// the process while it re-executes: ignored, it stays ignored
		// through the rest, whose loop has no use for it, and through
		// its way back, until Notify takes it again.
		signal.Ignore(unix.SIGUSR1)
		return unix.Exec("/proc/self/exe", os.Args, env)
	}()
	signal.Notify(m.stop, unix.SIGUSR1)
	for _, fd := range dups[1:] {
		unix.Close(fd)
	}
	for _, o := range cio.outs {
		cio.follow(o)
	}
	if lerr := m.hub.listen(os.NewFile(uintptr(ln), "attach")); lerr != nil {
		err = errors.Join(err, lerr)
	}
	return fmt.Errorf("could not rest: %w", err)
}

// dupFd duplicates f's descriptor, without close-on-exec and without
// putting f in blocking mode as os.File.Fd would.
func dupFd(f syscall.Conn) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	if cerr := rc.Control(func(fd uintptr) { nfd, err = unix.FcntlInt(fd, unix.F_DUPFD, 3) }); cerr != nil {
		return -1, cerr
	}
	return nfd, err
}

// resumed returns the state a rest left, or nil if the monitor has not
// rested.
func resumed() (*restState, error) {
	why, ok := os.LookupEnv(resumeEnv)
	if !ok {
		return nil, nil
	}
	rs := &restState{}
	if err := json.Unmarshal([]byte(os.Getenv(restStateEnv)), rs); err != nil {
		return nil, fmt.Errorf("monitor: resume: %w", err)
	}
	os.Unsetenv(resumeEnv)
	os.Unsetenv(restStateEnv)
	if status, ok := strings.CutPrefix(why, "exit "); ok {
		n, err := strconv.Atoi(status)
		if err != nil {
			return nil, fmt.Errorf("monitor: resume %q: %w", why, err)
		}
		rs.exited = make(chan unix.WaitStatus, 1)
		rs.exited <- unix.WaitStatus(n)
	}
	return rs, nil
}

// file returns the inherited descriptor fd as a file, or nil for -1.
func (rs *restState) file(fd int, name string) *os.File {
	if fd < 0 {
		return nil
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name)
}

// resumeIO goes on with the container's stdio as a rest left it.
func (h *hub) resumeIO(rs *restState) *ctrIO {
	cio := &ctrIO{h: h}
	h.mu.Lock()
	if pty := rs.file(rs.Pty, "pty-master"); pty != nil {
		h.pty, h.stdin = pty, pty
		cio.outs = append(cio.outs, outEnd{pty, "stdout"})
	} else if stdin := rs.file(rs.Stdin, "stdin"); stdin != nil {
		h.stdin = stdin
	}
	h.mu.Unlock()
	for _, o := range []outEnd{{rs.file(rs.Stdout, "stdout"), "stdout"}, {rs.file(rs.Stderr, "stderr"), "stderr"}} {
		if o.f != nil {
			cio.outs = append(cio.outs, o)
		}
	}
	for _, o := range cio.outs {
		cio.follow(o)
	}
	return cio
}
