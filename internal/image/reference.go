package image

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
)

// Reference is a parsed, normalised image reference.
type Reference struct {
	ref name.Reference
}

// ParseReference parses s the way Docker does: "nginx" means
// docker.io/library/nginx:latest, a registry host may carry a port, and a
// digest may follow "@". A malformed reference gets one line that says
// which part is wrong and why (see diagnose).
func ParseReference(s string) (Reference, error) {
	if msg := diagnose(s); msg != "" {
		return Reference{}, fmt.Errorf("invalid image reference %s: %s: %w", shorten(s), msg, errdefs.ErrInvalidArgument)
	}
	r, err := name.ParseReference(s, name.WithDefaultRegistry(name.DefaultRegistry))
	if err != nil {
		// diagnose knows the grammar; this is only a safety net.
		return Reference{}, fmt.Errorf("invalid image reference %s: %s: %w", shorten(s), explain(err), errdefs.ErrInvalidArgument)
	}
	return Reference{ref: r}, nil
}

var pathComponent = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`) })

// explain strips go-containerregistry's prefix from its parse errors.
func explain(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.Contains(msg[:i], "could not parse") {
		msg = msg[i+2:]
	}
	return msg
}

// String is the fully qualified form, e.g. docker.io/library/nginx:latest.
func (r Reference) String() string {
	return displayRegistry(r.ref.Context().RegistryStr()) + "/" + r.ref.Context().RepositoryStr() + r.suffix()
}

func (r Reference) suffix() string {
	switch t := r.ref.(type) {
	case name.Tag:
		return ":" + t.TagStr()
	case name.Digest:
		return "@" + t.DigestStr()
	}
	return ""
}

// Repository is the fully qualified repository, e.g. docker.io/library/nginx.
func (r Reference) Repository() string {
	return displayRegistry(r.ref.Context().RegistryStr()) + "/" + r.ref.Context().RepositoryStr()
}

// Registry is the registry host (with port), e.g. docker.io or localhost:5000.
func (r Reference) Registry() string { return displayRegistry(r.ref.Context().RegistryStr()) }

// Tag is the tag, or "" for a digest reference.
func (r Reference) Tag() string {
	if t, ok := r.ref.(name.Tag); ok {
		return t.TagStr()
	}
	return ""
}

// Digest is the digest, or "" for a tag reference.
func (r Reference) Digest() string {
	if d, ok := r.ref.(name.Digest); ok {
		return d.DigestStr()
	}
	return ""
}

// remote is the reference for go-containerregistry, optionally forcing
// plain HTTP.
func (r Reference) remote(insecure bool) (name.Reference, error) {
	opts := []name.Option{name.WithDefaultRegistry(name.DefaultRegistry)}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(r.ref.String(), opts...)
}

// displayRegistry shows Docker Hub as docker.io, as Docker and Podman do.
func displayRegistry(host string) string {
	if host == name.DefaultRegistry {
		return "docker.io"
	}
	return host
}
