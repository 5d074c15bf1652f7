// Package runtime is berth's OCI runtime: it turns a bundle (a config.json
// and a root file system) into a process isolated by namespaces, limited by
// cgroups and confined by capabilities and seccomp, following the OCI
// runtime specification's lifecycle (creating → created → running → stopped).
//
// A Runtime keeps one directory per container under its root (state.json,
// the start socket); nothing else is shared between invocations, so every
// operation is a short-lived process, like runc. The container's first
// process is a re-execution of the current binary ("init", see Init) that
// prepares the container from inside its namespaces and then execs the
// user's program.
package runtime
