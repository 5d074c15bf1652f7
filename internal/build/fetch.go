package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultFetchTimeout is how long ADD waits for a URL's server when
// Options.FetchTimeout is 0.
const DefaultFetchTimeout = 30 * time.Second

// download is a file ADD fetched from a URL.
type download struct {
	path    string // where it is, in the build's work directory
	name    string // the URL's last path element
	sum     string // "sha256:HEX"
	modTime time.Time
}

// errStalled ends a download whose server stopped answering.
var errStalled = errors.New("stalled")

// download fetches url once per build; with checksum ("sha256:HEX") the
// content must match it. A server that does not connect, answer or send
// more of the body within the fetch timeout fails the download, however
// long the whole takes; one that takes long shows its progress.
func (b *builder) download(ctx context.Context, url, checksum string) (*download, error) {
	if d, ok := b.downloads[url]; ok {
		return d, nil
	}
	timeout := b.o.FetchTimeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(timeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	fail := func(err error) error {
		if errors.Is(context.Cause(ctx), errStalled) {
			return fmt.Errorf("fetch %s: the server sent nothing for %s, so ADD gave up (is it up and serving?): %w",
				url, timeout, errdefs.ErrUnavailable)
		}
		return fmt.Errorf("fetch %s: %w", url, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", url, err, errdefs.ErrInvalidArgument)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fail(err)
	}
	defer resp.Body.Close()
	watchdog.Reset(timeout)
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
	body := &fetchProgress{r: resp.Body, b: b, url: url, total: resp.ContentLength, start: time.Now(),
		watchdog: watchdog, timeout: timeout}
	body.last = body.start
	_, err = io.Copy(io.MultiWriter(f, h), body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fail(err)
	}
	body.done()
	d.sum = "sha256:" + hex.EncodeToString(h.Sum(nil))
	if checksum != "" && checksum != d.sum {
		return nil, fmt.Errorf("%s has checksum %s, not %s: %w", url, d.sum, checksum, errdefs.ErrInvalidArgument)
	}
	b.downloads[url] = d
	return d, nil
}

// progressEvery is how often a download that takes long says how far it
// is.
var progressEvery = 2 * time.Second

// fetchProgress reads a download's body: every read that gets bytes puts
// off the watchdog, and every progressEvery a line tells how far it is.
type fetchProgress struct {
	r        io.Reader
	b        *builder
	url      string
	n, total int64 // total is -1 if unknown
	start    time.Time
	last     time.Time // of the last line, or the start
	shown    bool
	watchdog *time.Timer
	timeout  time.Duration
}

func (p *fetchProgress) Read(buf []byte) (int, error) {
	n, err := p.r.Read(buf)
	if n > 0 {
		p.watchdog.Reset(p.timeout)
		p.n += int64(n)
		if now := time.Now(); now.Sub(p.last) >= progressEvery {
			p.last, p.shown = now, true
			if p.total > 0 {
				p.b.printf("Fetching %s: %s of %s (%d%%)\n", p.url, size(p.n), size(p.total), p.n*100/p.total)
			} else {
				p.b.printf("Fetching %s: %s\n", p.url, size(p.n))
			}
		}
	}
	return n, err
}

// done says the download is complete, if progress was shown.
func (p *fetchProgress) done() {
	if p.shown {
		p.b.printf("Fetched %s: %s in %s\n", p.url, size(p.n), time.Since(p.start).Round(100*time.Millisecond))
	}
}

// size is n bytes for people.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
