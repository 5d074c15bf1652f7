// Package build turns a Containerfile (Dockerfile) and its context into an
// image in berth's store, with Docker's semantics.
//
// The file is parsed by BuildKit's Dockerfile parser
// (github.com/moby/buildkit/frontend/dockerfile/parser and instructions);
// berth only executes what it yields. Each stage starts from an image of
// the store (pulled if missing), an earlier stage, or scratch:
//
//   - RUN runs in a container that berth's own engine creates on the
//     stage's current layers (container.CreateOptions.Base), with the
//     build's network; the container's writable layer becomes the step's
//     layer (image.Store.CommitDiff), moved, not copied.
//   - COPY and ADD copy from the context, an earlier stage or an image into
//     an overlay mounted on the current layers; the overlay's upper
//     directory becomes the layer. Every path is resolved inside its tree
//     (internal/fstree), so neither the context nor an image can lead a
//     copy outside it.
//   - The other instructions only change the image's configuration.
//
// Every step's result is cached under a key derived from the previous
// step's key, the instruction and its inputs (the content of COPY's
// sources), so an unchanged rebuild is a chain of cache hits that yields
// the same image ID, and a change rebuilds only the steps from it on. An
// entry holds only what its step added, its history entry and layer, and a
// hit replays the step (cache.go), so that N steps cost time and space in
// proportion to N. The cache lives in the image store, whose garbage
// collection keeps the layers it names (berth builder prune drops it).
//
// A build works in a directory of its own that it holds locked; the next
// build removes what a killed one left (sweep_linux.go).
package build
