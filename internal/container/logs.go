package container

import (
	"context"
	"path/filepath"

	"github.com/berth-dev/berth/internal/container/logfile"
	"github.com/berth-dev/berth/internal/container/monitorproto"
)

// Logs calls fn for each entry of the container's log that o selects.
func (e *Engine) Logs(ctx context.Context, ref string, o logfile.ReadOptions, fn func(logfile.Entry) error) error {
	id, err := e.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	return logfile.Read(ctx, filepath.Join(e.dir(id), monitorproto.LogFile), o, fn)
}
