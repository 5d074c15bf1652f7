package build

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/fixture"
)

// TestKilledBuildSwept kills a build with SIGKILL while its RUN step runs,
// beside another build that goes on: the next build removes the killed
// one's step container and work directory, and leaves the running one's.
func TestKilledBuildSwept(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("RUN needs root")
	}
	berth, root := fixture.Berth(t), t.TempDir()
	base := fixture.BusyboxImage(t, berth, root)
	berthCmd := func(args ...string) *exec.Cmd {
		return exec.Command(berth, append([]string{"--root", root}, args...)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := berthCmd(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	containers := func() []string { return strings.Fields(must("ps", "-aq", "--no-trunc")) }
	t.Cleanup(func() {
		for _, id := range containers() {
			berthCmd("rm", "-f", id).Run()
		}
	})
	ctxDir := t.TempDir()
	// start starts a build whose RUN takes a minute and returns it once
	// its step container is there, with that container's ID.
	start := func(tag string) (*exec.Cmd, string) {
		t.Helper()
		before := containers()
		file := filepath.Join(ctxDir, tag)
		os.WriteFile(file, []byte("FROM "+base+"\nRUN sleep 60 # "+tag+"\n"), 0o644)
		cmd := berthCmd("build", "--network", "none", "-f", file, ctxDir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for _, id := range containers() {
				if !slices.Contains(before, id) {
					return cmd, id
				}
			}
		}
		cmd.Process.Kill()
		t.Fatalf("build %s made no step container:\n%s", tag, out.String())
		return nil, ""
	}
	running, runningCtr := start("running")
	defer func() { running.Process.Kill(); running.Wait() }()
	killed, killedCtr := start("killed")
	killed.Process.Kill()
	killed.Wait()
	if ids := containers(); !slices.Contains(ids, killedCtr) {
		t.Fatalf("the killed build's step container is gone before the next build: %v", ids)
	}
	work, _ := os.ReadDir(filepath.Join(root, "build"))
	if len(work) != 2 {
		t.Fatalf("%d work directories for two builds", len(work))
	}

	os.WriteFile(filepath.Join(ctxDir, "next"), []byte("FROM "+base+"\nENV X=1\n"), 0o644)
	must("build", "-q", "-f", filepath.Join(ctxDir, "next"), ctxDir)
	ids := containers()
	if slices.Contains(ids, killedCtr) {
		t.Errorf("the killed build's step container is still there after the next build")
	}
	if !slices.Contains(ids, runningCtr) {
		t.Errorf("the next build removed the step container of a build that is running")
	}
	if work, _ := os.ReadDir(filepath.Join(root, "build")); len(work) != 1 {
		t.Errorf("%d work directories left, want the running build's", len(work))
	}
	if running.ProcessState != nil {
		t.Errorf("the running build ended: %v", running.ProcessState)
	}
}
