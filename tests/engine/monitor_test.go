package engine

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
				n := 0
				for _, c := range strings.TrimSpace(v) {
					n = n*10 + int(c-'0')
				}
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
	script := `printf 'plain\n'; printf 'q"b\\\\ \t<&>\001\n'; printf 'bad \377 utf8 ☃\n'; printf 'to stderr\n' >&2; ` +
		`printf 'partial'; sleep 1; printf ' done\n'; head -c 20000 /dev/zero | tr '\0' x; echo; echo end; exec sleep 100`
	id := e.must("run", "-d", "--name", "log", "--network", "none", img, "sh", "-c", script)
	eventually(t, 5*time.Second, "the monitor at rest", func() bool { return e.monitorThreads(id) == 1 })
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
	rot := e.must("run", "-d", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "--network", "none", img,
		"sh", "-c", "sleep 0.5; i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); done; exec sleep 100")
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
