// Package network connects containers to bridge networks, as netavark and
// aardvark-dns do for Podman: a Linux bridge per network with the gateway
// address, a veth pair per container endpoint, addresses from a file-locked
// IPAM that survives process death, outbound NAT and published ports with
// nftables (reachable from other hosts, from the host's own addresses and
// from 127.0.0.1), isolation between networks, and an embedded DNS server per
// network that resolves container names and aliases and forwards the rest to
// the host's resolvers.
//
// A Service (SetService) is a virtual address on a network, as a Kubernetes
// ClusterIP or a swarm VIP: its VIP comes from the network's subnet and is
// never given to a container; connections to VIP:Port, and to the host's
// HostPort, are spread by nftables (numgen random over a map of the
// backends, as kube-proxy's nftables mode does) to the backends' addresses,
// with no user-space proxy. With no backend they are refused at once or,
// for TCP with an Activator port, redirected there to be held while a
// replica starts (ServiceFor tells what such a connection was for). Named
// nftables counters count each service's requests before any NAT
// (ServiceCounts). The network's DNS server answers the service's name
// (also NAME.NAMESPACE.svc and NAME.NAMESPACE.svc.cluster.local) with the
// VIP while it has a backend, and tasks.NAME with the backends' own
// addresses. Services live in the same state file as endpoints; a
// container that disconnects leaves every service on that network.
//
// Everything lives in Settings.StateDir: one state file (networks, endpoints,
// services, allocations) replaced atomically and changed only under a file lock, so
// that several berth processes can connect and disconnect containers at once.
// Host objects are named from Settings.Prefix (bridges <Prefix>0, <Prefix>1…,
// host veth ends <Prefix>v…, the nftables table <Prefix>), so that two
// independent berth installations, or tests, can share a host.
//
// The nftables table is rebuilt as a whole, in one atomic transaction, from
// the state after every change (endpoints or services); the ruleset is
// described in nft_linux.go.
package network
