// Package runtime holds berth-runtime's root integration tests: they build
// the binary, make busybox bundles and drive the runtime through its command
// line, asserting on what a user would see. They skip without root.
package runtime
