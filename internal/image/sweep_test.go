package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/image/registrytest"
	digest "github.com/opencontainers/go-digest"
)

// temporaryState lists the temporary state of commands on the store at
// root (see sweep.go, and the snapshot store's .tmp) and whatever is in
// tmpdir, the TMPDIR of the command, if not "".
func temporaryState(root, tmpdir string) []string {
	var out []string
	patterns := []string{
		filepath.Join(root, "blobs", "*", ".tmp-*"),
		filepath.Join(root, stagingDir, "*"),
		filepath.Join(root, scratchDir, "*"),
		filepath.Join(root, "snapshots", ".tmp", "*"),
	}
	if tmpdir != "" {
		patterns = append(patterns, filepath.Join(tmpdir, "*"))
	}
	for _, pattern := range patterns {
		m, _ := filepath.Glob(pattern)
		out = append(out, m...)
	}
	return out
}

// assertStoreIntact checks that every image's layers have their blob and
// snapshot, and that every blob matches its digest.
func assertStoreIntact(t *testing.T, s *Store) {
	t.Helper()
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		for _, d := range []digest.Digest{img.ID, img.Manifest} {
			if !s.blobs.has(d) {
				t.Fatalf("image %s: blob %s missing", img.ID, d)
			}
		}
		for _, l := range img.Layers {
			if !s.blobs.has(l.Digest) || !s.snaps.Has(l.ChainID) {
				t.Fatalf("image %s: layer %s missing", img.ID, l.Digest)
			}
		}
	}
	blobs, err := s.blobs.list()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range blobs {
		f, err := s.blobs.open(d)
		if err != nil {
			t.Fatal(err)
		}
		v := d.Verifier()
		io.Copy(v, f)
		f.Close()
		if !v.Verified() {
			t.Fatalf("blob %s does not match its digest", d)
		}
	}
}

// waitFor polls cond until it holds; it fails the test after 20s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// stallingProxy serves the registry reg through a proxy on 127.0.0.1 that
// sends only the first half of the first GET of blob d (size bytes), and
// the rest once release is called (or never, if the client goes first).
func stallingProxy(t *testing.T, reg *registrytest.Registry, d digest.Digest, size int64) (host string, release func()) {
	u, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	released := make(chan struct{})
	var once sync.Once
	var stalled atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) && stalled.CompareAndSwap(false, true) {
			w = &stallWriter{ResponseWriter: w, ctx: r.Context(), released: released, left: size / 2}
		}
		rp.ServeHTTP(w, r)
	}))
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs first
	return strings.TrimPrefix(srv.URL, "http://"), release
}

// stallWriter writes left bytes of a response's body, then waits for
// released.
type stallWriter struct {
	http.ResponseWriter
	ctx      context.Context
	released chan struct{}
	left     int64
}

func (w *stallWriter) Write(b []byte) (int, error) {
	if w.left <= 0 || int64(len(b)) < w.left {
		w.left -= int64(len(b))
		return w.ResponseWriter.Write(b)
	}
	n, err := w.ResponseWriter.Write(b[:w.left])
	if err != nil {
		return n, err
	}
	w.left = 0
	w.Flush()
	select {
	case <-w.released:
	case <-w.ctx.Done():
		return n, w.ctx.Err()
	}
	m, err := w.ResponseWriter.Write(b[n:])
	return n + m, err
}

func (w *stallWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// stalledPull pushes an image of a large layer and a small one, and
// returns its reference through a stallingProxy that stalls the large
// layer's blob: a pull of it keeps a partial blob and, waiting for the
// large layer's commit, the small layer unpacked in staging.
func stalledPull(t *testing.T, reg *registrytest.Registry) (ref Reference, release func()) {
	big := randomLayer(t, 4<<20)
	reg.PushImage(t, reg.Ref("stall/img:1"), big, registrytest.FileLayer(t, map[string]string{"small": "x"}))
	host, release := stallingProxy(t, reg, digest.FromBytes(big), int64(len(big)))
	return mustRef(t, host+"/stall/img:1"), release
}

// stalled reports whether state holds a partial blob and a staged layer.
// The partial blob is the held one, half of 4 MiB fetched: the small
// layer's, fetched while the held one unpacks, is there only for a moment.
func stalled(root string, state []string) bool {
	var blob, staged bool
	for _, p := range state {
		if strings.HasPrefix(p, filepath.Join(root, "blobs")+"/") {
			if st, err := os.Stat(p); err != nil || st.Size() < 1<<20 {
				return false
			}
			blob = true
		}
		staged = staged || strings.HasPrefix(p, filepath.Join(root, stagingDir)+"/")
	}
	return blob && staged
}

func assertExist(t *testing.T, paths []string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			t.Fatalf("a live writer's file is gone: %v", err)
		}
	}
}

// killMidway runs the helper process (see startHelper) and kills it as soon
// as it has temporary state, which it returns.
func killMidway(t *testing.T, op, arg, root, tmpdir string, stdin *os.File) []string {
	t.Helper()
	cmd := startHelper(t, op, arg, root, tmpdir, stdin)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var seen []string
	waitFor(t, op+"'s temporary state", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("%s ended (%v) before it was seen writing", op, err)
		default:
		}
		seen = temporaryState(root, tmpdir)
		return len(seen) > 0
	})
	cmd.Process.Kill()
	<-exited
	return seen
}

// rootfsTarball writes a root file system tarball with one file of size
// random bytes and returns its path.
func rootfsTarball(t *testing.T, size int) string {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "data", Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg})
	tw.Write(data)
	tw.Close()
	path := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertSwept checks that the command after a killed one left no
// temporary state, of either, and that the store is intact with want
// images.
func assertSwept(t *testing.T, s *Store, tmpdir string, want int) {
	t.Helper()
	if left := temporaryState(s.root, tmpdir); len(left) > 0 {
		t.Fatalf("the killed command's temporary state is still there: %v", left)
	}
	if imgs, err := s.List(); err != nil || len(imgs) != want {
		t.Fatalf("%d images (%v), want %d", len(imgs), err, want)
	}
	assertStoreIntact(t, s)
}

// TestPullKilledSwept kills a pull that holds a partial blob and a staged
// layer. While it lived, another pull into the store succeeded and left
// them alone; the pull after the kill sweeps them.
func TestPullKilledSwept(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	reg := registrytest.Start(t)
	reg.PushBusybox(t, reg.Ref("other/bb:1"))
	ref, _ := stalledPull(t, reg)
	root, tmpdir := t.TempDir(), t.TempDir()
	cmd := startHelper(t, "pull", ref.String(), root, tmpdir, nil)
	var live []string
	waitFor(t, "a partial blob and a staged layer", func() bool {
		live = temporaryState(root, tmpdir)
		return stalled(root, live)
	})
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, mustRef(t, reg.Ref("other/bb:1")), PullOptions{}); err != nil {
		t.Fatalf("pull beside a live pull: %v", err)
	}
	assertExist(t, live)
	cmd.Process.Kill()
	cmd.Wait()
	if _, err := s.Pull(ctx, ref, PullOptions{}); err != nil {
		t.Fatalf("pull after a killed one: %v", err)
	}
	assertSwept(t, s, tmpdir, 2)
}

// TestSweepSparesLivePull sweeps, and runs a pull and an import, while a
// pull in the same store is midway: the live pull's files stay, and it
// completes.
func TestSweepSparesLivePull(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	reg := registrytest.Start(t)
	reg.PushBusybox(t, reg.Ref("other/bb:1"))
	ref, release := stalledPull(t, reg)
	s := newStore(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Pull(ctx, ref, PullOptions{})
		done <- err
	}()
	var live []string
	waitFor(t, "a partial blob and a staged layer", func() bool {
		live = temporaryState(s.root, "")
		return stalled(s.root, live)
	})
	if _, err := s.Pull(ctx, mustRef(t, reg.Ref("other/bb:1")), PullOptions{}); err != nil {
		t.Fatalf("pull beside a live pull: %v", err)
	}
	if _, err := s.Import(ctx, rootfsTarball(t, 1<<10), mustRef(t, "localhost/small:1"), nil); err != nil {
		t.Fatalf("import beside a live pull: %v", err)
	}
	s.sweep()
	other, err := Open(s.root) // as another process would
	if err != nil {
		t.Fatal(err)
	}
	other.sweep()
	assertExist(t, live)
	release()
	if err := <-done; err != nil {
		t.Fatalf("the live pull: %v", err)
	}
	assertSwept(t, s, "", 3)
}

// TestLoadKilledSwept kills a load of a large archive of either format
// midway; the next load sweeps what it left.
func TestLoadKilledSwept(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	src := newStore(t)
	if _, err := src.Import(ctx, rootfsTarball(t, 16<<20), mustRef(t, "localhost/big:1"), nil); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{DockerArchive, OCIArchive} {
		t.Run(format, func(t *testing.T) {
			archive := filepath.Join(t.TempDir(), "big.tar")
			f, err := os.Create(archive)
			if err != nil {
				t.Fatal(err)
			}
			err = src.Save(f, []string{"localhost/big:1"}, format)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			root, tmpdir := t.TempDir(), t.TempDir()
			killMidway(t, "load", archive, root, tmpdir, nil)
			s, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Load(ctx, archive, nil); err != nil {
				t.Fatalf("load after a killed one: %v", err)
			}
			assertSwept(t, s, tmpdir, 1)
		})
	}
}

// TestImportKilledSwept kills an import of a large tarball midway, from a
// file and from standard input; the next import sweeps what it left.
func TestImportKilledSwept(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	tarball := rootfsTarball(t, 16<<20)
	t.Run("file", func(t *testing.T) {
		root, tmpdir := t.TempDir(), t.TempDir()
		killMidway(t, "import", tarball, root, tmpdir, nil)
		s, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Import(ctx, tarball, importedRef, nil); err != nil {
			t.Fatalf("import after a killed one: %v", err)
		}
		assertSwept(t, s, tmpdir, 1)
	})
	t.Run("stdin", func(t *testing.T) {
		data, err := os.ReadFile(tarball)
		if err != nil {
			t.Fatal(err)
		}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		// Half the tarball, and no end: the import spools and waits.
		go w.Write(data[:len(data)/2])
		root, tmpdir := t.TempDir(), t.TempDir()
		killMidway(t, "import-stdin", "", root, tmpdir, r)
		r.Close()
		s, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ImportReader(ctx, bytes.NewReader(data), importedRef, nil); err != nil {
			t.Fatalf("import after a killed one: %v", err)
		}
		assertSwept(t, s, tmpdir, 1)
	})
}
