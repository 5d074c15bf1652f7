package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/fixture"
)

// serviceRoot is a temporary root whose control plane, once a command
// started it, is stopped when the test ends.
func serviceRoot(t *testing.T) (run func(args ...string) (string, string, int)) {
	t.Helper()
	berth, dir := fixture.Berth(t), t.TempDir()
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(dir, "serve.lock"))
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	return func(args ...string) (string, string, int) {
		cmd := exec.Command(berth, append([]string{"--root", dir}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
}

func TestServiceCommands(t *testing.T) {
	run := serviceRoot(t)
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(args...)
		if code != 0 {
			t.Fatalf("berth %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	// The first command starts the control plane.
	if out := must("service", "ls"); !strings.HasPrefix(out, "ID") {
		t.Fatalf("service ls: %q", out)
	}
	id := strings.TrimSpace(must("service", "create", "-d", "--name", "web", "--replicas", "3", "-p", "8080:80", "busybox", "sleep", "100"))
	if len(id) != 25 {
		t.Fatalf("create printed %q, want the service ID", id)
	}
	if out := must("service", "ls"); !strings.Contains(out, "web") || !strings.Contains(out, "0/3") || !strings.Contains(out, "*:8080->80/tcp") {
		t.Fatalf("service ls:\n%s", out)
	}
	if out := must("service", "inspect", "--format", "{{.id}} {{.spec.template.image}} {{.spec.replicas}}", "web"); out != id+" busybox 3\n" {
		t.Fatalf("inspect: %q", out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"service", "inspect", "nope"}, 2, "no such service: nope"},
		{[]string{"service", "scale", "web=-1"}, 2, "SERVICE=REPLICAS"},
		{[]string{"service", "create", "-d", "--replicas", "-2", "busybox"}, 2, "--replicas -2"},
		{[]string{"service", "create", "-d", "--update-delay", "soon", "busybox"}, 2, "--update-delay"},
		{[]string{"service", "create", "-d", "--limit-memory", "lots", "busybox"}, 2, "--limit-memory"},
		{[]string{"service", "create", "--bogus", "busybox"}, 2, "unknown flag: --bogus"},
		{[]string{"service", "create", "-d", "--name", "api", "-p", "8080:81", "busybox"}, 2, "port 8080/tcp is already published by service web"},
		{[]string{"service", "create", "-d", "--name", "web", "busybox"}, 4, "service web already exists"},
		{[]string{"serve"}, 4, "berth serve is already running for"},
	} {
		_, errOut, code := run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("berth %s: exit %d, %q; want exit %d and one line with %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.want)
		}
	}
	must("service", "scale", "-d", "web=1")
	if out := must("service", "ls", "--format", "{{.Name}} {{.Replicas}}"); out != "web 0/1\n" {
		t.Fatalf("after scale: %q", out)
	}
	must("service", "rm", "web")
	if out := must("service", "ls", "-q"); out != "" {
		t.Fatalf("after rm: %q", out)
	}
}

// Commands that find no control plane at once start exactly one.
func TestServiceAutostartRace(t *testing.T) {
	run := serviceRoot(t)
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, codes[i] = run("service", "ls", "-q")
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 0 {
			t.Fatalf("command %d: exit %d", i, c)
		}
	}
	out, _, _ := run("service", "ls", "-q")
	if out != "" {
		t.Fatalf("ls: %q", out)
	}
	// Exactly one serve holds the root.
	_, errOut, code := run("serve")
	if code != 4 || !strings.Contains(errOut, "already running") {
		t.Fatalf("serve: exit %d, %q", code, errOut)
	}
}
