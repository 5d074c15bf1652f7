// Command mkimage turns a root file system tarball (as `mmdebstrap` writes
// it) into a multi-layer OCI image for the pull benchmark, and pushes that
// image to a registry.
//
//	mkimage -rootfs ROOTFS.tar -layout DIR [-split four|one-large] [-cmd 'nginx -g "daemon off;"']
//	mkimage -layout DIR -push 127.0.0.1:5000/bench/nginx:1
//
// With -rootfs, the image is written as an OCI image layout in DIR unless
// DIR holds one already (DIR is a cache: it is made once, atomically). The
// root file system is split by top-level path groups into four gzip layers,
// each a substantial share of the image, the way a base image, its
// libraries, its shared data and a language runtime often end up in
// separate layers:
//
//  1. everything not below (etc, var, usr/bin, usr/sbin, ...)
//  2. usr/lib/x86_64-linux-gnu (shared libraries, perl)
//  3. usr/share
//  4. usr/lib/python3* (python's standard library)
//
// With -split one-large, the image is instead one large layer holding most
// of the bytes and three small ones on top, the shape of an image built
// FROM a fat base with a few steps of its own:
//
//  1. everything not below
//  2. etc
//  3. var
//  4. usr/sbin
//
// Every layer repeats the directory entries of its files' parents, with
// their original owner and mode, and a hard link goes into its target's
// layer. With -push, the image in DIR is pushed to the reference (plain
// HTTP). Either way mkimage prints the image's layers and sizes.
package main

import (
	"archive/tar"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// groups names the layers; group returns an entry's index in it.
var groups = []string{"base", "usr/lib/x86_64-linux-gnu", "usr/share", "usr/lib/python3*"}

// oneLarge is set by -split one-large.
var oneLarge bool

func group(p string) int {
	under := func(dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	if oneLarge {
		for i, g := range groups[1:] {
			if under(g) {
				return i + 1
			}
		}
		return 0
	}
	switch {
	case under("usr/lib/x86_64-linux-gnu"):
		return 1
	case under("usr/share"):
		return 2
	case strings.HasPrefix(p, "usr/lib/python3"):
		return 3
	}
	return 0
}

func main() {
	rootfs := flag.String("rootfs", "", "root file system tarball to make the image from (skipped if -layout holds an image)")
	dir := flag.String("layout", "", "OCI image layout directory (the cache)")
	push := flag.String("push", "", "reference to push the image to, over plain HTTP")
	split := flag.String("split", "four", "how -rootfs is split into layers: four (of similar size) or one-large (one large layer, three small ones)")
	cmd := flag.String("cmd", "nginx -g 'daemon off;'", "the image's command, as a shell would split it (only simple quoting)")
	flag.Parse()
	switch *split {
	case "four":
	case "one-large":
		oneLarge = true
		groups = []string{"base", "etc", "var", "usr/sbin"}
	default:
		fmt.Fprintf(os.Stderr, "mkimage: -split %q: want four or one-large\n", *split)
		os.Exit(2)
	}
	if *dir == "" || (*rootfs == "" && *push == "") || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*rootfs, *dir, *push, *cmd); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(rootfs, dir, push, cmd string) error {
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, os.ErrNotExist) {
		if rootfs == "" {
			return fmt.Errorf("%s holds no image; make it with -rootfs", dir)
		}
		if err := build(rootfs, dir, splitCmd(cmd)); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	img, err := load(dir)
	if err != nil {
		return err
	}
	if err := describe(img); err != nil {
		return err
	}
	if push == "" {
		return nil
	}
	ref, err := name.ParseReference(push, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img); err != nil {
		return fmt.Errorf("push %s: %w", push, err)
	}
	fmt.Println("pushed", push)
	return nil
}

// load returns the one image in the layout at dir.
func load(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s: %d images, want 1", dir, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}

// build splits rootfs into layers and writes the image into a new layout
// at dir.
func build(rootfs, dir string, cmd []string) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	files, err := split(rootfs, tmp)
	if err != nil {
		return err
	}
	created := v1.Time{Time: time.Now().UTC().Truncate(time.Second)}
	var adds []mutate.Addendum
	for i, f := range files {
		l, err := tarball.LayerFromFile(f, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return err
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			Created:   created,
			CreatedBy: "mkimage: " + groups[i],
			Comment:   "berth pull benchmark",
		}})
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = created
	cf.Config = v1.Config{
		Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd:          cmd,
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		StopSignal:   "SIGQUIT",
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	out := filepath.Join(tmp, "layout")
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": "bench/nginx:1",
	})); err != nil {
		return err
	}
	return os.Rename(out, dir)
}

// split writes the entries of the tarball at rootfs into one gzip layer
// file per group in dir and returns the files' paths.
func split(rootfs, dir string) ([]string, error) {
	in, err := os.Open(rootfs)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	layers := make([]*layerWriter, len(groups))
	var files []string
	for i := range layers {
		f := filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", i))
		if layers[i], err = newLayerWriter(f); err != nil {
			return nil, err
		}
		defer layers[i].file.Close()
		files = append(files, f)
	}
	dirs := map[string]*tar.Header{} // every directory seen, for parents
	where := map[string]int{}        // each entry's layer, for hard links
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rootfs, err)
		}
		p := clean(h.Name)
		if p == "" {
			continue // the root itself
		}
		h.Name = p
		g := group(p)
		if h.Typeflag == tar.TypeLink {
			h.Linkname = clean(h.Linkname)
			t, ok := where[h.Linkname]
			if !ok {
				return nil, fmt.Errorf("%s: hard link %s to %s before it", rootfs, p, h.Linkname)
			}
			g = t
		}
		where[p] = g
		lw := layers[g]
		if err := lw.parents(p, dirs); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeDir {
			d := *h
			dirs[p] = &d
			h.Name = p + "/"
			lw.wrote[p] = true
		}
		if err := lw.tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if _, err := io.Copy(lw.tw, tr); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	for i, lw := range layers {
		if err := lw.close(); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return files, nil
}

func clean(name string) string {
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/")
}

// layerWriter writes one gzip-compressed layer file.
type layerWriter struct {
	file  *os.File
	gz    *gzip.Writer
	tw    *tar.Writer
	wrote map[string]bool // directories in this layer
}

func newLayerWriter(path string) (*layerWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	// The default level, as `docker push` and most registries' images use.
	gz, err := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	return &layerWriter{file: f, gz: gz, tw: tar.NewWriter(gz), wrote: map[string]bool{}}, nil
}

// parents writes the directory entries of p's ancestors that this layer
// does not have yet.
func (lw *layerWriter) parents(p string, dirs map[string]*tar.Header) error {
	var missing []string
	for d := path.Dir(p); d != "." && !lw.wrote[d]; d = path.Dir(d) {
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		h, ok := dirs[d]
		if !ok {
			h = &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}
		}
		c := *h
		c.Name = d + "/"
		if err := lw.tw.WriteHeader(&c); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		lw.wrote[d] = true
	}
	return nil
}

func (lw *layerWriter) close() error {
	if err := lw.tw.Close(); err != nil {
		return err
	}
	if err := lw.gz.Close(); err != nil {
		return err
	}
	return lw.file.Close()
}

// describe prints the image's layers and sizes.
func describe(img v1.Image) error {
	d, err := img.Digest()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	var total int64
	var parts []string
	for i, l := range layers {
		n, err := l.Size()
		if err != nil {
			return err
		}
		total += n
		label := fmt.Sprint(i)
		if i < len(groups) {
			label = groups[i]
		}
		parts = append(parts, fmt.Sprintf("%s %.1f MB", label, float64(n)/1e6))
	}
	fmt.Printf("image %s: %d gzip layers, %.1f MB compressed (%s)\n",
		d, len(layers), float64(total)/1e6, strings.Join(parts, ", "))
	return nil
}

// splitCmd splits a command line on spaces, keeping single- or
// double-quoted words together.
func splitCmd(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}
