package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
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

// Load reads a docker-archive or oci-archive from file into the store and
// returns the images it held. The archive is hostile input: see
// scanArchive for what is refused before anything is read, and verify.go
// for how every piece is checked. An image the store holds already (the
// same config, hence the same content) only gets the archive's names, as
// with Docker: nothing of the archive's copy is read.
func (s *Store) Load(ctx context.Context, file string, progress *Progress) ([]*Image, error) {
	unlock, err := s.lock(false) // for the whole load: see sweep.go
	if err != nil {
		return nil, err
	}
	defer unlock()
	format, err := scanArchive(file)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", file, err)
	}
	var imgs []namedImage
	dir := "" // where an oci-archive is extracted
	switch format {
	case ociFormat:
		if dir, err = s.scratch("load-"); err != nil {
			return nil, fmt.Errorf("load %s: %w", file, err)
		}
		defer os.RemoveAll(dir)
		if err := untarPlain(file, dir); err != nil {
			return nil, fmt.Errorf("load %s: %w", file, err)
		}
		imgs, err = ociImages(dir)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", file, scratchError(err, dir))
		}
	case dockerFormat:
		if imgs, err = dockerImages(file); err != nil {
			return nil, fmt.Errorf("load %s: %w", file, err)
		}
	default:
		return nil, fmt.Errorf("load %s: not an image archive: it has neither manifest.json (docker-archive) nor oci-layout (oci-archive); "+
			"a root file system tarball is for `import`: %w", file, errdefs.ErrInvalidArgument)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("load %s: the archive holds no image: %w", file, errdefs.ErrInvalidArgument)
	}
	var out []*Image
	for _, ni := range imgs {
		rec, err := s.loadImage(ctx, ni, progress)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", file, scratchError(err, dir))
		}
		out = append(out, rec)
	}
	return out, nil
}

// namedImage is an image of an archive and the names it has there.
type namedImage struct {
	img   v1.Image
	names []string
}

// loadImage stores ni, or only names the stored image of the same config.
func (s *Store) loadImage(ctx context.Context, ni namedImage, progress *Progress) (*Image, error) {
	id, err := ni.img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	var rec *Image
	err = s.index.update(func(tx *bolt.Tx) error {
		img, err := getImage(tx, digestOf(id))
		if err != nil {
			return err
		}
		for _, n := range ni.names {
			if err := tx.Bucket(bucketTags).Put([]byte(n), []byte(img.ID)); err != nil {
				return err
			}
		}
		rec = img
		return nil
	})
	if err == nil {
		rec.Names = ni.names
		return rec, nil
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		return nil, err
	}
	return s.add(ctx, ni.img, ni.names, "", progress)
}

// dockerImages reads a docker-archive's manifest.json and the images it
// lists.
func dockerImages(file string) ([]namedImage, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(file) }
	manifest, err := tarball.LoadManifest(opener)
	if errors.As(err, new(*json.UnmarshalTypeError)) {
		return nil, fmt.Errorf("manifest.json is not a docker-archive manifest (a JSON list of images): %w", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("manifest.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var out []namedImage
	for i, m := range manifest {
		var tag *name.Tag
		if len(m.RepoTags) > 0 {
			t, err := name.NewTag(m.RepoTags[0])
			if err != nil {
				return nil, fmt.Errorf("image %d: tag %q: %v: %w", i, m.RepoTags[0], err, errdefs.ErrInvalidArgument)
			}
			tag = &t
		} else if len(manifest) > 1 {
			return nil, fmt.Errorf("image %d has no name: %w", i, errdefs.ErrInvalidArgument)
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, fmt.Errorf("image %d: %v: %w", i, err, errdefs.ErrInvalidArgument)
		}
		var names []string
		for _, t := range m.RepoTags {
			r, err := ParseReference(t)
			if err != nil {
				return nil, err
			}
			names = append(names, r.String())
		}
		out = append(out, namedImage{img, names})
	}
	return out, nil
}

// ociImages reads the images of the OCI layout in dir. An entry of
// index.json that is itself an index (as `docker save` of Docker's
// containerd store writes) gives its manifest for this machine's platform.
// Every manifest and index is checked against the digest that names it.
func ociImages(dir string) ([]namedImage, error) {
	// A blob named but missing: say so in the archive's terms.
	have := func(h v1.Hash, what string) error {
		if _, err := os.Stat(filepath.Join(dir, "blobs", h.Algorithm, h.Hex)); err != nil {
			return fmt.Errorf("%s %s that index.json names is not in the archive: %w", what, h, errdefs.ErrInvalidArgument)
		}
		return nil
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("index.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var out []namedImage
	for _, d := range im.Manifests {
		var img v1.Image
		switch {
		case d.MediaType.IsIndex():
			if err = have(d.Digest, "image index"); err == nil {
				img, err = ociPlatformImage(idx, d)
			}
		case d.MediaType.IsImage():
			if err = have(d.Digest, "image manifest"); err == nil {
				img, err = idx.Image(d.Digest)
			}
			if err == nil {
				err = verifyManifest(img, d.Digest)
			}
		default:
			continue // not an image: an artifact, a signature
		}
		if err != nil {
			return nil, err
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
				return nil, err
			}
			names = []string{r.String()}
		}
		out = append(out, namedImage{img, names})
	}
	return out, nil
}

// ociPlatformImage returns the image for this machine of the index that d
// names in idx.
func ociPlatformImage(idx v1.ImageIndex, d v1.Descriptor) (v1.Image, error) {
	child, err := idx.ImageIndex(d.Digest)
	if err != nil {
		return nil, err
	}
	raw, err := child.RawManifest()
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(raw); string(got) != d.Digest.String() {
		return nil, fmt.Errorf("image index is %s, index.json names %s: %w", got, d.Digest, errdefs.ErrInvalidArgument)
	}
	m, err := child.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image index %s: %v: %w", d.Digest, err, errdefs.ErrInvalidArgument)
	}
	want := HostPlatform()
	var have []string
	for _, c := range m.Manifests {
		if !c.MediaType.IsImage() || c.Platform == nil {
			continue
		}
		if platformMatches(c.Platform, want) {
			img, err := child.Image(c.Digest)
			if err == nil {
				err = verifyManifest(img, c.Digest)
			}
			return img, err
		}
		have = append(have, platformString(c.Platform))
	}
	return nil, fmt.Errorf("image index %s has no %s image (it has %s): %w",
		d.Digest, platformString(want), strings.Join(have, ", "), errdefs.ErrNotFound)
}

// scratchError is err of reading an archive, in the archive's terms: a
// file missing in dir, where the archive was extracted (if it was), is
// missing in the archive; what is not the machine's fault is the archive's.
func scratchError(err error, dir string) error {
	var pe *os.PathError
	if dir == "" {
		return archiveFault(err)
	}
	if errors.As(err, &pe) && strings.HasPrefix(pe.Path, dir+"/") {
		rel := strings.TrimPrefix(pe.Path, dir+"/")
		if errors.Is(pe.Err, os.ErrNotExist) {
			return fmt.Errorf("%s is not in the archive: %w", rel, errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("%s: %v: %w", rel, pe.Err, errdefs.ErrInvalidArgument)
	}
	if msg := err.Error(); strings.Contains(msg, dir) {
		err = reworded{strings.ReplaceAll(msg, dir+"/", ""), err}
	}
	return archiveFault(err)
}

// reworded is err with another message.
type reworded struct {
	msg string
	err error
}

func (r reworded) Error() string { return r.msg }
func (r reworded) Unwrap() error { return r.err }

// archiveFault marks err, an error of reading an archive's content, as the
// archive's fault unless it says whose it is or comes from the system.
func archiveFault(err error) error {
	for _, class := range []error{errdefs.ErrInvalidArgument, errdefs.ErrNotFound, errdefs.ErrUnavailable,
		errdefs.ErrPermission, errdefs.ErrConflict, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, class) {
			return err
		}
	}
	if errors.As(err, new(syscall.Errno)) {
		return err
	}
	return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
}
