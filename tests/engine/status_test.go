package engine

import (
	"strings"
	"testing"
)

// TestExitStatuses holds run, exec and start -a to Docker's and Podman's
// exit statuses — the program's own, 126 (cannot execute), 127 (not
// found), 125 (berth's own failure, flags included) — and the other
// commands to 2 for a bad flag, like their other invalid input. Every
// failure is one line.
func TestExitStatuses(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "box", "--network", "none", img, "sleep", "600")
	e.must("create", "--name", "nocmd", "--network", "none", img, "nosuch")
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"run", "--rm", "--network", "none", img, "sh", "-c", "exit 3"}, 3},
		{[]string{"run", "--rm", "--network", "none", img, "nosuch"}, 127},
		{[]string{"run", "--rm", "--network", "none", img, "/nonexistent"}, 127},
		{[]string{"run", "--rm", "--network", "none", img, "/etc/passwd"}, 126},
		{[]string{"run", "--rm", "--network", "none", img, "/bin"}, 126},
		{[]string{"run", "--bogus-flag", img}, 125},
		{[]string{"run"}, 125},
		{[]string{"run", "--rm", "--cpus", "abc", img, "true"}, 125},
		{[]string{"run", "--rm", "--pull", "never", "localhost/no-such-image", "true"}, 125},
		{[]string{"exec", "box", "sh", "-c", "exit 4"}, 4},
		{[]string{"exec", "box", "nosuch"}, 127},
		{[]string{"exec", "box", "/etc/passwd"}, 126},
		{[]string{"exec", "no-such-container", "true"}, 125},
		{[]string{"exec", "--bogus-flag", "box", "true"}, 125},
		{[]string{"start", "-a", "nocmd"}, 127},
		{[]string{"ps", "--bogus-flag"}, 2},
		{[]string{"ps", "--filter", "status=bogus"}, 2},
	} {
		_, errOut, code := e.run(c.args...)
		if code != c.want {
			t.Errorf("berth %s: exit %d, want %d (%s)", strings.Join(c.args, " "), code, c.want, errOut)
		}
		if c.want > 100 || c.want == 2 {
			if errOut = strings.TrimSpace(errOut); errOut == "" || strings.Contains(errOut, "\n") {
				t.Errorf("berth %s: want one line on stderr, got %q", strings.Join(c.args, " "), errOut)
			}
		}
	}
}
