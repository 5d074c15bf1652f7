package registrytest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth/internal/image/registrytest"
)

func TestPlainPushHeadGet(t *testing.T) {
	t.Parallel()
	var host string
	t.Run("registry", func(t *testing.T) {
		reg := registrytest.Start(t)
		host = reg.Host
		if reg.Scheme != "http" || reg.URL != "http://"+reg.Host || reg.CAFile != "" || reg.CAPool() != nil {
			t.Fatalf("plain registry: Scheme %q URL %q CAFile %q", reg.Scheme, reg.URL, reg.CAFile)
		}

		for _, tc := range []struct {
			format            registrytest.Format
			manifest, layerMT types.MediaType
		}{
			{registrytest.Docker, types.DockerManifestSchema2, types.DockerLayer},
			{registrytest.OCI, types.OCIManifestSchema1, types.OCILayer},
		} {
			t.Run(tc.format.String(), func(t *testing.T) {
				layers := [][]byte{
					registrytest.FileLayer(t, map[string]string{"etc/hello": "hello\n"}),
					registrytest.FileLayer(t, map[string]string{"etc/hello": "bye\n", "usr/share/x": "x"}),
				}
				img := registrytest.NewImage(t, registrytest.WithFormat(tc.format), registrytest.WithLayers(layers...),
					registrytest.WithConfig(v1.Config{Cmd: []string{"/bin/true"}}))
				ref := "plain/" + strings.ToLower(tc.format.String()) + ":v1"
				digest := reg.Push(t, ref, img)

				n, err := name.ParseReference(reg.Ref(ref))
				if err != nil {
					t.Fatal(err)
				}
				desc, err := remote.Head(n, reg.RemoteOptions(t)...)
				if err != nil {
					t.Fatalf("HEAD %s: %v", n, err)
				}
				if desc.Digest != digest || desc.MediaType != tc.manifest {
					t.Fatalf("HEAD %s = %s %s, want %s %s", n, desc.Digest, desc.MediaType, digest, tc.manifest)
				}
				got, err := remote.Image(n, reg.RemoteOptions(t)...)
				if err != nil {
					t.Fatalf("GET %s: %v", n, err)
				}
				m, err := got.Manifest()
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Layers) != 2 || m.Layers[0].MediaType != tc.layerMT {
					t.Fatalf("manifest layers = %+v, want 2 of %s", m.Layers, tc.layerMT)
				}
				cf, err := got.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.OS != "linux" || len(cf.Config.Cmd) != 1 || len(cf.RootFS.DiffIDs) != 2 {
					t.Fatalf("config = %+v", cf)
				}
				ls, _ := got.Layers()
				if files := layerFiles(t, ls[1]); files["etc/hello"] != "bye\n" {
					t.Fatalf("layer 1 files = %v", files)
				}
			})
		}

		// PushImage without layers makes a fresh image each time.
		d1 := reg.PushImage(t, "plain/random")
		d2 := reg.PushImage(t, "plain/random")
		if d1 == d2 {
			t.Fatalf("two random images share digest %s", d1)
		}
		// The same layers give the same digest (stable fixtures).
		l := registrytest.FileLayer(t, map[string]string{"a": "b"})
		if a, b := reg.PushImage(t, "plain/stable:1", l), reg.PushImage(t, "plain/stable:2", l); a != b {
			t.Fatalf("same content, digests %s and %s", a, b)
		}
	})
	// Cleanup stopped the registry and freed its port.
	if c, err := net.Dial("tcp", host); err == nil {
		c.Close()
		t.Fatalf("registry %s still accepts connections after its test ended", host)
	}
}

func TestTLSAuth(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.WithAuth("berth", "s3cret"))
	if reg.Scheme != "https" || reg.URL != "https://"+reg.Host || reg.CAPool() == nil {
		t.Fatalf("auth registry: Scheme %q URL %q", reg.Scheme, reg.URL)
	}
	if _, err := os.Stat(reg.CAFile); err != nil {
		t.Fatalf("CAFile: %v", err)
	}
	digest := reg.PushImage(t, "private/app:1")
	n, err := name.ParseReference(reg.Ref("private/app:1"))
	if err != nil {
		t.Fatal(err)
	}
	tr := remote.WithTransport(reg.Transport())

	t.Run("credentials", func(t *testing.T) {
		desc, err := remote.Head(n, tr, remote.WithAuth(&authn.Basic{Username: "berth", Password: "s3cret"}))
		if err != nil || desc.Digest != digest {
			t.Fatalf("HEAD with credentials = %v, %v; want %s", desc, err, digest)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		_, err := remote.Head(n, tr)
		wantStatus(t, err, http.StatusUnauthorized)
		// The plain protocol: 401 with a Basic challenge.
		resp, err := (&http.Client{Transport: reg.Transport()}).Get(reg.URL + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("GET /v2/ = %s, WWW-Authenticate %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		_, err := remote.Head(n, tr, remote.WithAuth(&authn.Basic{Username: "berth", Password: "wrong"}))
		wantStatus(t, err, http.StatusUnauthorized)
	})
	t.Run("untrusted CA", func(t *testing.T) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}
		_, err := client.Get(reg.URL + "/v2/")
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("GET without the CA: err = %v, want a certificate error", err)
		}
	})
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != status {
		t.Fatalf("err = %v, want HTTP %d", err, status)
	}
}

func TestMultiPlatform(t *testing.T) {
	t.Parallel()
	reg := registrytest.Start(t, registrytest.WithTLS())
	for _, format := range []registrytest.Format{registrytest.Docker, registrytest.OCI} {
		t.Run(format.String(), func(t *testing.T) {
			ref := "multi/" + strings.ToLower(format.String()) + ":latest"
			mp := reg.PushMultiPlatform(t, ref, format)
			n, err := name.ParseReference(reg.Ref(ref))
			if err != nil {
				t.Fatal(err)
			}
			idx, err := remote.Index(n, reg.RemoteOptions(t)...)
			if err != nil {
				t.Fatalf("GET index %s: %v", n, err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := idx.Digest(); d != mp.Index {
				t.Fatalf("index digest %s, pushed %s", d, mp.Index)
			}
			got := map[string]v1.Hash{}
			for _, m := range im.Manifests {
				if m.Platform == nil {
					t.Fatalf("manifest %s without platform", m.Digest)
				}
				got[m.Platform.String()] = m.Digest
			}
			if len(got) != 2 || got["linux/amd64"] != mp.Images["linux/amd64"] || got["linux/arm64"] != mp.Images["linux/arm64"] {
				t.Fatalf("index platforms = %v, pushed %v", got, mp.Images)
			}
			for _, p := range []string{"linux/amd64", "linux/arm64"} {
				plat, _ := v1.ParsePlatform(p)
				img, err := remote.Image(n, append(reg.RemoteOptions(t), remote.WithPlatform(*plat))...)
				if err != nil {
					t.Fatalf("GET %s for %s: %v", n, p, err)
				}
				ls, err := img.Layers()
				if err != nil || len(ls) != 1 {
					t.Fatalf("layers of %s: %d, %v", p, len(ls), err)
				}
				if f := layerFiles(t, ls[0])[registrytest.PlatformFile]; f != p+"\n" {
					t.Fatalf("%s image: %s = %q", p, registrytest.PlatformFile, f)
				}
			}
		})
	}
}

func TestBusyboxLayer(t *testing.T) {
	t.Parallel()
	layer := registrytest.BusyboxLayer(t)
	if !bytes.Equal(layer, registrytest.BusyboxLayer(t)) {
		t.Fatal("BusyboxLayer is not stable")
	}
	// Unpack it and run an applet through its symlink.
	root := t.TempDir()
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var data []byte
			if data, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, data, os.FileMode(h.Mode))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil || !strings.HasPrefix(string(passwd), "root:x:0:0:") {
		t.Fatalf("etc/passwd = %q, %v", passwd, err)
	}
	out, err := exec.Command(filepath.Join(root, "bin/sh"), "-c", "echo hello from $0").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello from "+filepath.Join(root, "bin/sh") {
		t.Fatalf("bin/sh: %q, %v", out, err)
	}

	reg := registrytest.Start(t)
	d := reg.PushBusybox(t, "busybox:latest")
	n, _ := name.ParseReference(reg.Ref("busybox@" + d.String()))
	img, err := remote.Image(n, reg.RemoteOptions(t)...)
	if err != nil {
		t.Fatalf("GET %s: %v", n, err)
	}
	cf, err := img.ConfigFile()
	if err != nil || len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "sh" {
		t.Fatalf("busybox config = %+v, %v", cf, err)
	}
}

// layerFiles returns the regular files of a layer.
func layerFiles(t *testing.T, l v1.Layer) map[string]string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = string(data)
		}
	}
}
