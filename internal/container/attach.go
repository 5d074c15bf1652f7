package container

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// The attach protocol between a monitor and the berth commands attached to
// its container (run without -d, attach): frames of a one-byte kind, a
// four-byte big-endian length and that many bytes, over a unix stream
// socket. Clients send stdin, resize, close-stdin and signal frames; the
// monitor sends stdout, stderr and, last, exit.
const (
	frameStdin      = 0
	frameStdout     = 1
	frameStderr     = 2
	frameExit       = 3 // payload: the exit status in decimal
	frameResize     = 4 // payload: rows and columns, two bytes each
	frameCloseStdin = 5
	frameSignal     = 6 // payload: the signal number in decimal

	maxFrame = 1 << 20
)

// frameWriter writes frames; it is safe for concurrent use.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (fw *frameWriter) write(kind byte, p []byte) error {
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if _, err := fw.w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := fw.w.Write(p)
	return err
}

// streamWriter is an io.Writer that sends what is written as frames of
// one kind.
type streamWriter struct {
	fw   *frameWriter
	kind byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		if err := s.fw.write(s.kind, p[:n]); err != nil {
			return 0, err
		}
		p = p[n:]
	}
	return total, nil
}

// readFrame reads one frame.
func readFrame(r io.Reader) (kind byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("attach: frame of %d bytes is too large", n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return hdr[0], payload, err
}

func exitPayload(code int) []byte { return []byte(strconv.Itoa(code)) }
