package image

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/filter"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

// Named is an image under one of its names, as `images` lists it: one
// line per name, and one with Name "" for an image without names.
type Named struct {
	Image *Image
	Name  string
}

// ParseFilter compiles `images --filter` arguments on the one model of
// package filter (values of one key are alternatives; different keys and
// labels must all hold):
//
//   - dangling=true|false, whether the image has no name;
//   - reference=REPOSITORY[:TAG], where the repository may be short
//     (nginx) and either part a shell pattern (*/bb:1*);
//   - label=KEY[=VALUE], label!=KEY[=VALUE], on the image's config;
//   - before=IMAGE, since=IMAGE: created before or after that image.
func (s *Store) ParseFilter(args []string) (*filter.Filter[Named], error) {
	labels := map[digest.Digest]map[string]string{} // an image is tested once per name
	return filter.New(args,
		filter.Key[Named]{Name: "dangling", Value: func(v string) (func(Named) bool, error) {
			want, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("dangling is true or false: %w", errdefs.ErrInvalidArgument)
			}
			return func(n Named) bool { return (len(n.Image.Names) == 0) == want }, nil
		}},
		filter.Key[Named]{Name: "reference", Value: func(v string) (func(Named) bool, error) {
			return matchReference(v)
		}},
		filter.Labels(func(n Named) map[string]string {
			l, ok := labels[n.Image.ID]
			if !ok {
				l = s.labels(n.Image)
				labels[n.Image.ID] = l
			}
			return l
		}),
		filter.Key[Named]{Name: "before", Value: func(v string) (func(Named) bool, error) {
			ref, err := s.Get(v)
			if err != nil {
				return nil, err
			}
			return func(n Named) bool { return n.Image.Created.Before(ref.Created) }, nil
		}},
		filter.Key[Named]{Name: "since", Value: func(v string) (func(Named) bool, error) {
			ref, err := s.Get(v)
			if err != nil {
				return nil, err
			}
			return func(n Named) bool { return n.Image.Created.After(ref.Created) }, nil
		}},
	)
}

// labels returns the labels of img's config (none if it cannot be read).
func (s *Store) labels(img *Image) map[string]string {
	raw, err := s.Config(img)
	if err != nil {
		return nil
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil
	}
	return cfg.Config.Labels
}

// matchReference returns a test of names against REPOSITORY[:TAG], as
// Docker's reference filter: the repository may be short ("nginx",
// "localhost/bb") and either part may be a shell pattern ("*/bb:1*");
// without a tag every tag matches. An image without a name never matches.
func matchReference(pattern string) (func(Named) bool, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("bad pattern: %w", errdefs.ErrInvalidArgument)
	}
	pRepo, pTag := splitTag(pattern)
	if r, err := ParseReference(pRepo); err == nil && !strings.ContainsAny(pRepo, "*?[") {
		pRepo = r.Repository()
	}
	return func(n Named) bool {
		if n.Name == "" {
			return false
		}
		repo, tag := splitTag(n.Name)
		if ok, _ := path.Match(pRepo, repo); !ok {
			// A pattern matches the short name too: "*/bb" or "nginx*".
			short := strings.TrimPrefix(strings.TrimPrefix(repo, "docker.io/"), "library/")
			if ok, _ = path.Match(pRepo, short); !ok {
				return false
			}
		}
		if pTag == "" {
			return true
		}
		ok, _ := path.Match(pTag, tag)
		return ok
	}, nil
}

// splitTag splits NAME[:TAG] at the tag's colon (not a registry port's).
func splitTag(n string) (string, string) {
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		return n[:i], n[i+1:]
	}
	return n, ""
}
