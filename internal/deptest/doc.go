// Package deptest holds tests over the module's package graph, in the
// spirit of Tailscale's tstest/deptest: which berth package may depend on
// which (deps_test.go, a table of rules to read and extend), and that
// every package has a package doc comment (doc_test.go). The graph comes
// from one `go list -json` of the module for the host's platform, without
// test-only imports: what the binaries link. The package has no code of
// its own.
package deptest
