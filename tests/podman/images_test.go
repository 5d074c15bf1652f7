package podman

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	berthimage "github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/image/registrytest"
)

// TestImageInterop moves images both ways between berth and Podman through
// a real registry: an image berth pushes is pulled and run by Podman, and
// an image Podman pushes is pulled by berth and unpacks to the same tree.
func TestImageInterop(t *testing.T) {
	needPodman(t)
	reg := registrytest.Start(t)
	p := newPodman(t, buildRuntime(t))
	tarball := filepath.Join(p.dir, "rootfs.tar")
	writeBusyboxRootfs(t, tarball)
	store, err := berthimage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("berth push, podman pull and run", func(t *testing.T) {
		local, _ := berthimage.ParseReference("local/interop:1")
		if _, err := store.Import(ctx, tarball, local, nil); err != nil {
			t.Fatal(err)
		}
		dst, _ := berthimage.ParseReference(reg.Ref("interop/from-berth:1"))
		if _, err := store.Push(ctx, local.String(), dst, berthimage.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		p.must(t, "pull", "--tls-verify=false", reg.Ref("interop/from-berth:1"))
		out := p.must(t, "run", "--rm", runFlags, reg.Ref("interop/from-berth:1"), "sh", "-c", "echo from-berth")
		if strings.TrimSpace(out) != "from-berth" {
			t.Fatalf("podman run: %q", out)
		}
	})

	t.Run("podman push, berth pull", func(t *testing.T) {
		p.must(t, "import", tarball, "localhost/interop-podman:1")
		p.must(t, "push", "--tls-verify=false", "localhost/interop-podman:1", reg.Ref("interop/from-podman:1"))
		ref, _ := berthimage.ParseReference(reg.Ref("interop/from-podman:1"))
		img, err := store.Pull(ctx, ref, berthimage.PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := filepath.Join(t.TempDir(), "want")
		os.MkdirAll(want, 0o755)
		if out, err := exec.Command("tar", "-xpf", tarball, "-C", want).CombinedOutput(); err != nil {
			t.Fatalf("tar: %v: %s", err, out)
		}
		got := treeOf(t, store.Snapshots().Path(img.Layers[len(img.Layers)-1].ChainID))
		if w := treeOf(t, want); got != w {
			t.Fatalf("berth's unpacked tree differs from the rootfs Podman pushed:\n--- got\n%s\n--- want\n%s", got, w)
		}
	})
}

// treeOf lists every entry under dir with its type, mode, owner, size and
// link target, one per line.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, path)
		line := fmt.Sprintf("%s %v %d:%d", rel, info.Mode(), st.Uid, st.Gid)
		switch {
		case info.Mode().IsRegular():
			line += fmt.Sprintf(" %d", info.Size())
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			line += " -> " + target
		}
		b.WriteString(line + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
