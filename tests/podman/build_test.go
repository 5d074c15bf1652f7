//go:build linux

package podman

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/image/registrytest"
	"github.com/berth-dev/berth/tests/fixture"
)

// TestBuildInterop builds an image with berth build, pushes it to a real
// registry, and has skopeo inspect it and Podman pull and run it.
func TestBuildInterop(t *testing.T) {
	needPodman(t)
	reg := registrytest.Start(t)
	p := newPodman(t, buildRuntime(t))
	berth, root := fixture.Berth(t), t.TempDir()
	base := fixture.BusyboxImage(t, berth, root)
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "msg.txt"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "Containerfile"), []byte("FROM "+base+
		"\nCOPY msg.txt /\nRUN echo built >> /msg.txt\nENV GREETING=hi\nCMD [\"cat\", \"/msg.txt\"]\n"), 0o644)
	ref := reg.Ref("built/app:1")
	berthDo := func(args ...string) {
		t.Helper()
		cmd := exec.Command(berth, append([]string{"--root", root}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	berthDo("build", "-q", "--network", "none", "-t", ref, ctx)
	berthDo("push", ref)
	if _, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--config", "docker://"+ref).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "GREETING=hi") {
			t.Fatalf("skopeo inspect: %v\n%s", err, out)
		}
	}
	p.must(t, "pull", "--tls-verify=false", ref)
	if out := p.must(t, "run", "--rm", runFlags, ref); strings.TrimSpace(out) != "hello\nbuilt" {
		t.Fatalf("podman run of the built image: %q", out)
	}
}
