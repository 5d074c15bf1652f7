package autoscale

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// Check fails, with one line wrapping errdefs.ErrInvalidArgument (or
// errdefs.ErrNotImplemented), if a's triggers cannot work: values that
// make no sense (a cron expression, a time zone, a URL) or a source that
// does not answer (a Redis server). The API calls it before it stores a.
func Check(ctx context.Context, a api.Autoscaler, _ api.Service) error {
	for i, t := range a.Spec.Triggers {
		if err := checkTrigger(ctx, t); err != nil {
			return fmt.Errorf("triggers[%d]: %w", i, err)
		}
	}
	return nil
}
