package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RegistryOptions say how to reach registries.
type RegistryOptions struct {
	// Insecure skips TLS verification and allows plain HTTP
	// (--tls-verify=false). Loopback registries always allow plain HTTP.
	Insecure bool
	// CertDir holds per-registry CA certificates, as Docker's
	// /etc/docker/certs.d: CERTDIR/HOST[:PORT]/*.crt.
	CertDir string
	// InsecureRegistries are treated as if Insecure were set for them
	// (see LoadInsecureRegistries).
	InsecureRegistries []string
	// Keychain finds credentials; nil means Docker's config.json
	// (~/.docker/config.json or $DOCKER_CONFIG), which `berth login` writes.
	Keychain authn.Keychain
}

// PullOptions are Pull's options.
type PullOptions struct {
	RegistryOptions
	// Platform selects from a multi-platform index; nil means the host's.
	Platform *v1.Platform
	Progress *Progress
}

// PushOptions are Push's options.
type PushOptions struct {
	RegistryOptions
	// Progress hears the bytes of each layer blob sent; blobs the
	// registry has already are not sent.
	Progress *Progress
}

// HostPlatform is the platform of this machine.
func HostPlatform() *v1.Platform {
	p := &v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
	if goruntime.GOARCH == "arm" {
		p.Variant = "v7"
	}
	return p
}

// ParsePlatform parses OS/ARCH[/VARIANT].
func ParsePlatform(s string) (*v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return nil, fmt.Errorf("platform %q: expected OS/ARCH[/VARIANT], like linux/arm64: %w", s, errdefs.ErrInvalidArgument)
	}
	p := &v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// Pull fetches ref from its registry into the store and tags it.
func (s *Store) Pull(ctx context.Context, ref Reference, opts PullOptions) (*Image, error) {
	platform := opts.Platform
	if platform == nil {
		platform = HostPlatform()
	}
	opts.Insecure = opts.insecureFor(ref.Registry())
	rref, err := ref.remote(opts.Insecure)
	if err != nil {
		return nil, err
	}
	ropts, err := remoteOptions(ctx, ref.Registry(), opts.RegistryOptions)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(rref, ropts...)
	if err != nil {
		return nil, registryError(ref, err)
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, registryError(ref, err)
		}
		img, err = selectPlatform(ref, idx, platform)
		if err != nil {
			return nil, err
		}
	} else {
		if img, err = desc.Image(); err != nil {
			return nil, registryError(ref, err)
		}
		if cfg, err := img.ConfigFile(); err == nil && opts.Platform != nil && !platformMatches(cfg.Platform(), platform) {
			return nil, fmt.Errorf("image %s is for %s, not %s: %w", ref, cfg.Platform(), platformString(platform), errdefs.ErrNotFound)
		}
	}
	var names []string
	if ref.Tag() != "" {
		names = []string{ref.String()}
	}
	repoDigest := ref.Repository() + "@" + desc.Digest.String()
	rec, err := s.add(ctx, img, names, repoDigest, opts.Progress)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, registryError(ref, err))
	}
	return rec, nil
}

func selectPlatform(ref Reference, idx v1.ImageIndex, want *v1.Platform) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, registryError(ref, err)
	}
	var have []string
	for _, d := range m.Manifests {
		if d.Platform == nil {
			continue
		}
		if platformMatches(d.Platform, want) {
			return idx.Image(d.Digest)
		}
		have = append(have, platformString(d.Platform))
	}
	return nil, fmt.Errorf("image %s has no %s variant (it has %s); choose one with --platform: %w",
		ref, platformString(want), strings.Join(have, ", "), errdefs.ErrNotFound)
}

func platformMatches(have, want *v1.Platform) bool {
	if have == nil {
		return false
	}
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	return want.Variant == "" || have.Variant == want.Variant
}

func platformString(p *v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// remoteOptions builds go-containerregistry's options: credentials, TLS
// with the system's and the registry's extra CA certificates, retries.
func remoteOptions(ctx context.Context, registry string, o RegistryOptions) ([]remote.Option, error) {
	tr, err := baseTransport(registry, o)
	if err != nil {
		return nil, err
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(tr),
		remote.WithAuthFromKeychain(kc),
		remote.WithJobs(4),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 4}),
	}, nil
}

// baseTransport is the HTTP transport for registry: TLS with the system's
// CA certificates and the registry's own from CertDir, or no verification
// when Insecure.
func baseTransport(registry string, o RegistryOptions) (*http.Transport, error) {
	tlsCfg := &tls.Config{InsecureSkipVerify: o.Insecure}
	if !o.Insecure {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if o.CertDir != "" {
			files, _ := filepath.Glob(filepath.Join(o.CertDir, registry, "*.crt"))
			for _, f := range files {
				pem, err := os.ReadFile(f)
				if err != nil || !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("CA certificate %s: cannot be read as PEM: %w", f, errdefs.ErrInvalidArgument)
				}
			}
		}
		tlsCfg.RootCAs = pool
	}
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return tr, nil
}

// registryError turns transport errors into one line that says what to do.
func registryError(ref Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("registry %s refused access to %s (%d); log in with `berth login %s`: %w", ref.Registry(), ref, te.StatusCode, ref.Registry(), errdefs.ErrPermission)
		case http.StatusNotFound:
			return fmt.Errorf("image %s: not found in registry %s: %w", ref, ref.Registry(), errdefs.ErrNotFound)
		}
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) || strings.Contains(err.Error(), "x509:") {
		return fmt.Errorf("registry %s: TLS certificate not trusted (%v); add its CA under the cert directory or use --tls-verify=false: %w", ref.Registry(), firstLine(err), errdefs.ErrUnavailable)
	}
	var ne net.Error
	var oe *net.OpError
	if te != nil || errors.As(err, &ne) || errors.As(err, &oe) {
		return fmt.Errorf("registry %s: %v: %w", ref.Registry(), firstLine(err), errdefs.ErrUnavailable)
	}
	return err // the store's own error, already classified
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
