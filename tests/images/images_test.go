package images

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/image/registrytest"
	"github.com/berth-dev/berth/tests/fixture"
)

func buildBerth(t *testing.T) string {
	t.Helper()
	return fixture.Berth(t)
}

type berth struct {
	t    *testing.T
	bin  string
	root string
}

func (b berth) run(args ...string) (string, string, int) {
	b.t.Helper()
	cmd := exec.Command(b.bin, append([]string{"--root", b.root}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		b.t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func (b berth) must(args ...string) string {
	b.t.Helper()
	out, errOut, code := b.run(args...)
	if code != 0 {
		b.t.Fatalf("berth %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// TestImageCommands drives pull, images, tag, inspect, push, save, load and
// rmi through the binary, as a user would.
func TestImageCommands(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: snapshots hold device nodes, owners and overlay xattrs")
	}
	reg := registrytest.Start(t)
	reg.PushBusybox(t, reg.Ref("tools/busybox:1.36"))
	b := berth{t: t, bin: buildBerth(t), root: t.TempDir()}
	ref := reg.Ref("tools/busybox:1.36")

	id := strings.TrimSpace(b.must("pull", "-q", ref))
	if len(id) != 64 {
		t.Fatalf("pull -q printed %q, want the image ID", id)
	}
	list := b.must("images")
	if !strings.Contains(list, reg.Host+"/tools/busybox") || !strings.Contains(list, "1.36") || !strings.Contains(list, id[:12]) {
		t.Fatalf("images:\n%s", list)
	}
	b.must("tag", ref, "local/bb:mine")
	if got := strings.TrimSpace(b.must("image", "inspect", "--format", "{{.Id}} {{.Os}} {{len .RepoTags}}", "local/bb:mine")); got != "sha256:"+id+" linux 2" {
		t.Fatalf("inspect: %q", got)
	}
	b.must("push", "local/bb:mine", reg.Ref("copies/bb:1"))
	archive := filepath.Join(t.TempDir(), "bb.tar")
	b.must("save", "-o", archive, "local/bb:mine")
	other := berth{t: t, bin: b.bin, root: t.TempDir()}
	if out := other.must("load", "-i", archive); !strings.Contains(out, "docker.io/local/bb:mine") {
		t.Fatalf("load: %q", out)
	}
	if out := other.must("pull", "-q", reg.Ref("copies/bb:1")); strings.TrimSpace(out) != id {
		t.Fatalf("pull of the pushed copy: %q, want %s", out, id)
	}

	// Bad input: one line each, nothing changed.
	for _, args := range [][]string{{"pull", "Tools/BusyBox"}, {"rmi", "nope:1"}, {"tag", "nope", "x"}, {"pull", "--platform", "linux", ref}} {
		_, errOut, code := b.run(args...)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("berth %v: exit %d, stderr %q; want one line", args, code, errOut)
		}
	}
	if out := b.must("rmi", "local/bb:mine", ref); !strings.Contains(out, "Deleted: sha256:"+id) {
		t.Fatalf("rmi: %q", out)
	}
	if out := strings.TrimSpace(b.must("images", "-q")); out != "" {
		t.Fatalf("images after rmi: %q", out)
	}
}
