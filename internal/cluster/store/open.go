package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
)

// OpenFunc opens a store from a URI of its backend's scheme.
type OpenFunc func(ctx context.Context, uri string) (Store, error)

var (
	backendsMu sync.Mutex
	backends   = map[string]OpenFunc{}
)

// Register makes a backend available to Open under a URI scheme ("bolt",
// "etcd"). Backends register themselves when their package is imported,
// so the program that opens stores imports the backends it offers.
func Register(scheme string, open OpenFunc) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	backends[scheme] = open
}

// Open opens the store that uri names: "bolt:///path/state.db" or a plain
// path for the embedded store, "etcd://HOST:PORT[,HOST:PORT…][/PREFIX]"
// for etcd.
func Open(ctx context.Context, uri string) (Store, error) {
	scheme := "bolt"
	if s, _, ok := strings.Cut(uri, "://"); ok {
		scheme = s
	} else if uri == "" {
		return nil, fmt.Errorf("store: empty location: give a file path or etcd://HOST:PORT: %w", errdefs.ErrInvalidArgument)
	}
	backendsMu.Lock()
	open := backends[scheme]
	known := make([]string, 0, len(backends))
	for s := range backends {
		known = append(known, s+"://")
	}
	backendsMu.Unlock()
	if open == nil {
		if len(known) == 0 {
			return nil, fmt.Errorf("store %q: no store backend is built in: %w", uri, errdefs.ErrNotImplemented)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("store %q: unknown scheme %q (known: %s): %w", uri, scheme, strings.Join(known, ", "), errdefs.ErrInvalidArgument)
	}
	return open(ctx, uri)
}
