package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/container/logfile"
)

// monitorThreads returns the number of threads of container id's monitor,
// or 0 if there is none.
func (e *env) monitorThreads(id string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "container-monitor\x00"+id) {
			continue
		}
		status, _ := os.ReadFile(filepath.Join(d, "status"))
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Threads:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
	}
	return 0
}

// TestMonitorRest checks a detached container's monitor while it rests in
// package idle's C loop (one thread, no Go runtime): the log it writes reads
// back as the Go writer's does, it wakes for a client and for the exit, and
// rotates the log.
func TestMonitorRest(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	// Each container writes once its monitor rests and the test says go.
	dir := t.TempDir()
	wait := "until [ -e /in/go ]; do sleep 0.05; done; "
	script := wait + `printf 'plain\n'; printf 'q"b\\\\ \t<&>\001\n'; printf 'bad \377 utf8 ☃\n'; printf 'to stderr\n' >&2; ` +
		`printf 'partial'; sleep 1; printf ' done\n'; head -c 20000 /dev/zero | tr '\0' x; echo; echo end; exec sleep 100`
	id := e.must("run", "-d", "--name", "log", "--network", "none", "-v", dir+":/in:ro", img, "sh", "-c", script)
	rot := e.must("run", "-d", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "--network", "none",
		"-v", dir+":/in:ro", img, "sh", "-c", wait+"i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); done; exec sleep 100")
	eventually(t, 5*time.Second, "the monitors at rest", func() bool { return e.monitorThreads(id) == 1 && e.monitorThreads(rot) == 1 })
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the last line", func() bool { return strings.HasSuffix(e.must("logs", "log"), "end") })
	out, errOut, _ := e.run("logs", "log")
	want := "plain\nq\"b\\\\ \t<&>\x01\nbad \uFFFD utf8 ☃\npartial done\n" + strings.Repeat("x", 20000) + "\nend\n"
	if out != want {
		t.Errorf("logs written at rest:\n%q\nwant\n%q", out, want)
	}
	if errOut != "to stderr\n" {
		t.Errorf("stderr written at rest: %q", errOut)
	}

	// A client wakes the monitor, gets the output, and when it goes the
	// monitor rests again.
	e.must("run", "-d", "--name", "tick", "--network", "none", img, "sh", "-c", "while true; do echo tick; sleep 0.1; done")
	tick := e.must("inspect", "-f", "{{.Id}}", "tick")
	eventually(t, 5*time.Second, "tick's monitor at rest", func() bool { return e.monitorThreads(tick) == 1 })
	attach := e.cmd("attach", "tick")
	stdout, _ := attach.StdoutPipe()
	if err := attach.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "tick\n" {
		t.Fatalf("attached to a resting monitor: %q, %v", line, err)
	}
	if n := e.monitorThreads(tick); n <= 1 {
		t.Errorf("monitor with a client: %d threads", n)
	}
	attach.Process.Kill()
	attach.Wait()
	eventually(t, 5*time.Second, "tick's monitor at rest again", func() bool { return e.monitorThreads(tick) == 1 })
	e.must("kill", "tick")
	eventually(t, 5*time.Second, "tick exited", func() bool {
		return e.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "tick") == "exited 137"
	})

	// Rotation at rest: 2 files of at most 1 KiB.
	eventually(t, 5*time.Second, "the last rotated line", func() bool { return strings.HasSuffix(e.must("logs", "rot"), "line 99") })
	logs, _ := filepath.Glob(filepath.Join(e.root, "containers", rot, "ctr.log*"))
	if len(logs) != 2 {
		t.Errorf("log files after rotation: %v", logs)
	}
	for _, f := range logs {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 1024 {
			t.Errorf("%s: %v, %d bytes", f, err, fi.Size())
		}
	}
	if n := e.monitorThreads(rot); n != 1 {
		t.Errorf("rot's monitor: %d threads", n)
	}
}

// TestMonitorRestLogBytes feeds the same hostile bytes to the resting
// monitor's C writer and to logfile.Writer, and compares the entries read
// back: the same lines, cut at the same places, with the same replacements.
func TestMonitorRestLogBytes(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	data := hostileOutput()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	id := e.must("run", "-d", "--name", "bytes", "--network", "none", "-v", dir+":/in:ro", img, "sh", "-c",
		"until [ -e /in/go ]; do sleep 0.05; done; cat /in/data; exec sleep 100")
	eventually(t, 5*time.Second, "the monitor at rest", func() bool { return e.monitorThreads(id) == 1 })
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	ref := filepath.Join(t.TempDir(), "ref.log")
	w, err := logfile.NewWriter(ref, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	w.Stream("stdout").Write(data)
	w.Close()
	want := readEntries(t, ref)
	var got []logfile.Entry
	eventually(t, 10*time.Second, "all of it in the log", func() bool {
		got = readEntries(t, filepath.Join(e.root, "containers", id, "ctr.log"))
		return len(got) >= len(want)
	})
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Stream != want[i].Stream || !bytes.Equal(got[i].Line, want[i].Line) {
			t.Fatalf("entry %d: %s, %d bytes ending %q; want %s, %d bytes ending %q", i, got[i].Stream, len(got[i].Line),
				got[i].Line[max(0, len(got[i].Line)-16):], want[i].Stream, len(want[i].Line), want[i].Line[max(0, len(want[i].Line)-16):])
		}
	}
	if n := e.monitorThreads(id); n != 1 {
		t.Errorf("monitor: %d threads", n)
	}
}

// hostileOutput is what a container may write: random bytes (invalid
// UTF-8, control characters, JSON's special characters), lines longer than
// logfile.MaxLine with a multi-byte character across the cut, and valid
// text; it ends with a newline, so that no line is left unterminated.
func hostileOutput() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for i := 0; i < 40; i++ {
		b.WriteString("\n") // each case starts a line
		switch i % 4 {
		case 0:
			for j := 0; j < 2000; j++ {
				b.WriteByte(byte(r.IntN(256)))
			}
		case 1:
			b.WriteString(strings.Repeat("a", logfile.MaxLine-1-i%3) + "☃€\"\\<>&\u2028 end\n")
		case 2:
			b.WriteString("héllo \t wörld \x00\x1f\x7f {\"json\": true}\n")
		case 3:
			b.Write(bytes.Repeat([]byte{0xe2, 0x98}, 9000)) // truncated characters, no newline for 18000 bytes
		}
	}
	b.WriteString("\n")
	return b.Bytes()
}

func readEntries(t *testing.T, path string) []logfile.Entry {
	t.Helper()
	var es []logfile.Entry
	if err := logfile.Read(context.Background(), path, logfile.ReadOptions{Tail: -1}, func(e logfile.Entry) error {
		es = append(es, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return es
}

// TestStopStartAtOnce: a start right after a stop waits for the stopped
// run's monitor, which records the exit before it releases the network
// namespace and endpoints; before, it could release the new run's (start
// failed on a missing namespace, or the container lost its network). The
// window was widest for a monitor woken from its rest, so each stop comes
// after the container has run for more than a second.
func TestStopStartAtOnce(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	net := "ss" + e.prefix[2:]
	e.must("network", "create", "--subnet", e.extraSubnet(0), net)
	e.must("run", "-d", "--name", "srv", "--network", net, img, "sh", "-c", "echo up > /tmp/index.html; exec httpd -f -p 80 -h /tmp")
	e.must("run", "-d", "--name", "peer", "--network", net, img, "sleep", "1000")
	for i := 0; i < 6; i++ {
		time.Sleep(1200 * time.Millisecond)
		if i%2 == 0 {
			e.must("stop", "-t", "0", "srv")
			e.must("start", "srv")
		} else {
			e.must("restart", "-t", "0", "srv")
		}
		eventually(t, 3*time.Second, fmt.Sprintf("round %d: srv served by name", i), func() bool {
			out, _, code := e.run("exec", "peer", "wget", "-q", "-O", "-", "http://srv/index.html")
			return code == 0 && out == "up\n"
		})
	}
	e.must("rm", "-f", "srv", "peer")
	e.must("network", "rm", net)
}
