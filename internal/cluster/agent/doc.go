// Package agent runs a node's tasks on berth's container engine: it is the
// Runner the cluster controllers drive (Ensure, Stop, List, Watch, Usage),
// and the only cluster package that touches the engine.
//
// A task is an ordinary container, named SERVICE.SLOT.TASKID and labelled
// with its task (LabelTaskID and the others below), with no restart policy:
// the controllers replace what ends. The agent keeps no state of its own
// beyond what runs: it finds its containers by their labels, so a new Agent
// on the same root adopts the containers an earlier one started and probes
// them again.
//
// Probes follow Kubernetes: a startup probe first, then liveness and
// readiness, each by exec in the container, an HTTP GET to the
// container's address or a TCP connect. A task is running while its process
// is up and ready once its readiness probe passes (at once without one).
// A failed liveness probe stops the container (ActionUnhealthy, then
// ActionExited). A template without probes uses the image's HEALTHCHECK,
// which the container's monitor runs, as liveness and readiness.
//
// Publish and Unpublish hand a service's ready tasks to the network
// package, which gives the service a virtual IP and DNS names on its
// networks and spreads its published ports over them with nftables; the
// containers themselves publish nothing.
//
// A service that scales from zero (WithActivator, ServiceEndpoints.Activate)
// has its new TCP connections redirected to the agent's activator while it
// has no ready replica: it wakes the service's autoscaler, holds each
// connection until Publish gives the service a backend (30 s at most) and
// splices it to one, as Knative's activator does on the cold path. Once a
// replica is ready, connections go straight to it.
package agent
