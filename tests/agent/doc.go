// Package agent holds the integration tests of internal/cluster/agent: an
// Agent over a real engine on a temporary root, running busybox task
// containers, their probes and their events. They need root.
package agent
