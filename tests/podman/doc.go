// Package podman holds an integration test proving that Podman can drive
// berth-runtime as its OCI runtime: `podman --runtime berth-runtime run --rm`,
// `run -d`, `exec`, `stop` and `rm` work, and `--memory` reaches the
// container's cgroup.
//
// The test needs root, podman (with conmon) and Debian's busybox-static, and
// skips with the reason when any is missing. It builds berth-runtime itself,
// makes its own image from /bin/busybox, and keeps all of Podman's state in a
// private directory (its own storage, run root, tmp dir, containers.conf and
// storage.conf) that it removes at the end, even on failure:
//
//	sudo go test -count=1 -v ./tests/podman/
package podman
