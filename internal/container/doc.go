// Package container is berth's engine: container records and their state,
// create/start/stop/rm, logs, exec and volumes, and starting the small
// monitor process that each running container gets (package monitor: it
// holds the container's stdio, writes its log, records how it exited and
// applies its restart policy). Package monitorproto is the contract between
// the engine and a monitor; package monitor imports this one, never the
// other way round.
//
// There is no daemon. Every berth command reads and changes the records in
// ROOT/containers directly, under a per-container file lock; the monitor
// of a container is the only long-lived berth process, and one per
// container, so killing one affects only its container. A container's
// directory is also its OCI bundle: config.json is the runtime spec and
// rootfs the overlay of the image's snapshots and the container's own
// writable layer.
package container
