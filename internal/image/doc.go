// Package image keeps container images: references, a content-addressed
// blob store, the index of images and tags, transfers from and to
// registries, and unpacking layers into overlay snapshots
// (internal/snapshot) that containers mount as their lower directories.
//
// Everything an image brings — references, manifests, configs, layers — is
// treated as hostile input: digests are verified on write, layers are
// unpacked confined to their snapshot, and an image becomes visible only
// once all its blobs and snapshots are complete.
package image
