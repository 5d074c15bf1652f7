package images

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/tests/fixture"
)

// TestImportChanges imports a busybox root file system with --change and
// --message and finds them in `image inspect`, as with `docker import -c`.
func TestImportChanges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: snapshots hold device nodes, owners and overlay xattrs")
	}
	b := berth{t: t, bin: buildBerth(t), root: t.TempDir()}
	tarball := fixture.BusyboxRootfs(t)

	id := strings.TrimSpace(b.must("import", "-m", "made by a test",
		"-c", `ENTRYPOINT ["/bin/sh", "-c"]`, "--change", "CMD echo $GREETING",
		"-c", "ENV GREETING=hello PATH=/bin", "-c", "EXPOSE 80 53/udp", "-c", "WORKDIR /srv",
		"-c", "USER nobody", "-c", "LABEL org.example.a=1", "-c", "VOLUME /data",
		"-c", "STOPSIGNAL SIGQUIT", "-c", "HEALTHCHECK --interval=5s --retries=2 CMD true",
		"-c", "ONBUILD RUN true", tarball, "local/bb:changed"))
	var got []struct {
		ID      string `json:"Id"`
		Comment string
		Config  struct {
			Entrypoint, Cmd, Env, OnBuild []string
			ExposedPorts, Volumes         map[string]any
			WorkingDir, User, StopSignal  string
			Labels                        map[string]string
			Healthcheck                   struct {
				Test     []string
				Interval int64
				Retries  int
			}
		}
	}
	if err := json.Unmarshal([]byte(b.must("image", "inspect", "local/bb:changed")), &got); err != nil || len(got) != 1 {
		t.Fatalf("image inspect: %v %+v", err, got)
	}
	g := got[0]
	c := g.Config
	for _, check := range []struct {
		what      string
		got, want any
	}{
		{"Id", g.ID, "sha256:" + id},
		{"Comment", g.Comment, "made by a test"},
		{"Entrypoint", c.Entrypoint, []string{"/bin/sh", "-c"}},
		{"Cmd", c.Cmd, []string{"/bin/sh", "-c", "echo $GREETING"}},
		{"Env", c.Env, []string{"GREETING=hello", "PATH=/bin"}},
		{"ExposedPorts", len(c.ExposedPorts), 2},
		{"Volumes", len(c.Volumes), 1},
		{"WorkingDir", c.WorkingDir, "/srv"},
		{"User", c.User, "nobody"},
		{"StopSignal", c.StopSignal, "SIGQUIT"},
		{"Labels", c.Labels, map[string]string{"org.example.a": "1"}},
		{"Healthcheck", c.Healthcheck.Test, []string{"CMD-SHELL", "true"}},
		{"Healthcheck interval", c.Healthcheck.Interval, int64(5e9)},
		{"Healthcheck retries", c.Healthcheck.Retries, 2},
		{"OnBuild", c.OnBuild, []string{"RUN true"}},
	} {
		if !reflect.DeepEqual(check.got, check.want) {
			t.Errorf("%s = %#v, want %#v", check.what, check.got, check.want)
		}
	}

	// A bad change: one line, exit status 2 (invalid argument), nothing stored.
	_, errOut, code := b.run("import", "-c", "CMD sh", "-c", "FOO bar", tarball, "local/bb:bad")
	if code != 2 || !strings.HasPrefix(errOut, `berth: import: change "FOO bar": unknown instruction FOO`) ||
		strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("import with a bad change: exit %d, stderr %q", code, errOut)
	}
	for _, c := range []struct{ args []string }{
		{[]string{"import", "-c", "CMD", tarball, "local/bb:bare"}},
		{[]string{"import", tarball, "local/bb@sha256:" + strings.Repeat("0", 64)}},
	} {
		_, errOut, code := b.run(c.args...)
		if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "needs a command") && !strings.Contains(errOut, "digest") {
			t.Errorf("berth %s: exit %d, stderr %q; want exit 2 and one line", strings.Join(c.args, " "), code, errOut)
		}
	}
	if out := b.must("images", "-q"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("images after the failed import:\n%s", out)
	}

	// `-` reads the tarball from stdin, as `docker import - REF` does, and
	// leaves no spooled copy behind.
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(b.bin, "--root", b.root, "import", "-", "local/bb:stdin")
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import -: %v: %s", err, out)
	}
	if got := b.must("images", "--format", "{{.Repository}}:{{.Tag}}", "local/bb:stdin"); strings.TrimSpace(got) != "docker.io/local/bb:stdin" {
		t.Errorf("images after import -: %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(b.root, ".stdin-*")); len(left) != 0 {
		t.Errorf("import - left %v", left)
	}

	// `images` narrows by REPOSITORY[:TAG] and Docker's filters, and prints
	// through --format.
	b.must("tag", "local/bb:stdin", "other/bb:1")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"local/bb"}, "docker.io/local/bb:changed docker.io/local/bb:stdin"},
		{[]string{"local/bb:stdin"}, "docker.io/local/bb:stdin"},
		{[]string{"--filter", "reference=*/bb:1"}, "docker.io/other/bb:1"},
		{[]string{"--filter", "label=org.example.a=1"}, "docker.io/local/bb:changed"},
		{[]string{"--filter", "label=org.example.a=2"}, ""},
		{[]string{"--filter", "dangling=true"}, ""},
		// As Docker's: references repeated are alternatives, and the
		// positional REPOSITORY[:TAG] is one more of them; labels and
		// different keys must all hold.
		{[]string{"--filter", "reference=*/bb:1", "--filter", "reference=local/bb:stdin"}, "docker.io/local/bb:stdin docker.io/other/bb:1"},
		{[]string{"--filter", "reference=*/bb:1", "local/bb:stdin"}, "docker.io/local/bb:stdin docker.io/other/bb:1"},
		{[]string{"--filter", "label=org.example.a=1", "--filter", "label=org.example.b"}, ""},
		{[]string{"--filter", "label=org.example.a", "--filter", "reference=local/*"}, "docker.io/local/bb:changed"},
		{[]string{"--filter", "label!=org.example.a", "--filter", "dangling=false"}, "docker.io/local/bb:stdin docker.io/other/bb:1"},
	} {
		out := b.must(append([]string{"images", "--format", "{{.Repository}}:{{.Tag}}"}, c.args...)...)
		got := strings.Fields(out)
		slices.Sort(got)
		if strings.Join(got, " ") != c.want {
			t.Errorf("images %v: %q, want %q", c.args, got, c.want)
		}
	}
	if _, errOut, code := b.run("images", "--filter", "colour=red"); code != 2 || !strings.Contains(errOut, "unknown filter colour") {
		t.Errorf("images with a bad filter: exit %d, %q", code, errOut)
	}
	if _, errOut, code := b.run("images", "local/[bb"); code != 2 || !strings.Contains(errOut, "bad pattern") {
		t.Errorf("images with a bad pattern: exit %d, %q", code, errOut)
	}
	// --format as every list command reads it: "table" with titles, json
	// lines as Docker prints them.
	if got := b.must("images", "--format", `table {{.Repository}}\t{{.Tag}}`, "other/bb"); got != "REPOSITORY           TAG\ndocker.io/other/bb   1\n" {
		t.Errorf("images --format table: %q", got)
	}
	if got := b.must("images", "--format", "json", "other/bb"); !strings.HasPrefix(got, `{"Repository":"docker.io/other/bb","Tag":"1","Digest":"`) || strings.Count(got, "\n") != 1 {
		t.Errorf("images --format json: %q", got)
	}
	if _, errOut, code := b.run("images", "--format", "{{.Repository"); code != 2 || !strings.HasPrefix(errOut, "berth: --format: template: ") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("images with a bad template: exit %d, %q", code, errOut)
	}
}
