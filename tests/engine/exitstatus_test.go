package engine

import (
	"strings"
	"testing"
)

// TestExitStatusTable holds run, exec and start -a to the exit statuses
// Docker and Podman give (measured with Podman 4 and runc): the program's
// own, 127 when the command is not there, 126 when it cannot be executed,
// 125 for berth's own failures. Each failure is one line that names the
// command as Docker and Podman do (`exec: "nope": executable file not
// found in $PATH`), without the runtime's field names or the container's
// id. Where they differ berth keeps 125 for what is not the command: a
// working directory exec cannot enter (Podman 127, by matching "no such
// file"), and start -a (Podman 125) exits like run.
func TestExitStatusTable(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	e.must("run", "-d", "--name", "box", "--network", "none", img, "sleep", "600")
	type row struct {
		args []string
		want int
		msg  string // in the one line on stderr
	}
	rows := []row{}
	cmds := []struct {
		cmd  []string
		want int
		msg  string
	}{
		{[]string{"true"}, 0, ""},
		{[]string{"sh", "-c", "exit 3"}, 3, ""},
		{[]string{"nope"}, 127, `exec: "nope": executable file not found in $PATH`},
		{[]string{"/nope"}, 127, `exec: "/nope": stat /nope: no such file or directory`},
		{[]string{"/etc/passwd"}, 126, `exec: "/etc/passwd": permission denied`},
		{[]string{"/bin"}, 126, `exec: "/bin": is a directory`},
	}
	for i, c := range cmds {
		rows = append(rows,
			row{append([]string{"run", "--rm", "--network", "none", img}, c.cmd...), c.want, c.msg},
			row{append([]string{"exec", "box"}, c.cmd...), c.want, c.msg})
		name := "c" + string(rune('a'+i))
		e.must(append([]string{"create", "--name", name, "--network", "none", img}, c.cmd...)...)
		rows = append(rows, row{[]string{"start", "-a", name}, c.want, c.msg})
	}
	rows = append(rows,
		row{[]string{"run", "--bogus-flag", img}, 125, "unknown flag"},
		row{[]string{"run", "--rm", "--pull", "never", "localhost/no-such-image", "true"}, 125, "no-such-image"},
		row{[]string{"run", "--rm", "--cpus", "abc", img, "true"}, 125, "--cpus"},
		row{[]string{"exec", "--bogus-flag", "box", "true"}, 125, "unknown flag"},
		row{[]string{"exec", "no-such-container", "true"}, 125, "no-such-container"},
		row{[]string{"exec", "-w", "/nonexistent", "box", "true"}, 125, "working directory /nonexistent: no such file or directory"},
		row{[]string{"start", "-a", "--bogus-flag", "ca"}, 125, "unknown flag"},
		row{[]string{"start", "-a", "no-such-container"}, 125, "no-such-container"},
	)
	for _, r := range rows {
		_, errOut, code := e.run(r.args...)
		line := strings.TrimSpace(errOut)
		if code != r.want {
			t.Errorf("berth %s: exit %d, want %d (%s)", strings.Join(r.args, " "), code, r.want, line)
		}
		if r.want == 0 || r.msg == "" && r.want < 125 {
			continue
		}
		if strings.Contains(line, "\n") || !strings.Contains(line, r.msg) || strings.Contains(line, "process.") {
			t.Errorf("berth %s: stderr %q, want one line with %q", strings.Join(r.args, " "), line, r.msg)
		}
	}
}
