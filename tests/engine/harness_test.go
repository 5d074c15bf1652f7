package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/fixture"
)

// env is one test's berth: its own root, network prefix and subnet, so
// tests run beside each other and beside a user's real berth.
type env struct {
	t      *testing.T
	berth  string
	root   string
	prefix string
	subnet string // of the default network
	n      int    // random, makes names and subnets unique
}

// subnet returns the k-th extra subnet of the test, for networks it makes.
func (e *env) extraSubnet(k int) string {
	return fmt.Sprintf("10.%d.%d.0/24", 200+e.n%50, (e.n>>8+k)%256)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("engine tests need root (namespaces, cgroups, overlay mounts, nftables)")
	}
	e := &env{t: t, berth: fixture.Berth(t), root: t.TempDir()}
	n := rand.IntN(1 << 16)
	e.n = n
	e.prefix = fmt.Sprintf("bt%04x", n)
	e.subnet = fmt.Sprintf("10.%d.%d.0/24", 150+n%50, n>>8)
	conf := fmt.Sprintf("[network]\nprefix = %q\ndefault_subnet = %q\n", e.prefix, e.subnet)
	if err := os.WriteFile(filepath.Join(e.root, "berth.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)
	return e
}

// run runs berth and returns its stdout, stderr and exit status.
func (e *env) run(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(e.berth, append([]string{"--root", e.root}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// must runs berth, fails the test unless it succeeds, and returns its
// trimmed stdout.
func (e *env) must(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// fails runs berth, expects it to fail with a one-line error containing
// want, and returns that line.
func (e *env) fails(want string, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code == 0 {
		e.t.Fatalf("berth %s succeeded, want an error with %q\nstdout: %s", strings.Join(args, " "), want, out)
	}
	msg := strings.TrimSpace(errOut)
	if strings.Count(msg, "\n") > 0 || !strings.Contains(msg, want) {
		e.t.Fatalf("berth %s: want one line containing %q, got:\n%s", strings.Join(args, " "), want, msg)
	}
	return msg
}

func (e *env) busybox() string { return fixture.BusyboxImage(e.t, e.berth, e.root) }

// eventually polls cond for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cleanup removes every container and network of the test and checks that
// nothing is left on the host: mounts, links, nftables tables, processes.
func (e *env) cleanup() {
	t := e.t
	if ids, _, _ := e.run("ps", "-aq", "--no-trunc"); strings.TrimSpace(ids) != "" {
		for _, id := range strings.Fields(ids) {
			e.run("rm", "-f", "-v", id)
		}
	}
	if nets, _, _ := e.run("network", "ls", "-q"); strings.TrimSpace(nets) != "" {
		for _, n := range strings.Fields(nets) {
			if n != "bridge" {
				e.run("network", "rm", n)
			}
		}
	}
	fixture.Sweep(t, e.root, e.prefix)
}

// cmd is an unstarted berth command.
func (e *env) cmd(args ...string) *exec.Cmd {
	return exec.Command(e.berth, append([]string{"--root", e.root}, args...)...)
}
