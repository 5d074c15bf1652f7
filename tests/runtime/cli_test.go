package runtime

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestConsoleSocket creates a container with a terminal: the runtime sends
// the pty master over --console-socket, and the program's output arrives on
// it with a terminal's line endings.
func TestConsoleSocket(t *testing.T) {
	e := newEnv(t, "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on-a-tty")
	e.spec.Process.Terminal = true
	e.saveSpec()
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	masterc := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			masterc <- nil
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			masterc <- nil
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		masterc <- os.NewFile(uintptr(fds[0]), "master")
	}()
	id := e.id("tty")
	e.must("create", "--bundle", e.bundle, "--console-socket", sock, id)
	var master *os.File
	select {
	case master = <-masterc:
	case <-time.After(10 * time.Second):
	}
	if master == nil {
		t.Fatal("no pty master received on the console socket")
	}
	defer master.Close()
	e.must("start", id)
	master.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, _ := master.Read(buf)
	if got := string(buf[:n]); got != "on-a-tty\r\n" {
		t.Fatalf("console output %q, want \"on-a-tty\\r\\n\"", got)
	}
	if r := e.rt("create", "--bundle", e.bundle, e.id("notty")); r.code == 0 || !strings.Contains(r.stderr, "--console-socket") {
		t.Fatalf("terminal without a console socket: exit %d %q", r.code, r.stderr)
	}
}

// TestJSONLogAndNoPivot: errors also go to --log as JSON with runc's level
// names (conmon reads them), and --no-pivot runs containers under chroot.
func TestJSONLogAndNoPivot(t *testing.T) {
	e := newEnv(t, "true")
	logFile := filepath.Join(t.TempDir(), "log.json")
	if r := e.rt("--log", logFile, "--log-format", "json", "start", "missing"); r.code == 0 {
		t.Fatal("start of a missing container succeeded")
	}
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var entry struct{ Level, Msg string }
	if err := json.Unmarshal(data, &entry); err != nil || entry.Level != "error" || !strings.Contains(entry.Msg, `"missing"`) {
		t.Fatalf("log %q (%v)", data, err)
	}
	if r := e.rt("--log-format", "xml", "list"); r.code == 0 || !strings.Contains(r.stderr, "--log-format") {
		t.Fatalf("bad --log-format: exit %d %q", r.code, r.stderr)
	}
	if r := e.rt("--systemd-cgroup", "list"); r.code == 0 || !strings.Contains(r.stderr, "cgroupfs") {
		t.Fatalf("--systemd-cgroup: exit %d %q", r.code, r.stderr)
	}
	e.spec.Process.Args = []string{"sh", "-c", "echo $$"}
	e.saveSpec()
	if r := e.rt("run", "--no-pivot", "--bundle", e.bundle, e.id("nopivot")); r.code != 0 || r.stdout != "1\n" {
		t.Fatalf("--no-pivot: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
}

// TestFeaturesAndSpec checks the two commands tools use to discover the
// runtime.
func TestFeaturesAndSpec(t *testing.T) {
	e := newEnv(t, "true")
	var f struct {
		OCIVersionMax string
		Hooks         []string
		Linux         struct{ Namespaces []string }
	}
	if err := json.Unmarshal([]byte(e.must("features")), &f); err != nil {
		t.Fatal(err)
	}
	if f.OCIVersionMax != specs.Version || len(f.Hooks) != 6 || len(f.Linux.Namespaces) < 7 {
		t.Fatalf("features: %+v", f)
	}
	dir := t.TempDir()
	e.must("spec", "--bundle", dir)
	if r := e.rt("spec", "--bundle", dir); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("spec over an existing config.json: exit %d %q", r.code, r.stderr)
	}
}
