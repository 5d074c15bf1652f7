// Package network connects containers to bridge networks, as netavark and
// aardvark-dns do for Podman: a Linux bridge per network with the gateway
// address, a veth pair per container endpoint, addresses from a file-locked
// IPAM that survives process death, outbound NAT and published ports with
// nftables (reachable from other hosts, from the host's own addresses and
// from 127.0.0.1), isolation between networks, and an embedded DNS server per
// network that resolves container names and aliases and forwards the rest to
// the host's resolvers.
//
// Everything lives in Settings.StateDir: one state file (networks, endpoints,
// allocations) replaced atomically and changed only under a file lock, so
// that several berth processes can connect and disconnect containers at once.
// Host objects are named from Settings.Prefix (bridges <Prefix>0, <Prefix>1…,
// host veth ends <Prefix>v…, the nftables table <Prefix>), so that two
// independent berth installations, or tests, can share a host.
//
// The nftables table is rebuilt as a whole, in one atomic transaction, from
// the state after every change; the ruleset is described in nft_linux.go.
package network
