package image

import (
	"fmt"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Short names are looked up in the store the way Podman does before any
// registry is asked: a name that does not say its registry ("bb",
// "team/app:1") is, in this order,
//
//  1. localhost/NAME, where berth build, import and tag put local images;
//  2. docker.io/library/NAME or docker.io/NAME, what Docker means by it;
//  3. an image ID or a unique prefix of one;
//  4. any registry's …/NAME with that tag, if all that match are one image.
//
// A name with a registry ("quay.io/x/bb", "localhost/bb") means only that.

// found is what lookup found: the image and the name it has in the tag
// index ("" when it was found by digest or ID).
type found struct {
	img *Image
	tag string
}

// lookup finds the image that s names (see above): a tag or digest
// reference, a full image ID (sha256:HEX or HEX) or a unique prefix of at
// least 4 hex digits. A tag that is missing while its repository has others
// is a not-found error that names them.
func lookup(tx *bolt.Tx, s string) (found, error) {
	ref, parseErr := ParseReference(s)
	repo, short := writtenRepository(s)
	if parseErr == nil {
		for _, name := range exactNames(ref, repo, short) {
			if id := tx.Bucket(bucketTags).Get([]byte(name)); id != nil {
				img, err := getImage(tx, digest.Digest(id))
				return found{img: img, tag: name}, err
			}
		}
		if d := ref.Digest(); d != "" {
			var hit *Image
			tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
				img, err := getImage(tx, digest.Digest(k))
				if err == nil && (img.Manifest.String() == d || contains(img.RepoDigests, ref.String())) {
					hit = img
				}
				return nil
			})
			if hit != nil {
				return found{img: hit}, nil
			}
		}
	}
	hex := strings.TrimPrefix(s, "sha256:")
	if len(hex) >= 4 && isHex(hex) {
		var matches []digest.Digest
		tx.Bucket(bucketImages).ForEach(func(k, _ []byte) error {
			if strings.HasPrefix(digest.Digest(k).Encoded(), hex) {
				matches = append(matches, digest.Digest(k))
			}
			return nil
		})
		switch len(matches) {
		case 1:
			img, err := getImage(tx, matches[0])
			return found{img: img}, err
		case 0:
		default:
			return found{}, fmt.Errorf("image ID prefix %q matches %d images; give more digits: %w", s, len(matches), errdefs.ErrInvalidArgument)
		}
	}
	if parseErr != nil {
		if !isHex(hex) {
			return found{}, parseErr
		}
		return found{}, &notFoundError{name: s}
	}
	if short && ref.Tag() != "" {
		if f, err := suffixMatch(tx, repo, ref.Tag()); f.img != nil || err != nil {
			return f, err
		}
	}
	return found{}, &notFoundError{name: s, others: otherTags(tx, ref, repo, short)}
}

// writtenRepository is the repository part of s as the user wrote it (no
// tag, no digest), and whether it leaves the registry unsaid.
func writtenRepository(s string) (string, bool) {
	repo, _, _ := strings.Cut(s, "@")
	slash := strings.LastIndex(repo, "/")
	if i := strings.Index(repo[slash+1:], ":"); i >= 0 {
		repo = repo[:slash+1+i]
	}
	first, _, hasSlash := strings.Cut(repo, "/")
	registry := hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost")
	return repo, !registry
}

// exactNames are the names a reference may have in the tag index, in the
// order they are tried: localhost/NAME first for a short name.
func exactNames(ref Reference, repo string, short bool) []string {
	if !short || ref.Tag() == "" {
		return []string{ref.String()}
	}
	return []string{"localhost/" + repo + ":" + ref.Tag(), ref.String()}
}

// suffixMatch finds the images tagged REGISTRY/…/repo:tag. Several
// different ones make the short name ambiguous.
func suffixMatch(tx *bolt.Tx, repo, tag string) (found, error) {
	var names []string
	ids := map[string]bool{}
	tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		r, t := splitTag(string(k))
		if t == tag && strings.HasSuffix(r, "/"+repo) {
			names = append(names, string(k))
			ids[string(v)] = true
		}
		return nil
	})
	switch {
	case len(names) == 0:
		return found{}, nil
	case len(ids) > 1:
		sort.Strings(names)
		return found{}, fmt.Errorf("short name %q matches several images (%s); give the full name: %w",
			repo+":"+tag, strings.Join(names, ", "), errdefs.ErrInvalidArgument)
	}
	id := tx.Bucket(bucketTags).Get([]byte(names[0]))
	img, err := getImage(tx, digest.Digest(id))
	return found{img: img, tag: names[0]}, err
}

// otherTags lists, for each repository the reference could mean, the tags
// the store has of it ("localhost/bb has tags 1, latest").
func otherTags(tx *bolt.Tx, ref Reference, repo string, short bool) string {
	byRepo := map[string][]string{}
	tx.Bucket(bucketTags).ForEach(func(k, _ []byte) error {
		r, t := splitTag(string(k))
		if t != "" && (r == ref.Repository() || short && (r == "localhost/"+repo || strings.HasSuffix(r, "/"+repo))) {
			byRepo[r] = append(byRepo[r], t)
		}
		return nil
	})
	var parts []string
	for _, r := range sortedKeys(byRepo) {
		tags := byRepo[r]
		sort.Strings(tags)
		noun := "tags"
		if len(tags) == 1 {
			noun = "tag"
		}
		parts = append(parts, fmt.Sprintf("%s has %s %s", r, noun, strings.Join(tags, ", ")))
	}
	return strings.Join(parts, "; ")
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// notFoundError is an image the store does not have; others names the
// tags it has of the same repository, if any.
type notFoundError struct {
	name   string
	others string
}

func (e *notFoundError) Error() string {
	if e.others != "" {
		return fmt.Sprintf("image %q not found; %s", e.name, e.others)
	}
	return fmt.Sprintf("image %q: not found", e.name)
}

func (e *notFoundError) Unwrap() error { return errdefs.ErrNotFound }
