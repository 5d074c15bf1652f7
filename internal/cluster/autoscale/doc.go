// Package autoscale sets services' replicas from their load, as
// Kubernetes' HorizontalPodAutoscaler and KEDA do: the replicas' CPU and
// memory utilization against their reservations (the HPA's algorithm, its
// tolerance, stabilization windows and rate limits), and triggers — a
// schedule (cron), the length of a Redis list, a number read from any JSON
// endpoint, requests per second — each asking for a count, the largest
// winning (KEDA's rule), with scale to zero after a cooldown.
//
// A Controller runs one worker per stored api.Autoscaler. Each polling
// interval the worker reads the service, its tasks and their usage (from
// every node's Metrics), asks its triggers, decides, and writes the
// service's replicas together with the autoscaler's status in one store
// transaction; the service's controllers do the rest. A reading that fails
// holds the count where it is rather than letting it fall to the minimum.
// What a worker remembers (its recommendations for the stabilization
// windows, its recent changes for the rate limits) lives in memory, as the
// HPA's does: a restarted control plane starts those afresh.
package autoscale
