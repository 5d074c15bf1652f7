// Package registrytest runs a real OCI distribution registry for tests and
// pushes small, locally made images to it.
//
// Start launches Debian's docker-registry (distribution 2.8) on 127.0.0.1 with
// a free port and its storage in the test's temporary directory, optionally
// behind TLS with a freshly generated certificate authority (WithTLS) and
// htpasswd basic authentication (WithAuth). The registry is stopped when the
// test ends, whether it passed or not. Tests skip when docker-registry is not
// installed.
//
// The push helpers (PushImage, Push, PushIndex, PushMultiPlatform,
// PushBusybox) build images in memory with go-containerregistry and push them
// with the registry's transport and credentials, so the code under test sees
// the same wire protocol, media types and authentication flows as against a
// production registry.
package registrytest

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is the registry program Start runs, looked up in $PATH.
const Binary = "docker-registry"

const (
	// startTimeout bounds how long one registry process may take to answer
	// GET /v2/ after it was started.
	startTimeout = 30 * time.Second
	// startAttempts bounds the retries when another process takes the
	// chosen port between picking it and the registry binding it.
	startAttempts = 5
	// maxLog bounds the registry output kept for failure reports.
	maxLog = 1 << 20
)

// Registry is a running docker-registry process. Its fields are read-only.
type Registry struct {
	// Host is the registry's address, "127.0.0.1:PORT"; it is also the
	// registry part of image references ("127.0.0.1:PORT/repo:tag").
	Host string
	// Scheme is "https" with WithTLS or WithAuth, "http" otherwise.
	Scheme string
	// URL is Scheme + "://" + Host, without a trailing slash.
	URL string
	// CAFile is the PEM file of the certificate authority that signed the
	// server certificate, or "" without TLS. Point clients (for example
	// berth's --tls-ca or a certs.d directory) at it.
	CAFile string
	// Username and Password are the credentials given to WithAuth, or "".
	Username, Password string
	// Dir is the registry's storage root directory.
	Dir string

	caPool *x509.CertPool
	tr     *http.Transport // shared by the push helpers
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd.Wait returned
	log    *logBuffer
}

type options struct {
	tls            bool
	user, password string
}

// Option configures Start.
type Option func(*options)

// WithTLS serves HTTPS with a server certificate for 127.0.0.1, ::1 and
// localhost, signed by a certificate authority generated for this registry
// only (see Registry.CAFile and Registry.CAPool).
func WithTLS() Option {
	return func(o *options) { o.tls = true }
}

// WithAuth requires HTTP basic authentication with user and password
// (docker-registry's htpasswd authentication, bcrypt hashes). Basic
// credentials travel in clear text and registries that use them are served
// over HTTPS, so WithAuth implies WithTLS (distribution 2.8 itself would
// accept htpasswd over plain HTTP).
func WithAuth(user, password string) Option {
	return func(o *options) {
		o.tls = true
		o.user, o.password = user, password
	}
}

// Start runs docker-registry on a free port of 127.0.0.1 and returns once it
// answers GET /v2/ (typically under 100ms). The process is killed and reaped,
// and its port freed, in t.Cleanup; if the test binary dies without running
// cleanups, the kernel kills the registry (Linux parent-death signal). Start
// skips the test when docker-registry is not installed and fails it when the
// registry does not come up; the registry's output is logged when the test
// fails.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		t.Skipf("registrytest: %s not found in $PATH (apt-get install docker-registry): %v", Binary, err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}

	work := t.TempDir()
	r := &Registry{Scheme: "http", Dir: filepath.Join(work, "storage"), Username: o.user, Password: o.password}
	var certFile, keyFile, htpasswd string
	if o.tls {
		r.Scheme = "https"
		if certFile, keyFile, err = r.writeCerts(work); err != nil {
			t.Fatalf("registrytest: %v", err)
		}
	}
	if o.user != "" {
		htpasswd = filepath.Join(work, "htpasswd")
		if err := writeHtpasswd(htpasswd, o.user, o.password); err != nil {
			t.Fatalf("registrytest: %v", err)
		}
	}

	r.tr = r.Transport()
	t.Cleanup(r.tr.CloseIdleConnections)

	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		r.Host = net.JoinHostPort("127.0.0.1", port)
		r.URL = r.Scheme + "://" + r.Host
		config := filepath.Join(work, "config.yml")
		if err := os.WriteFile(config, []byte(r.config(certFile, keyFile, htpasswd)), 0o600); err != nil {
			t.Fatalf("registrytest: write config: %v", err)
		}
		lastErr = r.start(t, bin, config)
		if lastErr == nil {
			return r
		}
		if !strings.Contains(r.log.String(), "address already in use") {
			break
		}
		t.Logf("registrytest: port %s was taken before the registry bound it, retrying", port)
	}
	t.Fatalf("registrytest: %v\nregistry output:\n%s", lastErr, r.log.String())
	return nil
}

// start runs one registry process and waits until it serves. On failure the
// process is already reaped.
func (r *Registry) start(t testing.TB, bin, config string) error {
	r.log = &logBuffer{}
	r.cmd = exec.Command(bin, "serve", config)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.Env = registryEnv()
	r.cmd.SysProcAttr = sysProcAttr()
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	r.done = make(chan struct{})
	go func() {
		r.cmd.Wait() // the exit status is in r.cmd.ProcessState
		close(r.done)
	}()

	if err := r.waitReady(); err != nil {
		r.stop()
		return err
	}
	cmd, done, log := r.cmd, r.done, r.log
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("registrytest: output of registry %s:\n%s", r.Host, log.String())
		}
	})
	return nil
}

// waitReady waits until the registry's own log says it listens on r.Host and
// then until GET /v2/ answers with 200 (or 401 when authentication is on).
// Waiting for the log line first makes sure the answer comes from this
// process and not from another test's registry that won the race for the
// port. It fails when the process exits or startTimeout passes.
func (r *Registry) waitReady() error {
	client := &http.Client{Transport: r.Transport(), Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(startTimeout)
	var lastErr error = errors.New("no \"listening on\" line in its output")
	for delay := 5 * time.Millisecond; time.Now().Before(deadline); delay = min(2*delay, 25*time.Millisecond) {
		select {
		case <-r.done:
			return fmt.Errorf("registry on %s exited during startup: %v", r.Host, r.cmd.ProcessState)
		case <-time.After(delay):
		}
		if !r.listening() {
			continue
		}
		resp, err := client.Get(r.URL + "/v2/")
		if err != nil {
			lastErr = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || (r.Username != "" && resp.StatusCode == http.StatusUnauthorized) {
			return nil
		}
		lastErr = fmt.Errorf("GET %s/v2/: %s", r.URL, resp.Status)
	}
	return fmt.Errorf("registry on %s not ready after %v: %w", r.Host, startTimeout, lastErr)
}

// listening reports whether the registry logged that it listens on r.Host:
// distribution 2.8 logs msg="listening on HOST:PORT" or, with TLS,
// msg="listening on HOST:PORT, tls".
func (r *Registry) listening() bool {
	out := r.log.String()
	return strings.Contains(out, "listening on "+r.Host+"\"") || strings.Contains(out, "listening on "+r.Host+", tls\"")
}

// stop kills the process and waits for it.
func (r *Registry) stop() {
	r.cmd.Process.Kill()
	<-r.done
}

// config returns docker-registry's config.yml. Empty file names leave TLS or
// authentication off.
func (r *Registry) config(certFile, keyFile, htpasswd string) string {
	var b strings.Builder
	// The secret signs upload state; distribution generates a random one
	// with a warning when it is missing.
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: %q
  headers:
    X-Content-Type-Options: [nosniff]
`, r.Dir, r.Host, randomHex(16))
	if certFile != "" {
		fmt.Fprintf(&b, "  tls:\n    certificate: %q\n    key: %q\n", certFile, keyFile)
	}
	if htpasswd != "" {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: %q\n    path: %q\n", "berth-registrytest", htpasswd)
	}
	return b.String()
}

// CAPool returns a pool holding only the registry's certificate authority, or
// nil without TLS.
func (r *Registry) CAPool() *x509.CertPool { return r.caPool }

// TLSConfig returns a client TLS configuration that trusts the registry's
// certificate authority, or nil without TLS.
func (r *Registry) TLSConfig() *tls.Config {
	if r.caPool == nil {
		return nil
	}
	return &tls.Config{RootCAs: r.caPool, MinVersion: tls.VersionTLS12}
}

// Transport returns a new HTTP transport that trusts the registry's
// certificate authority. It carries no credentials.
func (r *Registry) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = r.TLSConfig()
	return tr
}

// Ref returns the reference of repo (with an optional ":tag" or "@digest")
// in this registry: Host + "/" + repo. A repo that already starts with Host
// is returned unchanged.
func (r *Registry) Ref(repo string) string {
	if strings.HasPrefix(repo, r.Host+"/") {
		return repo
	}
	return r.Host + "/" + repo
}

// Logs returns what the registry process has written so far.
func (r *Registry) Logs() string { return r.log.String() }

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// registryEnv is the environment without REGISTRY_* variables, which would
// override the generated configuration.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return env
}

// writeHtpasswd writes an htpasswd file with one bcrypt entry, the only hash
// format distribution accepts.
func writeHtpasswd(path, user, password string) error {
	if strings.ContainsAny(user, ":\n") {
		return fmt.Errorf("htpasswd user %q: must not contain ':' or newlines", user)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("htpasswd hash: %w", err)
	}
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write htpasswd: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// logBuffer collects process output up to maxLog bytes; it is safe for
// concurrent use.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped bool
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxLog - l.buf.Len(); room < len(p) {
		l.buf.Write(p[:max(room, 0)])
		l.dropped = true
		return len(p), nil
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped {
		return l.buf.String() + "\n[registrytest: output truncated]\n"
	}
	return l.buf.String()
}
