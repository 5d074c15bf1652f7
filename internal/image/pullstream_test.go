package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/registrytest"
	digest "github.com/opencontainers/go-digest"
)

// holdingProxy stands between a pull and a registry: it sends the first
// half of the blob it is told to hold, then waits until release is
// closed to send the rest, with one byte changed if corrupt is set.
type holdingProxy struct {
	host    string
	blob    string // the digest whose blob is held
	corrupt bool
	release chan struct{}
}

func startHoldingProxy(t *testing.T, reg *registrytest.Registry, blob string, corrupt bool) *holdingProxy {
	t.Helper()
	target, err := url.Parse(reg.URL)
	if err != nil {
		t.Fatal(err)
	}
	hp := &holdingProxy{blob: blob, corrupt: corrupt, release: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodGet && strings.HasSuffix(resp.Request.URL.Path, "/blobs/"+blob) && resp.StatusCode == http.StatusOK {
			resp.Body = &heldBody{rc: resp.Body, half: resp.ContentLength / 2, hp: hp}
		}
		return nil
	}
	rp.FlushInterval = -1 // every write goes out at once
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(l)
	t.Cleanup(func() {
		select {
		case <-hp.release:
		default:
			close(hp.release)
		}
		srv.Close()
	})
	hp.host = l.Addr().String()
	return hp
}

// heldBody is a blob's body as holdingProxy sends it.
type heldBody struct {
	rc   io.ReadCloser
	half int64
	n    int64
	hp   *holdingProxy
}

func (b *heldBody) Read(p []byte) (int, error) {
	if b.n < b.half && int64(len(p)) > b.half-b.n {
		p = p[:b.half-b.n]
	}
	if b.n == b.half {
		<-b.hp.release
	}
	n, err := b.rc.Read(p)
	if b.hp.corrupt && b.n < b.half+10 && b.n+int64(n) > b.half+10 {
		p[b.half+10-b.n] ^= 0x55
	}
	b.n += int64(n)
	return n, err
}

func (b *heldBody) Close() error { return b.rc.Close() }

func mustDigest(t *testing.T, s string) digest.Digest {
	t.Helper()
	d, err := digest.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// streamTestImage pushes an image of one layer of 16 files of random
// content (so that half of its blob holds some of them whole) and returns
// its reference and its layer's digest.
func streamTestImage(t *testing.T, reg *registrytest.Registry) (string, string) {
	t.Helper()
	files := map[string]string{}
	data := make([]byte, 16*256<<10)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(f, data)
	f.Close()
	for i := range 16 {
		files[fmt.Sprintf("f%02d", i)] = string(data[i*256<<10 : (i+1)*256<<10])
	}
	ref := reg.Ref("stream/img:1")
	img := registrytest.NewImage(t, registrytest.WithLayers(registrytest.FileLayer(t, files)))
	reg.Push(t, ref, img)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(ref, reg.Host+"/"), d.String()
}

// waitStaged waits until a file of the layer is unpacked in the store's
// staging directory, and fails the test if the pull ends first.
func waitStaged(t *testing.T, root string, pulled <-chan error) {
	t.Helper()
	deadline := time.After(2 * time.Minute) // a bound on a hang, not a timing
	for {
		if m, _ := filepath.Glob(filepath.Join(root, stagingDir, "*", "f*")); len(m) > 0 {
			return
		}
		select {
		case err := <-pulled:
			t.Fatalf("the pull ended (%v) before unpacking while the blob was still coming", err)
		case <-deadline:
			t.Fatal("nothing unpacked while the blob was still coming")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestPullUnpacksWhileDownloading holds a layer's blob at its half: the
// pull has unpacked files from the first half already, and completes once
// the rest comes.
func TestPullUnpacksWhileDownloading(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t)
	repo, layer := streamTestImage(t, reg)
	hp := startHoldingProxy(t, reg, layer, false)
	s := newStore(t)
	pulled := make(chan error, 1)
	go func() {
		_, err := s.Pull(context.Background(), mustRef(t, hp.host+"/"+repo), PullOptions{})
		pulled <- err
	}()
	waitStaged(t, s.root, pulled)
	if s.blobs.has(mustDigest(t, layer)) {
		t.Fatal("the layer's blob is in the store before all of it came")
	}
	close(hp.release)
	if err := <-pulled; err != nil {
		t.Fatal(err)
	}
	assertStoreIntact(t, s)
	if left := temporaryState(s.root, ""); len(left) > 0 {
		t.Fatalf("the pull left %v", left)
	}
}

// TestPullCorruptBlobStreamed changes a byte of a layer's blob after its
// first half, which the pull has unpacked already: the pull fails,
// saying so, and leaves no image, no blob, no snapshot and nothing
// staged.
func TestPullCorruptBlobStreamed(t *testing.T) {
	needRoot(t)
	reg := registrytest.Start(t)
	repo, layer := streamTestImage(t, reg)
	hp := startHoldingProxy(t, reg, layer, true)
	s := newStore(t)
	pulled := make(chan error, 1)
	go func() {
		_, err := s.Pull(context.Background(), mustRef(t, hp.host+"/"+repo), PullOptions{})
		pulled <- err
	}()
	waitStaged(t, s.root, pulled)
	close(hp.release)
	err := <-pulled
	if err == nil {
		t.Fatal("a corrupt blob was pulled")
	}
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "content does not match its digest") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q: want one line saying the content does not match its digest", err)
	}
	imgs, err := s.List()
	if err != nil || len(imgs) != 0 {
		t.Fatalf("images after a corrupt pull: %v, %v", imgs, err)
	}
	if s.blobs.has(mustDigest(t, layer)) {
		t.Fatal("the corrupt blob is in the store")
	}
	if snaps, err := s.snaps.List(); err != nil || len(snaps) != 0 {
		t.Fatalf("snapshots after a corrupt pull: %v, %v", snaps, err)
	}
	if left := temporaryState(s.root, ""); len(left) > 0 {
		t.Fatalf("the pull left %v", left)
	}
}
