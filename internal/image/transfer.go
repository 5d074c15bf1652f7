package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Push sends the image that src names to dst's registry and returns the
// digest of the manifest there. Blobs the registry has are not sent again.
func (s *Store) Push(ctx context.Context, src string, dst Reference, opts PushOptions) (v1.Hash, error) {
	img, err := s.Get(src)
	if err != nil {
		return v1.Hash{}, err
	}
	v, err := partial.CompressedToImage(storedImage{s: s, rec: img, progress: opts.Progress})
	if err != nil {
		return v1.Hash{}, err
	}
	opts.Insecure = opts.insecureFor(dst.Registry())
	rref, err := dst.remote(opts.Insecure)
	if err != nil {
		return v1.Hash{}, err
	}
	ropts, err := remoteOptions(ctx, dst.Registry(), opts.RegistryOptions)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(rref, v, ropts...); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", dst, registryError(dst, err))
	}
	return v.Digest()
}

// Archive formats of Save and Load.
const (
	DockerArchive = "docker-archive"
	OCIArchive    = "oci-archive"
)

// Save writes the images that names refer to into w as a docker-archive
// (`docker save`) or an oci-archive (a tar of an OCI image layout). An
// oci-archive's layout is written under the store's root first, with the
// store lock held shared: Remove and Prune wait for it.
func (s *Store) Save(w io.Writer, names []string, format string) error {
	refs := map[name.Reference]v1.Image{}
	var images []v1.Image
	var tags []string
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		img, err := s.Get(n)
		if err != nil {
			return err
		}
		v, err := s.V1(img)
		if err != nil {
			return err
		}
		tag := ""
		if r, err := ParseReference(n); err == nil && r.Tag() != "" {
			tag = r.String()
		} else if len(img.Names) > 0 {
			tag = img.Names[0]
		}
		images, tags = append(images, v), append(tags, tag)
		if tag != "" {
			t, err := name.NewTag(tag)
			if err != nil {
				return err
			}
			refs[t] = v
		}
	}
	switch format {
	case DockerArchive, "":
		if len(refs) != len(images) {
			return fmt.Errorf("save: a docker-archive needs a name for every image: %w", errdefs.ErrInvalidArgument)
		}
		return tarball.MultiRefWrite(refs, w)
	case OCIArchive:
		// The layout is written out first, under the store's root, where
		// the next command's sweep finds it if this one is killed.
		unlock, err := s.lock(false)
		if err != nil {
			return err
		}
		defer unlock()
		dir, err := s.scratch("save-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			return err
		}
		for i, v := range images {
			var opts []layout.Option
			if tags[i] != "" {
				opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tags[i]}))
			}
			if err := p.AppendImage(v, opts...); err != nil {
				return err
			}
		}
		return tarDir(w, dir)
	}
	return fmt.Errorf("save: format %q: use docker-archive or oci-archive: %w", format, errdefs.ErrInvalidArgument)
}

// Load reads a docker-archive or oci-archive from path into the store and
// returns the images it held.
func (s *Store) Load(ctx context.Context, path string, progress *Progress) ([]*Image, error) {
	unlock, err := s.lock(false) // for the whole load: see sweep.go
	if err != nil {
		return nil, err
	}
	defer unlock()
	isOCI, err := archiveHas(path, "oci-layout")
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if isOCI {
		return s.loadOCI(ctx, path, progress)
	}
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	manifest, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("load %s: not a docker-archive or oci-archive: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	var out []*Image
	for i, m := range manifest {
		var tag *name.Tag
		if len(m.RepoTags) > 0 {
			t, err := name.NewTag(m.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("load %s: image %d: tag %q: %v: %w", path, i, m.RepoTags[0], err, errdefs.ErrInvalidArgument)
			}
			tag = &t
		} else if len(manifest) > 1 {
			return nil, fmt.Errorf("load %s: image %d has no name: %w", path, i, errdefs.ErrInvalidArgument)
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		var names []string
		for _, t := range m.RepoTags {
			r, err := ParseReference(t)
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
			names = append(names, r.String())
		}
		rec, err := s.add(ctx, img, names, "", progress)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

func (s *Store) loadOCI(ctx context.Context, path string, progress *Progress) ([]*Image, error) {
	dir, err := s.scratch("load-")
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	if err := untarPlain(path, dir); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	var out []*Image
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err == nil {
			err = verifyManifest(img, d.Digest)
		}
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		var names []string
		n := d.Annotations["org.opencontainers.image.ref.name"]
		if !strings.ContainsAny(n, "/:") {
			// Often only a tag (skopeo writes "latest"); containerd keeps
			// the full name in its own annotation.
			n = d.Annotations["io.containerd.image.name"]
		}
		if n != "" {
			r, err := ParseReference(n)
			if err != nil {
				return nil, fmt.Errorf("load %s: %w", path, err)
			}
			names = []string{r.String()}
		}
		rec, err := s.add(ctx, img, names, "", progress)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// archiveHas reports whether the tar at path has a top-level entry named
// file.
func archiveHas(path, file string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("not a tar archive: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		if strings.TrimPrefix(h.Name, "./") == file {
			return true, nil
		}
	}
}

// untarPlain extracts an OCI layout archive: regular files and directories
// only, each confined to dir (an archive is hostile input).
func untarPlain(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		clean := filepath.Clean("/" + h.Name)
		if clean == "/" {
			continue
		}
		target := filepath.Join(dir, clean)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %s: only files and directories belong in an OCI layout: %w", h.Name, errdefs.ErrInvalidArgument)
		}
	}
}

// tarDir writes the tree under dir into w as a tar archive.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = rel
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
