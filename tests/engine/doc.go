// Package engine holds berth's engine integration tests: they drive the
// built berth binary as a user would — run, ps, logs, exec, stop, rm,
// networks, volumes, restart policies — on images made locally from
// Debian's busybox-static and nginx packages, and need root.
package engine
