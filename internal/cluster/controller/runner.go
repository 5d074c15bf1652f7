package controller

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// Runner is what a node offers the controllers: it runs tasks as
// containers, reports on them and says what its resources are taken by.
// cluster/agent implements it over the engine. All methods are safe for
// concurrent use.
type Runner interface {
	// Ensure makes the task run on this node, creating and starting its
	// container if none exists for t.ID, and returns the task's status.
	// It is idempotent by task ID: a second call for a task that already
	// has a container (running or ended) starts nothing and returns the
	// status of that container.
	Ensure(ctx context.Context, t api.Task) (api.TaskStatus, error)

	// Stop stops the task's container with its stop signal, kills it after
	// grace, and removes it. A task without a container is not an error:
	// Stop returns nil.
	Stop(ctx context.Context, taskID string, grace time.Duration) error

	// List returns the status of every task container on this node,
	// running or ended.
	List(ctx context.Context) ([]api.TaskStatus, error)

	// Watch calls fn for each change of a task container on this node,
	// in the order they happen, until ctx ends; it returns ctx's error then,
	// or another error when it cannot go on (the caller lists again and
	// watches anew). A liveness failure is reported as ActionUnhealthy
	// followed by ActionExited; a container removed by someone else as
	// ActionRemoved.
	Watch(ctx context.Context, fn func(api.TaskEvent)) error

	// Usage returns the node's capacity and what its tasks reserve and use.
	Usage(ctx context.Context) (api.NodeUsage, error)

	// Publish makes the node balance the service's traffic as e says: a
	// virtual IP on each of e.Networks that the service's name resolves
	// to, e.Ports published on the node, spread over the addresses of
	// e.Tasks (those this node runs; other nodes' too once networks span
	// nodes). It replaces what an earlier call set for the service and is
	// idempotent; it returns the service's virtual IPs.
	Publish(ctx context.Context, e api.ServiceEndpoints) ([]api.VirtualIP, error)

	// Unpublish removes the load balancing of every service Publish set up
	// whose name live does not report true.
	Unpublish(ctx context.Context, live func(service string) bool) error
}
