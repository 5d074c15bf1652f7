package network

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// notifyEnv names the descriptor on which a DNS server process reports
// "ok" once it serves, or why it could not.
const notifyEnv = "BERTH_DNS_NOTIFY_FD"

func (m *Manager) dnsPidFile(n *Network) string { return m.path("dns", n.ID+".pid") }

// ensureDNS starts n's DNS server through Settings.DNSCommand unless one
// runs, and waits until it serves. The caller holds the state lock.
func (m *Manager) ensureDNS(n *Network) error {
	if m.s.DNSCommand == nil {
		return nil
	}
	if _, ok := readPidFile(m.dnsPidFile(n)); ok {
		return nil
	}
	if err := os.MkdirAll(m.path("dns"), 0o700); err != nil {
		return err
	}
	cmd := m.s.DNSCommand(n.Name)
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env, notifyEnv+"="+strconv.Itoa(2+len(cmd.ExtraFiles)))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("network %s: embedded DNS server: %w", n.Name, err)
	}
	// Reaped here while this process lives; init reaps it afterwards.
	go func() { _ = cmd.Wait() }()
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg, err := io.ReadAll(r)
	msg = bytes.TrimSpace(msg)
	if string(msg) == "ok" {
		return nil
	}
	_ = cmd.Process.Kill()
	if len(msg) > 0 {
		return fmt.Errorf("network %s: embedded DNS server: %s: %w", n.Name, msg, errdefs.ErrUnavailable)
	}
	if err == nil {
		err = errors.New("exited before serving")
	}
	return fmt.Errorf("network %s: embedded DNS server: %v: %w", n.Name, err, errdefs.ErrUnavailable)
}

// stopDNS stops n's DNS server, if one runs. The caller holds the state
// lock; the server does not take it when told to stop.
func (m *Manager) stopDNS(n *Network) {
	path := m.dnsPidFile(n)
	defer os.Remove(path)
	rec, ok := readPidFile(path)
	if !ok {
		return
	}
	_ = syscall.Kill(rec.pid, syscall.SIGTERM)
	for i := 0; i < 200 && rec.alive(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if rec.alive() {
		_ = syscall.Kill(rec.pid, syscall.SIGKILL)
	}
}

// pidRecord identifies a process across PID reuse by its start time.
type pidRecord struct {
	pid   int
	start string
}

func (p pidRecord) String() string { return fmt.Sprintf("%d %s\n", p.pid, p.start) }

func (p pidRecord) alive() bool {
	st, state, err := procStart(p.pid)
	return err == nil && st == p.start && state != "Z" && state != "X"
}

func selfPidRecord() (pidRecord, error) {
	st, _, err := procStart(os.Getpid())
	return pidRecord{os.Getpid(), st}, err
}

// readPidFile returns the record in path and whether that process lives.
func readPidFile(path string) (pidRecord, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return pidRecord{}, false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return pidRecord{}, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return pidRecord{}, false
	}
	rec := pidRecord{pid, f[1]}
	return rec, rec.alive()
}

// procStart returns a process's start time (field 22 of /proc/PID/stat)
// and state.
func procStart(pid int) (start, state string, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", "", err
	}
	// The command name, in parentheses, may hold spaces.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return "", "", errors.New("malformed stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return "", "", errors.New("malformed stat")
	}
	return f[19], f[0], nil
}
