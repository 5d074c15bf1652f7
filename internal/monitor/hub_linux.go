package monitor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/container/monitorproto"
	"golang.org/x/sys/unix"
)

// hub is the monitor's side of the container's stdio: it copies the
// container's output to the log and to every attached client, and the
// clients' input to the container.
type hub struct {
	ln    *net.UnixListener
	tty   bool
	mu    sync.Mutex
	conns map[net.Conn]*monitorproto.FrameWriter
	stdin io.WriteCloser // the container's stdin, or the pty master
	pty   *os.File
	// out receives the container's output; set by the monitor.
	out      func(stream string, p []byte)
	onSignal func(sig int)
	dirFd    *os.File // the container directory, for short socket paths
	// idle gets a value when the last client has gone.
	idle chan struct{}
	// accepting is closed when the accepting goroutine has returned.
	accepting chan struct{}
}

// shortPath returns a path for name in the directory open as dirFd that
// fits in a unix socket address (108 bytes) however deep the directory
// is, valid for any process that can see this one's /proc.
func shortPath(dirFd *os.File, name string) string {
	return fmt.Sprintf("/proc/%d/fd/%d/%s", os.Getpid(), dirFd.Fd(), name)
}

// newHub listens on the container's attach socket, or, given the listener
// of an earlier incarnation of the monitor (see rest), goes on with it.
func newHub(dir string, tty bool, listener *os.File) (*hub, error) {
	d, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	h := &hub{tty: tty, conns: map[net.Conn]*monitorproto.FrameWriter{}, dirFd: d, idle: make(chan struct{}, 1)}
	if listener != nil {
		err = h.listen(listener)
	} else {
		os.Remove(filepath.Join(dir, monitorproto.AttachSocket))
		h.ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: shortPath(d, monitorproto.AttachSocket), Net: "unix"})
		if err == nil {
			h.accept()
		}
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("attach socket: %w", err)
	}
	return h, nil
}

// listen goes on with an inherited listener: the clients already waiting
// are served before it returns, so that the caller sees them.
func (h *hub) listen(f *os.File) error {
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return err
	}
	ln, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return errors.New("not a unix socket")
	}
	h.ln = ln
	for pending(ln) {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		h.adoptConn(conn)
	}
	h.accept()
	return nil
}

// pending reports whether a client waits to be accepted on ln.
func pending(ln *net.UnixListener) bool {
	rc, err := ln.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	rc.Control(func(fd uintptr) {
		n, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	})
	return n > 0
}

// accept serves the clients that connect, until stopAccepting.
func (h *hub) accept() {
	h.ln.SetUnlinkOnClose(false)
	done := make(chan struct{})
	h.accepting = done
	go func() {
		defer close(done)
		for {
			conn, err := h.ln.Accept()
			if err != nil {
				return
			}
			h.adoptConn(conn)
		}
	}()
}

// stopAccepting hands the listener over as an inheritable descriptor,
// unless a client is attached: then it goes on accepting and returns -1.
func (h *hub) stopAccepting() (int, error) {
	fd, err := dupFd(h.ln)
	if err != nil {
		return -1, err
	}
	h.ln.Close()
	<-h.accepting
	if h.clients() == 0 {
		return fd, nil
	}
	return -1, h.listen(os.NewFile(uintptr(fd), "attach"))
}

// adopt serves an inherited connection as an attached client.
func (h *hub) adopt(f *os.File) {
	conn, err := net.FileConn(f)
	f.Close()
	if err == nil {
		h.adoptConn(conn)
	}
}

func (h *hub) adoptConn(conn net.Conn) {
	h.mu.Lock()
	h.conns[conn] = monitorproto.NewFrameWriter(conn)
	h.mu.Unlock()
	go h.serve(conn)
}

// serve reads a client's frames until it goes away.
func (h *hub) serve(conn net.Conn) {
	defer h.drop(conn)
	for {
		kind, p, err := monitorproto.ReadFrame(conn)
		if err != nil {
			return
		}
		h.mu.Lock()
		stdin, pty := h.stdin, h.pty
		h.mu.Unlock()
		switch kind {
		case monitorproto.FrameStdin:
			if stdin != nil {
				stdin.Write(p)
			}
		case monitorproto.FrameCloseStdin:
			if stdin != nil && !h.tty {
				stdin.Close()
			}
		case monitorproto.FrameResize:
			if rows, cols, ok := monitorproto.ParseResize(p); ok && pty != nil {
				unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
			}
		case monitorproto.FrameSignal:
			if n, err := monitorproto.ParseSignal(p); err == nil && h.onSignal != nil {
				h.onSignal(n)
			}
		}
	}
}

func (h *hub) drop(conn net.Conn) {
	h.mu.Lock()
	h.dropLocked(conn)
	h.mu.Unlock()
}

func (h *hub) dropLocked(conn net.Conn) {
	if _, ok := h.conns[conn]; !ok {
		return
	}
	delete(h.conns, conn)
	conn.Close()
	if len(h.conns) == 0 {
		select {
		case h.idle <- struct{}{}:
		default:
		}
	}
}

// clients is the number of attached clients.
func (h *hub) clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// broadcast sends output to every client; a client that cannot take it
// within a few seconds is dropped rather than stalling the container.
func (h *hub) broadcast(kind byte, p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for conn, fw := range h.conns {
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := fw.WriteFrame(kind, p); err != nil {
			h.dropLocked(conn)
		}
	}
}

// exit tells every client the container's final exit status.
func (h *hub) exit(code int) {
	h.broadcast(monitorproto.FrameExit, monitorproto.ExitPayload(code))
}

func (h *hub) close() {
	h.ln.Close()
	h.mu.Lock()
	for conn := range h.conns {
		conn.Close()
	}
	h.mu.Unlock()
	h.dirFd.Close()
}
