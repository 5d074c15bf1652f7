package monitorproto

import (
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// Frame kinds; see the package doc.
const (
	FrameStdin      = 0
	FrameStdout     = 1
	FrameStderr     = 2
	FrameExit       = 3 // payload: the exit status in decimal (ExitPayload)
	FrameResize     = 4 // payload: rows and columns, two bytes each (ResizePayload)
	FrameCloseStdin = 5
	FrameSignal     = 6 // payload: the signal number in decimal (SignalPayload)

	// MaxFrame is the largest payload.
	MaxFrame = 1 << 20
)

// FrameWriter writes frames; it is safe for concurrent use.
type FrameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewFrameWriter returns a FrameWriter that writes to w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// WriteFrame writes one frame; p must not be longer than MaxFrame.
func (fw *FrameWriter) WriteFrame(kind byte, p []byte) error {
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

// StreamWriter is an io.Writer that sends what is written to FW as frames
// of one kind, split at MaxFrame.
type StreamWriter struct {
	FW   *FrameWriter
	Kind byte
}

func (s StreamWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		n := min(len(p), MaxFrame)
		if err := s.FW.WriteFrame(s.Kind, p[:n]); err != nil {
			return 0, err
		}
		p = p[n:]
	}
	return total, nil
}

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (kind byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("attach: frame of %d bytes is too large", n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return hdr[0], payload, err
}

// ExitPayload is FrameExit's payload for the exit status code.
func ExitPayload(code int) []byte { return []byte(strconv.Itoa(code)) }

// ParseExit reads FrameExit's payload.
func ParseExit(p []byte) (int, error) {
	code, err := strconv.Atoi(string(p))
	if err != nil {
		return -1, fmt.Errorf("attach: bad exit status %q", p)
	}
	return code, nil
}

// ResizePayload is FrameResize's payload for a terminal of rows and cols.
func ResizePayload(rows, cols uint16) []byte {
	return []byte{byte(rows >> 8), byte(rows), byte(cols >> 8), byte(cols)}
}

// ParseResize reads FrameResize's payload; ok is false if it is not one.
func ParseResize(p []byte) (rows, cols uint16, ok bool) {
	if len(p) != 4 {
		return 0, 0, false
	}
	return uint16(p[0])<<8 | uint16(p[1]), uint16(p[2])<<8 | uint16(p[3]), true
}

// SignalPayload is FrameSignal's payload for signal number sig.
func SignalPayload(sig int) []byte { return []byte(strconv.Itoa(sig)) }

// ParseSignal reads FrameSignal's payload.
func ParseSignal(p []byte) (int, error) { return strconv.Atoi(string(p)) }
