package container

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Streams are the attaching command's ends of a container's stdio.
type Streams struct {
	Stdin          io.Reader // nil: the container's stdin is not attached
	Stdout, Stderr io.Writer
	// Resize, if not nil, delivers terminal sizes (rows, columns) to pass
	// on; the first should be the current size.
	Resize <-chan [2]uint16
	// Signals, if not nil, delivers signals to forward to the container.
	Signals <-chan int
}

// ErrDetached is returned by AttachStreams when the connection ended
// without an exit status: the monitor went away.
var ErrDetached = errors.New("the container's monitor went away")

// AttachStreams relays s over conn, a connection to a container's monitor,
// until the container exits, and returns its exit status.
func AttachStreams(conn net.Conn, s Streams) (int, error) {
	fw := &frameWriter{w: conn}
	if s.Stdin != nil {
		go func() {
			io.Copy(streamWriter{fw: fw, kind: frameStdin}, s.Stdin)
			fw.write(frameCloseStdin, nil)
		}()
	}
	if s.Resize != nil {
		go func() {
			for sz := range s.Resize {
				fw.write(frameResize, []byte{byte(sz[0] >> 8), byte(sz[0]), byte(sz[1] >> 8), byte(sz[1])})
			}
		}()
	}
	if s.Signals != nil {
		go func() {
			for sig := range s.Signals {
				fw.write(frameSignal, []byte(strconv.Itoa(sig)))
			}
		}()
	}
	for {
		kind, p, err := readFrame(conn)
		if err != nil {
			return -1, ErrDetached
		}
		switch kind {
		case frameStdout:
			s.Stdout.Write(p)
		case frameStderr:
			s.Stderr.Write(p)
		case frameExit:
			code, err := strconv.Atoi(string(p))
			if err != nil {
				return -1, fmt.Errorf("attach: bad exit status %q", p)
			}
			return code, nil
		}
	}
}

// Attach connects to the monitor of the running container ref names.
func (e *Engine) Attach(ref string) (net.Conn, *Container, error) {
	c, st, err := e.Get(ref)
	if err != nil {
		return nil, nil, err
	}
	if !st.Running() {
		return nil, nil, fmt.Errorf("container %s is not running: start it first: %w", c.Name, errdefs.ErrConflict)
	}
	d, err := os.Open(e.dir(c.ID))
	if err != nil {
		return nil, nil, err
	}
	defer d.Close()
	conn, err := net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), attachSock))
	if err != nil {
		return nil, nil, fmt.Errorf("attach to %s: %w", c.Name, err)
	}
	return conn, c, nil
}
