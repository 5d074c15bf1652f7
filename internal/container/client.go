package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/berth-dev/berth/internal/container/monitorproto"
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
	fw := monitorproto.NewFrameWriter(conn)
	if s.Stdin != nil {
		go func() {
			io.Copy(monitorproto.StreamWriter{FW: fw, Kind: monitorproto.FrameStdin}, s.Stdin)
			fw.WriteFrame(monitorproto.FrameCloseStdin, nil)
		}()
	}
	if s.Resize != nil {
		go func() {
			for sz := range s.Resize {
				fw.WriteFrame(monitorproto.FrameResize, monitorproto.ResizePayload(sz[0], sz[1]))
			}
		}()
	}
	if s.Signals != nil {
		go func() {
			for sig := range s.Signals {
				fw.WriteFrame(monitorproto.FrameSignal, monitorproto.SignalPayload(sig))
			}
		}()
	}
	for {
		kind, p, err := monitorproto.ReadFrame(conn)
		if err != nil {
			return -1, ErrDetached
		}
		switch kind {
		case monitorproto.FrameStdout:
			s.Stdout.Write(p)
		case monitorproto.FrameStderr:
			s.Stderr.Write(p)
		case monitorproto.FrameExit:
			return monitorproto.ParseExit(p)
		}
	}
}

// Attach connects to the monitor of the running container ref names.
func (e *Engine) Attach(ctx context.Context, ref string) (net.Conn, *Container, error) {
	c, st, err := e.Get(ctx, ref)
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
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), monitorproto.AttachSocket))
	if err != nil {
		return nil, nil, fmt.Errorf("attach to %s: %w", c.Name, err)
	}
	return conn, c, nil
}
