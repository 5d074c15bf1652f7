// Package api holds the objects of berth's orchestration — services, their
// revisions, tasks (replicas), nodes and autoscalers — as plain Go types with JSON tags,
// their defaults and their validation.
//
// The stored kinds (Service, Revision, Task, Node, Autoscaler) are written as versioned
// JSON in the manner of Kubernetes objects: every encoding carries
// "apiVersion" (Version) and "kind", and decoding refuses another version,
// another kind and any unknown field, so that a berth never silently drops
// what a newer berth wrote. A field is added only together with a new
// Version.
//
// Durations are written as Go duration strings ("10s", "1m30s"), CPUs as
// nano-CPUs (1e9 is one CPU) and memory as bytes.
//
// Validation errors are one line that names the field and wrap
// errdefs.ErrInvalidArgument.
package api
