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
// digest may follow "@". Malformed references (uppercase repositories,
// bad tags or digests) get one line that says what is wrong.
func ParseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("image reference is empty: %w", errdefs.ErrInvalidArgument)
	}
	r, err := name.ParseReference(s, name.WithDefaultRegistry(name.DefaultRegistry))
	if err != nil {
		return Reference{}, fmt.Errorf("image reference %q: %s: %w", s, explain(s, err), errdefs.ErrInvalidArgument)
	}
	// go-containerregistry only checks the repository's characters; Docker's
	// grammar also wants each path component to start and end with a
	// letter or digit.
	for _, c := range strings.Split(r.Context().RepositoryStr(), "/") {
		if !pathComponent().MatchString(c) {
			return Reference{}, fmt.Errorf("image reference %q: repository path component %q must start and end with a lowercase letter or digit, with only '.', '_', '__' or '-' between: %w", s, c, errdefs.ErrInvalidArgument)
		}
	}
	return Reference{ref: r}, nil
}

var pathComponent = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`) })

// explain turns go-containerregistry's parse errors into advice.
func explain(s string, err error) string {
	repo := s
	if i := strings.IndexAny(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	if path := repo[strings.Index(repo, "/")+1:]; strings.ToLower(path) != path {
		return "repository names must be lowercase"
	}
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
