package container

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// hub is the monitor's side of the container's stdio: it copies the
// container's output to the log and to every attached client, and the
// clients' input to the container.
type hub struct {
	ln    *net.UnixListener
	tty   bool
	mu    sync.Mutex
	conns map[net.Conn]*frameWriter
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
	h := &hub{tty: tty, conns: map[net.Conn]*frameWriter{}, dirFd: d, idle: make(chan struct{}, 1)}
	if listener != nil {
		err = h.listen(listener)
	} else {
		os.Remove(filepath.Join(dir, attachSock))
		h.ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: shortPath(d, attachSock), Net: "unix"})
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
	h.conns[conn] = &frameWriter{w: conn}
	h.mu.Unlock()
	go h.serve(conn)
}

// serve reads a client's frames until it goes away.
func (h *hub) serve(conn net.Conn) {
	defer h.drop(conn)
	for {
		kind, p, err := readFrame(conn)
		if err != nil {
			return
		}
		h.mu.Lock()
		stdin, pty := h.stdin, h.pty
		h.mu.Unlock()
		switch kind {
		case frameStdin:
			if stdin != nil {
				stdin.Write(p)
			}
		case frameCloseStdin:
			if stdin != nil && !h.tty {
				stdin.Close()
			}
		case frameResize:
			if pty != nil && len(p) == 4 {
				ws := &unix.Winsize{Row: uint16(p[0])<<8 | uint16(p[1]), Col: uint16(p[2])<<8 | uint16(p[3])}
				unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, ws)
			}
		case frameSignal:
			if n, err := strconv.Atoi(string(p)); err == nil && h.onSignal != nil {
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
		if err := fw.write(kind, p); err != nil {
			h.dropLocked(conn)
		}
	}
}

// exit tells every client the container's final exit status.
func (h *hub) exit(code int) {
	h.broadcast(frameExit, exitPayload(code))
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

// ctrIO is the stdio of one run of the container.
type ctrIO struct {
	h                     *hub
	stdin, stdout, stderr *os.File // the container's ends
	outs                  []outEnd // this side's ends of its output
	consoleSocket         string
	consoleLn             *net.UnixListener
	master                chan *os.File
	copies                sync.WaitGroup
}

// containerIO makes the pipes (or, for a terminal, the console socket) for
// one run of the container.
func (h *hub) containerIO(openStdin bool) (*ctrIO, error) {
	cio := &ctrIO{h: h}
	var err error
	if cio.stdin, err = os.Open(os.DevNull); err != nil {
		return nil, err
	}
	if h.tty {
		name := "console.sock"
		os.Remove(filepath.Join(h.dirFd.Name(), name))
		cio.consoleSocket = shortPath(h.dirFd, name)
		if cio.consoleLn, err = net.ListenUnix("unix", &net.UnixAddr{Name: cio.consoleSocket, Net: "unix"}); err != nil {
			return nil, fmt.Errorf("console socket: %w", err)
		}
		cio.master = make(chan *os.File, 1)
		go cio.receiveMaster()
		cio.stdout, cio.stderr = cio.stdin, cio.stdin
		return cio, nil
	}
	if openStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		cio.stdin.Close()
		cio.stdin = r
		h.mu.Lock()
		h.stdin = w
		h.mu.Unlock()
	}
	for _, stream := range []string{"stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			cio.close()
			return nil, err
		}
		if stream == "stdout" {
			cio.stdout = w
		} else {
			cio.stderr = w
		}
		cio.follow(outEnd{r, stream})
	}
	return cio, nil
}

// outEnd is the monitor's end of one of the container's output streams.
type outEnd struct {
	f      *os.File
	stream string
}

// follow forwards one of the container's output streams until it ends or
// pause stops it.
func (cio *ctrIO) follow(o outEnd) {
	if !slices.Contains(cio.outs, o) {
		cio.outs = append(cio.outs, o)
	}
	kind := byte(frameStdout)
	if o.stream == "stderr" {
		kind = frameStderr
	}
	stream, r := o.stream, o.f
	cio.copies.Add(1)
	go func() {
		defer cio.copies.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				cio.h.out(stream, buf[:n])
				cio.h.broadcast(kind, buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
}

// receiveMaster accepts the runtime's connection on the console socket and
// takes the pty master it sends.
func (cio *ctrIO) receiveMaster() {
	conn, err := cio.consoleLn.AcceptUnix()
	if err != nil {
		close(cio.master)
		return
	}
	defer conn.Close()
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err == nil {
		if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil && len(msgs) > 0 {
			if fds, ferr := unix.ParseUnixRights(&msgs[0]); ferr == nil && len(fds) > 0 {
				// Non-blocking, so that its reads can be interrupted
				// (pause) and it can be polled.
				unix.SetNonblock(fds[0], true)
				unix.CloseOnExec(fds[0])
				cio.master <- os.NewFile(uintptr(fds[0]), "pty-master")
				return
			}
		}
	}
	close(cio.master)
}

// closeChildEnds closes this process's copies of the container's ends
// once the runtime has handed them to the container.
func (cio *ctrIO) closeChildEnds() {
	for _, f := range []*os.File{cio.stdin, cio.stdout, cio.stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// afterStart completes the setup once the container runs: for a terminal,
// the pty master must have arrived.
func (cio *ctrIO) afterStart() error {
	if cio.master == nil {
		return nil
	}
	select {
	case pty, ok := <-cio.master:
		if !ok {
			return errors.New("the runtime sent no terminal on the console socket")
		}
		cio.h.mu.Lock()
		cio.h.pty, cio.h.stdin = pty, pty
		cio.h.mu.Unlock()
		cio.follow(outEnd{pty, "stdout"})
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("the runtime sent no terminal on the console socket")
	}
}

// pause stops forwarding the container's output and returns once nothing
// read is left unwritten; what the container writes meanwhile waits in the
// pipes. follow starts again.
func (cio *ctrIO) pause() {
	for _, o := range cio.outs {
		o.f.SetReadDeadline(time.Now())
	}
	cio.copies.Wait()
	for _, o := range cio.outs {
		o.f.SetReadDeadline(time.Time{})
	}
}

// drain waits, up to timeout, for the container's output to end.
func (cio *ctrIO) drain(timeout time.Duration) {
	done := make(chan struct{})
	go func() { cio.copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

func (cio *ctrIO) close() {
	cio.h.mu.Lock()
	if cio.h.stdin != nil {
		cio.h.stdin.Close()
	}
	cio.h.stdin, cio.h.pty = nil, nil
	cio.h.mu.Unlock()
	for _, o := range cio.outs {
		o.f.Close()
	}
	if cio.consoleLn != nil {
		cio.consoleLn.Close()
	}
}
