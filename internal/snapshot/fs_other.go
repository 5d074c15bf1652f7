//go:build !linux

package snapshot

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

// Overlay snapshots exist on Linux only; elsewhere the store can be read
// but not written.

var errNotLinux = fmt.Errorf("overlay snapshots need Linux: %w", errdefs.ErrNotImplemented)

type fileLock struct{}

func (s *Store) lock(context.Context, digest.Digest, bool) (*fileLock, error) {
	return nil, errNotLinux
}

func (s *Store) tryLock(digest.Digest) (*fileLock, error) { return nil, errNotLinux }

func (l *fileLock) unlock() {}

func syncFS(string) error { return errNotLinux }

func syncDir(string) error { return errNotLinux }

func usage(string) (int64, error) { return 0, errNotLinux }
