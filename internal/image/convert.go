package image

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
)

func hashOf(d digest.Digest) v1.Hash {
	return v1.Hash{Algorithm: d.Algorithm().String(), Hex: d.Encoded()}
}

func digestOf(h v1.Hash) digest.Digest { return digest.Digest(h.String()) }
