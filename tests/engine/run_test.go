package engine

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
)

func TestRunForeground(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	out, errOut, code := e.run("run", "--rm", "--network", "none", img, "sh", "-c", "echo out; echo err >&2; exit 3")
	if code != 3 || out != "out\n" || errOut != "err\n" {
		t.Fatalf("run: exit %d, stdout %q, stderr %q; want 3, out, err", code, out, errOut)
	}
	if ids := e.must("ps", "-aq"); ids != "" {
		t.Fatalf("--rm left containers: %s", ids)
	}
	// The image's config and the flags merge as with Docker.
	got := e.must("run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "65534", "--hostname", "box", img,
		"sh", "-c", `echo "$A $(pwd) $(id -u) $(hostname) $HOSTNAME"`)
	if got != "1 /tmp 65534 box box" {
		t.Fatalf("env/workdir/user/hostname: got %q", got)
	}
	// stdin reaches the container with -i.
	cmd := e.cmd("run", "--rm", "-i", "--network", "none", img, "sh", "-c", "read x; echo got:$x")
	cmd.Stdin = strings.NewReader("hello\n")
	b, err := cmd.Output()
	if err != nil || string(b) != "got:hello\n" {
		t.Fatalf("run -i: %v, %q", err, b)
	}
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	id := e.must("run", "-d", "--name", "life", "--label", "app=web", img, "sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex ID", id)
	}
	if got := e.must("ps", "--format", "{{.Names}} {{.State}}"); got != "life running" {
		t.Fatalf("ps: %q", got)
	}
	if got := e.must("ps", "-q", "--filter", "label=app=web"); got != id[:12] {
		t.Fatalf("ps --filter label: %q", got)
	}
	pid, _ := strconv.Atoi(e.must("inspect", "-f", "{{.State.Pid}}", "life"))
	if pid <= 0 {
		t.Fatalf("inspect pid %d", pid)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("container process %d: %v", pid, err)
	}
	eventually(t, 5*time.Second, "log line", func() bool { return e.must("logs", "life") == "started" })
	if got := e.must("exec", "-e", "X=7", "life", "sh", "-c", "echo $X $$"); got == "" || !strings.HasPrefix(got, "7 ") {
		t.Fatalf("exec: %q", got)
	}
	if _, _, code := e.run("exec", "life", "sh", "-c", "exit 5"); code != 5 {
		t.Fatalf("exec exit status %d, want 5", code)
	}
	e.fails("is running", "rm", "life")
	start := time.Now()
	e.must("stop", "life")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %v: the TERM trap should end it at once", d)
	}
	if got := e.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "life"); got != "exited 0" {
		t.Fatalf("after stop: %q", got)
	}
	if got := e.must("logs", "--tail", "1", "life"); got != "bye" {
		t.Fatalf("logs --tail 1: %q", got)
	}
	e.must("start", "life")
	if got := e.must("inspect", "-f", "{{.State.Running}}", "life"); got != "true" {
		t.Fatalf("after start: running=%s", got)
	}
	e.must("kill", "life")
	if got := e.must("wait", "life"); got != "137" {
		t.Fatalf("wait after kill: %q, want 137", got)
	}
	e.must("rm", "life")
	e.fails("no such container", "inspect", "life")
	if _, err := os.Stat(filepath.Join(e.root, "containers", id)); !os.IsNotExist(err) {
		t.Fatalf("container directory left: %v", err)
	}
}

func TestRestartPolicy(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "flaky", "--network", "none", "--restart", "on-failure:2", img, "sh", "-c", "echo run; exit 1")
	eventually(t, 10*time.Second, "two restarts, then exited", func() bool {
		return e.must("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "flaky") == "exited 2"
	})
	if n := strings.Count(e.must("logs", "flaky"), "run"); n != 3 {
		t.Fatalf("ran %d times, want 3", n)
	}
	// A crash loop backs off instead of spinning: within 2 s, at most a
	// handful of restarts (100, 200, 400, 800 ms…).
	e.must("run", "-d", "--name", "loop", "--network", "none", "--restart", "always", img, "false")
	time.Sleep(2 * time.Second)
	n, _ := strconv.Atoi(e.must("inspect", "-f", "{{.RestartCount}}", "loop"))
	if n < 2 || n > 6 {
		t.Fatalf("restart count after 2 s: %d, want 2..6", n)
	}
	// stop ends it for good, even while it waits to restart.
	e.must("stop", "loop")
	time.Sleep(500 * time.Millisecond)
	if got := e.must("inspect", "-f", "{{.State.Status}}", "loop"); got != "exited" {
		t.Fatalf("after stop: %s", got)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.fails("localhost/nosuch", "run", "localhost/nosuch")
	e.fails("-v", "run", "-v", "a:b:c:d", img, "true")
	e.fails("-v", "run", "-v", "data:relative", img, "true")
	e.fails("-p", "run", "-p", "99999:80", img, "true")
	e.fails("memory limit", "run", "-m", "1m", img, "true")
	e.fails("--restart", "run", "--restart", "sometimes", img, "true")
	e.fails("stop signal", "run", "--stop-signal", "SIGNOPE", img, "true")
	e.fails("executable file not found", "run", "--network", "none", img, "nosuchcommand")
	// Values that only the kernel refused, with its words, when the
	// container started.
	for _, c := range [][]string{
		{"--cpus", "NaN"}, {"--cpus", "4096"}, {"--cpuset-cpus", "4096"}, {"--cpuset-cpus", "1-0"}, {"--dns", "notanip"},
		{"--add-host", "h:999.1.1.1"}, {"--health-cmd", "true", "--health-interval", "-5s"}, {"--tmpfs", "/x:size=abc"},
		{"--tmpfs", "/x:mode=999"}, {"--hostname", strings.Repeat("h", 65)}, {"-v", "/tmp:/proc"},
	} {
		args := append(append([]string{"run", "--rm", "--network", "none"}, c...), img, "true")
		msg := e.fails(c[len(c)-2], args...)
		if _, _, code := e.run(args...); code != 125 {
			t.Errorf("berth %s: exit %d, want 125 (%s)", strings.Join(args, " "), code, msg)
		}
	}
	e.fails("not supported", "run", "--rm", "--network", "container:other", img, "true")
	// -it needs a terminal on stdin; the test's is not one.
	e.fails("not a terminal", "run", "--rm", "-it", "--network", "none", img, "true")
	e.must("create", "--name", "taken", img)
	e.fails("already in use", "create", "--name", "taken", img)
	e.must("run", "-d", "--name", "web", "-p", "127.0.0.1:18731:80", img, "httpd", "-f", "-p", "80")
	e.fails("already", "run", "-d", "-p", "127.0.0.1:18731:80", img, "httpd", "-f", "-p", "80")
	if got := e.must("ps", "-a", "--format", "{{.Names}}"); got != "web\ntaken" && got != "taken\nweb" {
		t.Fatalf("failed runs left containers behind: %q", got)
	}
}

func TestInit(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	out, _, code := e.run("run", "--rm", "--init", "--network", "none", img, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; exit 4")
	if code != 4 || !strings.HasPrefix(out, "/dev/berth-init -- sh") {
		t.Fatalf("--init: exit %d, PID 1 is %q", code, out)
	}
	// Without a handler a PID 1 shell ignores SIGTERM; under the init it
	// gets it and dies at once.
	e.must("run", "-d", "--name", "i", "--init", "--network", "none", img, "sleep", "60")
	start := time.Now()
	e.must("stop", "i")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %v under --init", d)
	}
	if got := e.must("inspect", "-f", "{{.State.ExitCode}}", "i"); got != "143" {
		t.Fatalf("exit status after SIGTERM: %s", got)
	}
}

func TestTerminal(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	pty, slave, err := console.NewPty()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer pty.Close()
	tty, err := os.OpenFile(slave, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	pty.Resize(console.WinSize{Height: 33, Width: 77})
	cmd := e.cmd("run", "--rm", "-it", "--network", "none", img, "sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		pty.Write([]byte("tty; stty size; exit 7\r"))
	}()
	var out strings.Builder
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := pty.Read(buf)
			out.Write(buf[:n])
			if err != nil || strings.Contains(out.String(), "33 77") {
				close(done)
				return
			}
		}
	}()
	werr := make(chan error, 1)
	go func() { werr <- cmd.Wait() }()
	select {
	case err := <-werr:
		<-time.After(100 * time.Millisecond)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Fatalf("run -it: %v, output %q", err, out.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("run -it did not finish; output %q", out.String())
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	if s := out.String(); !strings.Contains(s, "/dev/pts/0") || !strings.Contains(s, "33 77") {
		t.Fatalf("terminal output %q: want the pty name and its size 33 77", s)
	}
}

func TestLogRotationAndUlimits(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	// --log-opt: the log rotates by size and keeps max-file files.
	e.must("run", "--name", "chatty", "--network", "none", "--log-opt", "max-size=2k", "--log-opt", "max-file=2", img,
		"sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done")
	path := e.must("inspect", "-f", "{{.LogPath}}", "chatty")
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil || st.Size() > 2048 {
			t.Fatalf("log file %s: %v, size %d", p, err, st.Size())
		}
	}
	if _, err := os.Stat(path + ".2"); !os.IsNotExist(err) {
		t.Fatalf("a third log file exists with max-file=2: %v", err)
	}
	if got := e.must("logs", "--tail", "1", "chatty"); got != "line-199" {
		t.Fatalf("last line: %q", got)
	}
	e.fails("max-size", "run", "--log-opt", "max-size=lots", img, "true")

	// A --ulimit above the host's hard limit is lowered to it, with a
	// warning, instead of failing.
	var host syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &host)
	e.must("run", "--name", "lim", "--network", "none", "--ulimit", "nofile=1024:"+strconv.FormatUint(host.Max+1000, 10), img, "true")
	if got := e.must("inspect", "-f", "{{.Warnings}}", "lim"); !strings.Contains(got, "hard limit") {
		t.Fatalf("no warning about the lowered limit: %q", got)
	}
	if got := e.must("run", "--rm", "--network", "none", "--ulimit", "nofile=100:200", img, "sh", "-c", "ulimit -n; ulimit -Hn"); got != "100\n200" {
		t.Fatalf("ulimit inside: %q", got)
	}
}

// TestTerminalLineEnds runs run -t, run -it, exec -t and exec -it on a
// terminal: a line ends with "\r\n" once, as with Docker and Podman (the
// container's terminal translates the newline; berth's must not again,
// which gave "\r\r\n").
func TestTerminalLineEnds(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "box", "--network", "none", img, "sleep", "600")
	for _, args := range [][]string{
		{"run", "--rm", "-t", "--network", "none", img},
		{"run", "--rm", "-it", "--network", "none", img},
		{"exec", "-t", "box"},
		{"exec", "-it", "box"},
	} {
		pty, slavePath, err := console.NewPty()
		if err != nil {
			t.Fatal(err)
		}
		slave, err := os.OpenFile(slavePath, os.O_RDWR, 0)
		if err != nil {
			pty.Close()
			t.Fatal(err)
		}
		cmd := e.cmd(append(args, "echo", "hi")...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		var out []byte
		buf := make([]byte, 256)
		for {
			n, err := pty.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil { // EIO once berth has gone
				break
			}
		}
		cmd.Wait()
		pty.Close()
		if got := strings.TrimPrefix(string(out), "^@"); got != "hi\r\n" {
			t.Errorf("berth %s echo hi on a terminal: %q, want %q", strings.Join(args, " "), got, "hi\r\n")
		}
	}
}
