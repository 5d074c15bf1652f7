package monitor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/container/monitorproto"
	"golang.org/x/sys/unix"
)

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
	kind := byte(monitorproto.FrameStdout)
	if o.stream == "stderr" {
		kind = monitorproto.FrameStderr
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
