package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/errdefs"
)

// An image archive (docker-archive or oci-archive) is hostile input. Before
// Load reads anything from it, scanArchive reads it to its end once and
// refuses what no tool that writes image archives makes, and what readers
// would disagree on:
//
//   - an archive cut short: inside an entry, or without the end-of-archive
//     marker (a cut between two entries would otherwise pass for a
//     smaller archive);
//   - a name that is absolute or climbs out with "..": Docker refuses the
//     latter as a breakout, and neither belongs in an archive of blobs;
//   - a name that appears twice. Docker extracts the archive, so the last
//     copy wins; go-containerregistry and containers/image (Podman) read
//     the first. Which content is "the" archive's depends on the reader,
//     so the archive is refused rather than one copy chosen: no copy can
//     then stand in for a verified one.
//
// Links are left to the formats: a docker-archive's are followed inside
// the archive, never on the host (old `docker save` links a layer shared
// by two images); an OCI layout has none (untarPlain).

// archiveFormat is what scanArchive found an archive to be.
type archiveFormat int

const (
	notAnImageArchive archiveFormat = iota
	dockerFormat                    // manifest.json
	ociFormat                       // oci-layout
)

// scanArchive checks the tar archive at file as above and tells its format.
// Its errors are one line about the archive, without the file's name.
func scanArchive(file string) (archiveFormat, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("no such file: %w", errdefs.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return 0, fmt.Errorf("is a directory, not an archive: %w", errdefs.ErrInvalidArgument)
	}
	magic := make([]byte, 6)
	n, _ := io.ReadFull(f, magic)
	if what := compression(magic[:n]); what != "" {
		return 0, fmt.Errorf("the archive is %s-compressed: decompress it first (berth loads plain tar archives): %w", what, errdefs.ErrInvalidArgument)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	cr := &countingReader{r: f}
	tr := tar.NewReader(cr)
	format := notAnImageArchive
	seen := map[string]bool{}
	var end int64 // of the last entry's content
	last := ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// With its marker, the archive ends at least a block after
			// the last entry's padded content.
			if last == "" {
				return 0, fmt.Errorf("not a tar archive (it is empty): %w", errdefs.ErrInvalidArgument)
			}
			if cr.n <= (end+511)/512*512 {
				return 0, fmt.Errorf("the archive is truncated: it ends after entry %q without the end-of-archive marker: %w", last, errdefs.ErrInvalidArgument)
			}
			return format, nil
		}
		if err != nil {
			if last == "" {
				return 0, fmt.Errorf("not a tar archive: %w", errdefs.ErrInvalidArgument)
			}
			return 0, fmt.Errorf("the archive is truncated or damaged after entry %q: %w", last, errdefs.ErrInvalidArgument)
		}
		name := h.Name
		if path.IsAbs(name) {
			return 0, fmt.Errorf("entry %q: an absolute name does not belong in an image archive: %w", name, errdefs.ErrInvalidArgument)
		}
		clean := path.Clean(name)
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return 0, fmt.Errorf("entry %q: its name climbs out of the archive with \"..\": %w", name, errdefs.ErrInvalidArgument)
		}
		if clean != "." {
			if seen[clean] {
				return 0, fmt.Errorf("entry %q appears twice: readers differ on which copy counts, so the archive is refused: %w", name, errdefs.ErrInvalidArgument)
			}
			seen[clean] = true
		}
		switch clean {
		case "oci-layout":
			format = ociFormat
		case "manifest.json":
			if format == notAnImageArchive {
				format = dockerFormat
			}
		}
		last = name
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return 0, fmt.Errorf("the archive is truncated or damaged inside entry %q: %w", name, errdefs.ErrInvalidArgument)
		}
		end = cr.n
	}
}

// compression names the compression whose magic number b starts with, or
// is "".
func compression(b []byte) string {
	for _, m := range []struct {
		name  string
		magic []byte
	}{
		{"gzip", []byte{0x1f, 0x8b}},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
		{"bzip2", []byte("BZh")},
	} {
		if bytes.HasPrefix(b, m.magic) {
			return m.name
		}
	}
	return ""
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// untarPlain extracts an OCI layout archive that scanArchive passed:
// regular files and directories only, each confined to dir.
func untarPlain(file, dir string) error {
	f, err := os.Open(file)
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
			return fmt.Errorf("the archive is damaged: %w", errdefs.ErrInvalidArgument)
		}
		clean := filepath.Clean("/" + h.Name)
		if clean == "/" {
			continue
		}
		target := filepath.Join(dir, clean)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return entryError(h.Name, err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return entryError(h.Name, err)
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return entryError(h.Name, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return entryError(h.Name, err)
			}
		default:
			return fmt.Errorf("entry %q: only files and directories belong in an OCI layout: %w", h.Name, errdefs.ErrInvalidArgument)
		}
	}
}

// entryError is err of extracting entry name, without the scratch path.
// What fails there is the archive's shape (a file where it has a
// directory), unless the disk is full.
func entryError(name string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EIO) {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	return fmt.Errorf("entry %q: %v: %w", name, err, errdefs.ErrInvalidArgument)
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
