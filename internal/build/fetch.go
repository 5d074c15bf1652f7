package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// download is a file ADD fetched from a URL.
type download struct {
	path    string // where it is, in the build's work directory
	name    string // the URL's last path element
	sum     string // "sha256:HEX"
	modTime time.Time
}

// download fetches url once per build; with checksum ("sha256:HEX") the
// content must match it.
func (b *builder) download(ctx context.Context, url, checksum string) (*download, error) {
	if d, ok := b.downloads[url]; ok {
		return d, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", url, err, errdefs.ErrInvalidArgument)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s: %w", url, resp.Status, errdefs.ErrNotFound)
	}
	dir, err := os.MkdirTemp(b.work, "download-")
	if err != nil {
		return nil, err
	}
	d := &download{path: filepath.Join(dir, "file"), name: path.Base(resp.Request.URL.Path), modTime: time.Now()}
	if d.name == "/" || d.name == "." {
		d.name = "index.html"
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		d.modTime = t
	}
	f, err := os.OpenFile(d.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	d.sum = "sha256:" + hex.EncodeToString(h.Sum(nil))
	if checksum != "" && checksum != d.sum {
		return nil, fmt.Errorf("%s has checksum %s, not %s: %w", url, d.sum, checksum, errdefs.ErrInvalidArgument)
	}
	b.downloads[url] = d
	return d, nil
}
