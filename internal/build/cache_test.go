package build

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	bolt "go.etcd.io/bbolt"
)

// testBuilds returns a build function on a new store and engine: enough
// for files without RUN, which needs berth's binary for its monitor.
func testBuilds(t *testing.T) (root string, build func(src string, o Options) (*image.Image, string, error)) {
	t.Helper()
	root = t.TempDir()
	st, err := image.Open(filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := container.New(container.Options{Root: root, RunRoot: filepath.Join(root, "run"), Images: st, Berth: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "file.txt"), []byte("content\n"), 0o644)
	return root, func(src string, o Options) (*image.Image, string, error) {
		var out bytes.Buffer
		o.ContextDir, o.File, o.Source, o.WorkDir, o.Out = ctxDir, "Containerfile", []byte(src), filepath.Join(root, "build"), &out
		img, err := Build(context.Background(), e, o)
		return img, out.String(), err
	}
}

// manyInstructions is a Containerfile of n instructions after FROM
// scratch: ENV and LABEL lines, each ENV reading the one before (and
// giving a value of its own size: the config grows linearly too).
func manyInstructions(n int) string {
	var sb strings.Builder
	sb.WriteString("FROM scratch\n")
	for i := 0; i < n; i++ {
		switch {
		case i%2 == 1:
			fmt.Fprintf(&sb, "LABEL l%d=v%d\n", i, i)
		case i == 0:
			sb.WriteString("ENV V0=x\n")
		default:
			fmt.Fprintf(&sb, "ENV V%d=${V%d:+y}%d\n", i, i-2, i)
		}
	}
	return sb.String()
}

// cacheBytes returns the size of the index file and the bytes its build
// cache's entries take.
func cacheBytes(t *testing.T, root string) (file, used int64) {
	t.Helper()
	path := filepath.Join(root, "images", "images.db")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		st := tx.Bucket([]byte("buildcache")).Stats()
		used = int64(st.LeafInuse + st.BranchInuse)
		return nil
	})
	return fi.Size(), used
}

// TestCacheGrowsLinearly builds files of N and 2N instructions: the build
// cache must take about twice the space for twice the instructions, not
// four times (each step's entry used to hold the whole config so far), and
// the unchanged rebuild must hit the cache at every step, give the same
// image and write nothing.
func TestCacheGrowsLinearly(t *testing.T) {
	const n = 1500
	var used [2]int64
	for i, steps := range []int{n, 2 * n} {
		root, build := testBuilds(t)
		src := manyInstructions(steps)
		img, _, err := build(src, Options{})
		if err != nil {
			t.Fatal(err)
		}
		file, u := cacheBytes(t, root)
		t.Logf("%d instructions: images.db %d bytes, cache entries %d bytes (%d per instruction)", steps, file, u, u/int64(steps))
		// Linear growth: a few hundred bytes per step's entry; bbolt
		// rounds its file up to a power of two.
		if u > int64(steps)*600 || file > int64(steps)*2048 {
			t.Fatalf("%d instructions: images.db is %d bytes, its cache entries %d: more than linear", steps, file, u)
		}
		used[i] = u
		img2, out, err := build(src, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if hits := strings.Count(out, "--> Using cache"); hits != steps || img2.ID != img.ID {
			t.Fatalf("rebuild: %d of %d steps from the cache, image %s, first %s", hits, steps, img2.ID, img.ID)
		}
		if file2, _ := cacheBytes(t, root); file2 != file {
			t.Errorf("the rebuild grew images.db from %d to %d bytes", file, file2)
		}
	}
	if r := float64(used[1]) / float64(used[0]); r > 2.3 {
		t.Errorf("twice the instructions take %.2f times the cache space", r)
	}
}

// TestCacheReplay checks that a step's result from the cache is the one it
// gave when it ran: the configs of a build and of its unchanged rebuild
// are the same, for every kind of instruction that only edits the config,
// and with a layer between them.
func TestCacheReplay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("COPY needs root (overlay mounts)")
	}
	_, build := testBuilds(t)
	src := `FROM scratch
ARG A=1
ENV P=/x PATH=$PATH:/opt/$A
ENV P=$P/y Q="$P"
COPY file.txt /f/
LABEL k=v maintainer=m
WORKDIR /w
WORKDIR sub
USER u:g
EXPOSE 80 81/udp
VOLUME /v
STOPSIGNAL SIGTERM
SHELL ["/bin/bash", "-c"]
CMD echo $P
ENTRYPOINT ["/e"]
HEALTHCHECK --interval=2s CMD true
ONBUILD RUN x
MAINTAINER me
`
	img, _, err := build(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	img2, out, err := build(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if hits := strings.Count(out, "--> Using cache"); hits != 16 || img2.ID != img.ID { // all but FROM and ARG
		t.Fatalf("rebuild: %d of 16 steps from the cache, image %s, first %s:\n%s", hits, img2.ID, img.ID, out)
	}
	// A changed line runs again from there on; the steps before it hit.
	img3, out, err := build(strings.Replace(src, "USER u:g", "USER v", 1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if hits := strings.Count(out, "--> Using cache"); hits != 6 || img3.ID == img.ID {
		t.Fatalf("changed USER: %d steps from the cache, want 6:\n%s", hits, out)
	}
}

// TestCacheOldEntries reads an entry of the kind berth stored before, the
// whole config after the step, in the middle of a build: the step is a hit
// that gives that config, and the steps after it build on it.
func TestCacheOldEntries(t *testing.T) {
	p := image.HostPlatform()
	cmd := parseOne(t, "ENV A=1")
	key := keyOf(keyOf("scratch", platformString(p)), code(cmd), "")
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := v1.ConfigFile{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, RootFS: v1.RootFS{Type: "layers"},
		Config:  v1.Config{Env: []string{"PATH=" + defaultPath, "A=1"}},
		History: []v1.History{{Created: v1.Time{Time: old}, CreatedBy: "ENV A=1", EmptyLayer: true}}}
	raw, _ := json.Marshal(cfg)
	root, build := testBuilds(t)
	store, err := image.Open(filepath.Join(root, "images"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CachePut(key, &image.CacheEntry{Config: raw}); err != nil {
		t.Fatal(err)
	}
	src := "FROM scratch\nENV A=1\nLABEL k=v\n"
	img, out, err := build(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "--> Using cache "+key[:12]) {
		t.Fatalf("the old entry was not used:\n%s", out)
	}
	got := configOf(t, store, img)
	if len(got.History) != 2 || !got.History[0].Created.Time.Equal(old) || got.Config.Labels["k"] != "v" || len(got.Config.Env) != 2 {
		t.Fatalf("image config %+v", got)
	}
	img2, out, err := build(src, Options{})
	if err != nil || img2.ID != img.ID || strings.Count(out, "--> Using cache") != 2 {
		t.Fatalf("rebuild: %v, image %s, first %s:\n%s", err, img2.ID, img.ID, out)
	}
}

func configOf(t *testing.T, s *image.Store, img *image.Image) *v1.ConfigFile {
	t.Helper()
	raw, err := s.Config(img)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
