package registrytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
)

// BusyboxPath is the static busybox binary BusyboxLayer packs; Debian's
// busybox-static installs it.
const BusyboxPath = "/bin/busybox"

// FileLayer returns a gzip'd tar layer holding files (path → content), mode
// 0644 and owned by root, with their parent directories (0755). The same
// files always yield the same bytes.
func FileLayer(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var b layerBuilder
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b.file(name, 0o644, []byte(files[name]))
	}
	data, err := b.finish()
	if err != nil {
		t.Fatalf("registrytest: file layer: %v", err)
	}
	return data
}

var busybox struct {
	sync.Mutex
	layer []byte
}

// BusyboxLayer returns a gzip'd tar layer that makes a runnable root file
// system out of the host's static busybox: bin/busybox with a symlink
// bin/APPLET → busybox for each applet (sh, ls, cat, sleep, wget, httpd …),
// etc/passwd and etc/group with root and nobody, and empty dev, proc, sys,
// root and tmp directories. It skips the test unless busybox-static is
// installed. The layer is built once per test binary and shared; do not
// modify it.
func BusyboxLayer(t testing.TB) []byte {
	t.Helper()
	busybox.Lock()
	defer busybox.Unlock()
	if busybox.layer != nil {
		return busybox.layer
	}
	layer, err := busyboxLayer()
	if err != nil {
		t.Skipf("registrytest: %v (apt-get install busybox-static)", err)
	}
	busybox.layer = layer
	return layer
}

func busyboxLayer() ([]byte, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("busybox: %w", err)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("busybox %s: %w", BusyboxPath, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("busybox %s is dynamically linked, an image needs the static one", BusyboxPath)
		}
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}

	var b layerBuilder
	for _, dir := range []string{"dev", "proc", "sys"} {
		b.dir(dir, 0o755)
	}
	b.dir("root", 0o700)
	b.dir("tmp", 0o1777)
	b.file("bin/busybox", 0o755, bin)
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			b.symlink("bin/"+applet, "busybox")
		}
	}
	b.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	b.file("etc/group", 0o644, []byte("root:x:0:\nnobody:x:65534:\n"))
	return b.finish()
}

// layerBuilder writes a gzip'd tar with fixed owners and times. It adds
// missing parent directories before their first entry.
type layerBuilder struct {
	buf  bytes.Buffer
	gz   *gzip.Writer
	tw   *tar.Writer
	dirs map[string]bool
	err  error
}

func (b *layerBuilder) header(h *tar.Header, content []byte) {
	if b.tw == nil {
		b.gz = gzip.NewWriter(&b.buf)
		b.tw = tar.NewWriter(b.gz)
		b.dirs = map[string]bool{}
	}
	if b.err != nil {
		return
	}
	h.Name = path.Clean(strings.TrimPrefix(h.Name, "/"))
	if parent := path.Dir(h.Name); parent != "." && !b.dirs[parent] {
		b.dir(parent, 0o755)
	}
	if h.Typeflag == tar.TypeDir {
		b.dirs[h.Name] = true
		h.Name += "/"
	}
	h.Uname, h.Gname = "root", "root"
	h.ModTime = epoch
	if b.err = b.tw.WriteHeader(h); b.err == nil && content != nil {
		_, b.err = b.tw.Write(content)
	}
}

func (b *layerBuilder) dir(name string, mode int64) {
	if !b.dirs[path.Clean(name)] {
		b.header(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}, nil)
	}
}

func (b *layerBuilder) file(name string, mode int64, content []byte) {
	b.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(content))}, content)
}

func (b *layerBuilder) symlink(name, target string) {
	b.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil)
}

func (b *layerBuilder) finish() ([]byte, error) {
	if b.tw == nil {
		b.header(&tar.Header{Typeflag: tar.TypeDir, Name: ".", Mode: 0o755}, nil)
	}
	if b.err != nil {
		return nil, b.err
	}
	if err := b.tw.Close(); err != nil {
		return nil, err
	}
	if err := b.gz.Close(); err != nil {
		return nil, err
	}
	return b.buf.Bytes(), nil
}
