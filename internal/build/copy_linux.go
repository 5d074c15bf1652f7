package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/fstree"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// copyOp is a COPY or ADD with its options.
type copyOp struct {
	from         string
	sources      []string
	contents     []instructions.SourceContent
	dest         string
	chown, chmod string
	exclude      []string
	parents      bool
	add, unpack  bool
	checksum     string
	code         string
}

// copyInputs is what a COPY's cache key depends on besides the
// instruction: the content of its sources.
func (b *builder) copyInputs(ctx context.Context, from string, sources []string) (string, error) {
	if from != "" {
		fs, err := b.fromState(ctx, from)
		if err != nil {
			return "", err
		}
		return "from " + fs.key, nil
	}
	t, err := b.ctx.tree()
	if err != nil {
		return "", err
	}
	defer t.Close()
	var parts []string
	for _, src := range sources {
		if isURL(src) {
			return "", fmt.Errorf("COPY cannot fetch %s: use ADD: %w", src, errdefs.ErrInvalidArgument)
		}
		found, err := b.ctx.match(src)
		if err != nil {
			return "", err
		}
		for _, p := range found {
			h, err := hashTree(t, p)
			if err != nil {
				return "", sourceError(src, p, err)
			}
			parts = append(parts, p+" "+h)
		}
	}
	return strings.Join(parts, "\n"), nil
}

// sourceError names, in an error about a symbolic link on the way to p,
// the COPY source src as the user wrote it and the link relative to the
// context; a link with an absolute target, or one climbing above the
// context, is said to lead outside it.
func sourceError(src, p string, err error) error {
	var le *fstree.LinkError
	if !errors.As(err, &le) || le.Path != p {
		return err
	}
	le.Path, le.Link = src, strings.TrimPrefix(le.Link, "/")
	if le.Link+"/" == strings.TrimPrefix(path.Clean(src), "./")+"/" {
		le.Link = src
	}
	rel := path.Join(path.Dir(le.Link), le.Target)
	if errors.Is(err, errdefs.ErrNotFound) && (path.IsAbs(le.Target) || rel == ".." || strings.HasPrefix(rel, "../")) {
		le.Why = "is outside the build context (links are followed inside it)"
	}
	return le
}

// addInputs is copyInputs for ADD, whose URLs are fetched to be hashed.
func (b *builder) addInputs(ctx context.Context, c *instructions.AddCommand) (string, error) {
	var local []string
	var parts []string
	for _, src := range c.SourcePaths {
		if !isURL(src) {
			local = append(local, src)
			continue
		}
		d, err := b.download(ctx, src, c.Checksum)
		if err != nil {
			return "", err
		}
		parts = append(parts, src+" "+d.sum)
	}
	rest, err := b.copyInputs(ctx, "", local)
	return strings.Join(append(parts, rest), "\n"), err
}

// fromState is the state COPY --from reads: an earlier stage's or an
// image's.
func (b *builder) fromState(ctx context.Context, from string) (*state, error) {
	if j := b.stageIndex(from); j >= 0 {
		if s, ok := b.done[j]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("--from=%s: that stage is not built before this one: %w", from, errdefs.ErrInvalidArgument)
	}
	img, err := b.image(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("--from=%s: no stage and no image of that name: %w", from, err)
	}
	return b.imageState(img)
}

// copy carries out COPY or ADD into an overlay on s's layers, whose
// upper directory becomes the new layer.
func (b *builder) copy(ctx context.Context, s *state, op copyOp) (*state, error) {
	switch {
	case op.parents:
		return nil, fmt.Errorf("--parents is not supported: %w", errdefs.ErrNotImplemented)
	case len(op.exclude) > 0:
		return nil, fmt.Errorf("--exclude is not supported: %w", errdefs.ErrNotImplemented)
	}
	var src *fstree.Tree
	var err error
	var srcRoot string // where wildcards of --from sources are matched
	if op.from == "" {
		src, err = b.ctx.tree()
	} else {
		fs, ferr := b.fromState(ctx, op.from)
		if ferr != nil {
			return nil, ferr
		}
		m, merr := b.mount(fs, fmt.Sprintf("from-%d", b.step), false)
		if merr != nil {
			return nil, merr
		}
		defer m.unmount()
		srcRoot = m.merged
		src, err = fstree.OpenDir(m.merged, "--from="+op.from, true, true)
	}
	if err != nil {
		return nil, err
	}
	defer src.Close()

	dest := op.dest
	destDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		dest = path.Join("/", s.cfg.Config.WorkingDir, dest)
	}
	dest = path.Clean(dest)

	tm, err := b.mount(s, fmt.Sprintf("step-%d", b.step), true)
	if err != nil {
		return nil, err
	}
	defer tm.unmount()
	dst, err := fstree.OpenDir(tm.merged, "the image", true, true)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	if st, err := dst.Stat(dest, true); err == nil && fstree.IsDir(&st) {
		destDir = true
	}
	rw, err := b.rewriter(dst, op, op.from == "")
	if err != nil {
		return nil, err
	}
	var items []string
	for _, sp := range op.sources {
		switch {
		case op.add && isURL(sp):
			items = append(items, sp)
		case op.from == "":
			found, err := b.ctx.match(sp)
			if err != nil {
				return nil, err
			}
			items = append(items, found...)
		default:
			found, err := globIn(srcRoot, sp)
			if err != nil {
				return nil, err
			}
			items = append(items, found...)
		}
	}
	inline, names, err := b.inlineFiles(op.contents)
	if err != nil {
		return nil, err
	}
	if inline != nil {
		defer inline.Close()
	}
	if len(items)+len(names) > 1 && !destDir {
		return nil, fmt.Errorf("with more than one source the destination must be a directory ending in /, not %s: %w", op.dest, errdefs.ErrInvalidArgument)
	}
	for _, it := range items {
		if err := b.copyItem(ctx, src, it, dst, dest, destDir, op, rw); err != nil {
			return nil, err
		}
	}
	plain := op
	plain.add = false // a here-document is never unpacked
	for _, n := range names {
		if err := b.copyItem(ctx, inline, n, dst, dest, destDir, plain, rw); err != nil {
			return nil, err
		}
	}
	if err := tm.unmount(); err != nil {
		return nil, err
	}
	layer, err := b.images.CommitDiff(ctx, tm.upper, s.chainID())
	if err != nil {
		return nil, err
	}
	return s.withLayer(layer, op.code), nil
}

// inlineFiles writes the here-documents of a COPY or ADD ("COPY <<EOF
// /file") as files of a directory of their own, and returns it as a tree
// with their paths in it.
func (b *builder) inlineFiles(contents []instructions.SourceContent) (*fstree.Tree, []string, error) {
	if len(contents) == 0 {
		return nil, nil, nil
	}
	dir, err := os.MkdirTemp(b.work, "inline-")
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, c := range contents {
		name := path.Base("/" + c.Path)
		if name == "/" {
			return nil, nil, fmt.Errorf("a here-document needs a name: %w", errdefs.ErrInvalidArgument)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(c.Data), 0o644); err != nil {
			return nil, nil, err
		}
		names = append(names, "/"+name)
	}
	t, err := fstree.OpenDir(dir, "the here-documents", true, true)
	return t, names, err
}

// copyItem copies one source, as Docker does: a directory's contents into
// dest, an archive (ADD) unpacked into dest, a file into dest if it is a
// directory, else as dest.
func (b *builder) copyItem(ctx context.Context, src *fstree.Tree, p string, dst *fstree.Tree, dest string, destDir bool, op copyOp, rw func(*tar.Header)) error {
	if isURL(p) {
		d, err := b.download(ctx, p, op.checksum)
		if err != nil {
			return err
		}
		name := path.Base(d.name)
		target := dest
		if destDir {
			target = path.Join(dest, name)
		}
		dl, err := fstree.OpenDir(filepath.Dir(d.path), "the download", true, true)
		if err != nil {
			return err
		}
		defer dl.Close()
		mode := func(h *tar.Header) {
			h.Mode, h.ModTime = 0o600, d.modTime
			rw(h)
		}
		return stream(dl, "/"+filepath.Base(d.path), path.Base(target), dst, path.Dir(target), mode)
	}
	st, err := src.Stat(p, true)
	if err != nil {
		return err
	}
	switch {
	case fstree.IsDir(&st):
		if err := mkdir(dst, dest); err != nil {
			return err
		}
		return stream(src, p, "", dst, dest, rw)
	case op.add && op.unpack && st.Mode&unix.S_IFMT == unix.S_IFREG:
		ok, err := unpackArchive(src, p, dst, dest, rw)
		if ok || err != nil {
			return err
		}
	}
	if destDir {
		if err := mkdir(dst, dest); err != nil {
			return err
		}
		return stream(src, p, path.Base(p), dst, dest, rw)
	}
	if err := mkdir(dst, path.Dir(dest)); err != nil {
		return err
	}
	return stream(src, p, path.Base(dest), dst, path.Dir(dest), rw)
}

func mkdir(t *fstree.Tree, p string) error {
	fd, err := t.MkdirAll(p)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// stream copies p of src, named prefix ("" for a directory's contents),
// into directory dir of dst, passing each entry's header through rw.
func stream(src *fstree.Tree, p, prefix string, dst *fstree.Tree, dir string, rw func(*tar.Header)) error {
	r := src.Stream(p, prefix, true)
	defer r.Close()
	return extract(r, dst, dir, rw)
}

// extract unpacks the tar stream r into dir of dst, passing each entry's
// header through rw.
func extract(r io.Reader, dst *fstree.Tree, dir string, rw func(*tar.Header)) error {
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(r)
		tw := tar.NewWriter(pw)
		var err error
		for {
			var h *tar.Header
			if h, err = tr.Next(); err != nil {
				break
			}
			rw(h)
			if err = tw.WriteHeader(h); err != nil {
				break
			}
			if _, err = io.Copy(tw, tr); err != nil {
				break
			}
		}
		if errors.Is(err, io.EOF) {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	_, err := dst.Extract(pr, dir, nil)
	return err
}

// rewriter returns what COPY does to each copied entry: owners from
// --chown (root for the context's files, kept from a stage or image) and
// the mode from --chmod.
func (b *builder) rewriter(dst *fstree.Tree, op copyOp, fromContext bool) (func(*tar.Header), error) {
	uid, gid, own := 0, 0, fromContext
	if op.chown != "" {
		var err error
		if uid, gid, err = lookupOwner(dst, op.chown); err != nil {
			return nil, err
		}
		own = true
	}
	var mode int64 = -1
	if op.chmod != "" {
		m, err := strconv.ParseUint(op.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return nil, fmt.Errorf("--chmod=%s: want an octal mode such as 755: %w", op.chmod, errdefs.ErrInvalidArgument)
		}
		mode = int64(m)
	}
	return func(h *tar.Header) {
		if own {
			h.Uid, h.Gid = uid, gid
		}
		h.Uname, h.Gname = "", ""
		if mode >= 0 && h.Typeflag != tar.TypeSymlink {
			h.Mode = mode
		}
	}, nil
}

// lookupOwner resolves --chown's USER[:GROUP] against the image's
// /etc/passwd and /etc/group, read inside the image. A user without a
// group means the group with the user's number, as Docker documents.
func lookupOwner(dst *fstree.Tree, spec string) (int, int, error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	read := func(name string) io.Reader {
		fd, err := dst.Open(name, unix.O_RDONLY, true)
		if err != nil {
			return nil
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		data, _ := io.ReadAll(io.LimitReader(f, 16<<20))
		return bytes.NewReader(data)
	}
	uid, err := resolveID(u, func() (int, error) {
		users, err := user.ParsePasswdFilter(orEmpty(read("/etc/passwd")), func(x user.User) bool { return x.Name == u })
		if err != nil || len(users) == 0 {
			return 0, fmt.Errorf("--chown=%s: the image has no user %s in /etc/passwd: %w", spec, u, errdefs.ErrInvalidArgument)
		}
		return users[0].Uid, nil
	})
	if err != nil {
		return 0, 0, err
	}
	if !hasGroup {
		return uid, uid, nil
	}
	gid, err := resolveID(g, func() (int, error) {
		groups, err := user.ParseGroupFilter(orEmpty(read("/etc/group")), func(x user.Group) bool { return x.Name == g })
		if err != nil || len(groups) == 0 {
			return 0, fmt.Errorf("--chown=%s: the image has no group %s in /etc/group: %w", spec, g, errdefs.ErrInvalidArgument)
		}
		return groups[0].Gid, nil
	})
	return uid, gid, err
}

func resolveID(s string, byName func() (int, error)) (int, error) {
	if n, err := strconv.ParseUint(s, 10, 31); err == nil {
		return int(n), nil
	}
	return byName()
}

func orEmpty(r io.Reader) io.Reader {
	if r == nil {
		return strings.NewReader("")
	}
	return r
}

// globIn returns the paths under root that the source pattern matches,
// as paths inside root.
func globIn(root, src string) ([]string, error) {
	p := path.Clean("/" + src)
	if !hasGlob(p) {
		return []string{p}, nil
	}
	found, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(p)))
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", src, err, errdefs.ErrInvalidArgument)
	}
	var out []string
	for _, f := range found {
		if r, err := filepath.Rel(root, f); err == nil && !strings.HasPrefix(r, "..") {
			out = append(out, "/"+filepath.ToSlash(r))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("nothing matches %s: %w", src, errdefs.ErrNotFound)
	}
	return out, nil
}

// unpackArchive unpacks p into dest if it is a tar archive, plain or
// compressed with gzip, bzip2 or zstd, as ADD does; it reports false for
// any other file.
func unpackArchive(src *fstree.Tree, p string, dst *fstree.Tree, dest string, rw func(*tar.Header)) (bool, error) {
	open := func() (io.ReadCloser, error) {
		fd, err := src.Open(p, unix.O_RDONLY, true)
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(fd), p)
		r, err := decompress(bufio.NewReader(f))
		if err != nil {
			f.Close()
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{r, f}, nil
	}
	r, err := open()
	if err != nil {
		return false, nil
	}
	_, err = tar.NewReader(r).Next()
	r.Close()
	if err != nil {
		return false, nil
	}
	if r, err = open(); err != nil {
		return false, err
	}
	defer r.Close()
	if err := mkdir(dst, dest); err != nil {
		return true, err
	}
	if err := extract(r, dst, dest, rw); err != nil {
		return true, fmt.Errorf("unpack %s: %w", p, err)
	}
	return true, nil
}

// decompress returns r's content, gunzipped, bunzipped or unzstd'ed when
// its first bytes say so.
func decompress(r *bufio.Reader) (io.Reader, error) {
	magic, _ := r.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(r)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(r), nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return r, nil
}

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }
