// Package services holds the end-to-end tests of services: `berth service`
// commands against a real control plane (`berth serve`, started by the CLI
// or by the test) over a real engine on a temporary root, with busybox
// replicas. They need root.
package services
