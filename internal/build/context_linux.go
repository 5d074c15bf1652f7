package build

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/fstree"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// buildContext is the directory COPY and ADD read, with the patterns of
// its .containerignore (or .dockerignore) left out. Its paths resolve
// inside it: a symbolic link in the context cannot reach the rest of the
// host.
type buildContext struct {
	dir    string
	ignore *patternmatcher.PatternMatcher
}

func openContext(dir string) (*buildContext, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("build context %s does not exist: %w", dir, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory: %w", dir, errdefs.ErrInvalidArgument)
	}
	c := &buildContext{dir: abs}
	for _, name := range []string{".containerignore", ".dockerignore"} {
		f, err := os.Open(filepath.Join(abs, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err == nil {
			c.ignore, err = patternmatcher.New(patterns)
		}
		if err != nil {
			return nil, fmt.Errorf("build context: %s: %v: %w", name, err, errdefs.ErrInvalidArgument)
		}
		break
	}
	return c, nil
}

// ignored reports whether p, a path in the context ("/a/b"), is left out.
func (c *buildContext) ignored(p string) bool {
	if c.ignore == nil {
		return false
	}
	ok, _ := c.ignore.MatchesOrParentMatches(strings.TrimPrefix(path.Clean(p), "/"))
	return ok
}

// tree opens the context as a tree that leaves out ignored paths.
func (c *buildContext) tree() (*fstree.Tree, error) {
	t, err := fstree.OpenDir(c.dir, "the build context", true, true)
	if err != nil {
		return nil, err
	}
	t.SetFilter(c.ignored)
	return t, nil
}

// match returns the context paths a COPY source names: itself, or what
// its wildcards match, never an ignored path. A source that leads out of
// the context is refused.
func (c *buildContext) match(src string) ([]string, error) {
	rel := path.Clean(src)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, fmt.Errorf("%s is outside the build context: %w", src, errdefs.ErrPermission)
	}
	p := path.Clean("/" + rel)
	if !hasGlob(p) {
		if p != "/" && c.ignored(p) {
			return nil, fmt.Errorf("%s is excluded by .dockerignore: %w", src, errdefs.ErrNotFound)
		}
		return []string{p}, nil
	}
	// Wildcards are matched against the names in the context; the paths
	// found are then opened inside it like any other.
	found, err := filepath.Glob(filepath.Join(c.dir, filepath.FromSlash(p)))
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", src, err, errdefs.ErrInvalidArgument)
	}
	var out []string
	for _, f := range found {
		r, err := filepath.Rel(c.dir, f)
		if err != nil || strings.HasPrefix(r, "..") {
			continue
		}
		if q := "/" + filepath.ToSlash(r); !c.ignored(q) {
			out = append(out, q)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no file in the build context matches %s: %w", src, errdefs.ErrNotFound)
	}
	slices.Sort(out)
	return out, nil
}

func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[\\") }

// hashTree hashes what p is in t for a cache key: names, kinds, modes,
// link targets and contents, not times or owners (as Docker: touching a
// file or cloning the context again keeps the cache).
func hashTree(t *fstree.Tree, p string) (string, error) {
	r := t.Stream(p, "x", true)
	defer r.Close()
	h := sha256.New()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%q %c %o %q %d\n", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Linkname, hdr.Size)
		if _, err := io.Copy(h, tr); err != nil {
			return "", err
		}
	}
}
