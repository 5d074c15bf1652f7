package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// initConfig is what the runtime sends its init process over the sync
// socket. Init is a re-execution of the runtime binary, so both sides share
// this type.
type initConfig struct {
	Mode          string         `json:"mode"` // modeCreate or modeExec
	ID            string         `json:"id"`
	Bundle        string         `json:"bundle"`
	Spec          *specs.Spec    `json:"spec"`
	Process       *specs.Process `json:"process"`
	NoPivot       bool           `json:"noPivot,omitempty"`
	NoNewKeyring  bool           `json:"noNewKeyring,omitempty"`
	PreserveFDs   int            `json:"preserveFds,omitempty"`
	Console       bool           `json:"console,omitempty"`
	Hooks         bool           `json:"hooks,omitempty"` // stop for prestart/createRuntime hooks
	NewUserNS     bool           `json:"newUserNS,omitempty"`
	UnshareCgroup bool           `json:"unshareCgroup,omitempty"`
	Root          string         `json:"root,omitempty"` // exec: chroot here first
	// SeccompBPF is the spec's seccomp filter compiled by the runtime
	// process; empty, init compiles it itself.
	SeccompBPF   []byte `json:"seccompBPF,omitempty"`
	SeccompFlags uint   `json:"seccompFlags,omitempty"`
}

const (
	modeCreate = "create"
	modeExec   = "exec"
)

// Sync message types.
const (
	msgCgroup = "cgroup" // runtime → init: init is in its cgroup
	msgHooks  = "hooks"  // init → runtime: run prestart/createRuntime hooks now
	msgResume = "resume" // runtime → init: hooks done
	msgReady  = "ready"  // init → runtime: created, waiting for start
	msgError  = "error"  // init → runtime: setup failed
	msgNone   = ""       // no message is expected, only EOF
)

type syncMsg struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
}

// syncPipe is one end of the runtime↔init socket pair carrying JSON values.
type syncPipe struct {
	f   *os.File
	dec *json.Decoder
	enc *json.Encoder
}

func newSyncPipe(f *os.File) *syncPipe {
	return &syncPipe{f: f, dec: json.NewDecoder(f), enc: json.NewEncoder(f)}
}

func (p *syncPipe) send(v any) error { return p.enc.Encode(v) }

// recv reads the next message; an init error message becomes a Go error,
// and EOF is returned as io.EOF.
func (p *syncPipe) recv(want string) error {
	var m syncMsg
	if err := p.dec.Decode(&m); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return io.EOF
		}
		return err
	}
	if m.Type == msgError {
		return errors.New(m.Error)
	}
	if m.Type != want {
		return fmt.Errorf("init sent %q, expected %q", m.Type, want)
	}
	return nil
}

func (p *syncPipe) fail(err error) { _ = p.send(syncMsg{Type: msgError, Error: err.Error()}) }

// socketPair returns a connected pair of stream sockets, both close-on-exec.
func socketPair(name string) (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), name+"-parent"), os.NewFile(uintptr(fds[1]), name+"-child"), nil
}
