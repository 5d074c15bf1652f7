package network

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The table "ip <Prefix>" holds every rule berth needs, made from the state
// in one transaction whenever endpoints or services change (see
// applyRules), and deleted when no network has endpoints and there are no services. For
// active networks (bridge B, subnet S) and services (on bridge B, address
// VIP, ports P → backends' TP, host ports HP):
//
//	chain forward { type filter hook forward priority filter
//	    iifname B oifname != B drop             # internal networks only
//	    oifname B iifname != B drop             # internal networks only
//	    ct status dnat accept                   # published ports, from anywhere
//	    iifname B oifname != B jump isolate     # every network
//	}
//	chain isolate { oifname B drop }            # per network: no traffic between networks
//	chain input { type filter hook input priority filter
//	    iifname != B iifname != lo ip daddr GATEWAY tcp|udp dport 53 drop # per network with DNS
//	    tcp dport A ct status & dnat == 0 drop  # per activator port: redirected connections only
//	    ip daddr VIP jump svc-VIP-reject        # per service
//	    [ip daddr HOSTIP] tcp dport HP jump svc-VIP-reject # per service host port
//	    ct state new ip daddr VIP drop }        # per service: nothing else of the host on a VIP
//	chain prerouting { type nat hook prerouting priority dstnat
//	    iifname B ip daddr VIP jump svc-VIP     # per service
//	    ip daddr VIP accept                     # per service
//	    fib daddr type local jump hostports }
//	chain output { type nat hook output priority dstnat
//	    ip daddr VIP jump svc-VIP               # as in prerouting, from any interface
//	    ip daddr VIP accept
//	    fib daddr type local jump hostports }   # the host's own connections, 127.0.0.1 too
//	chain hostports {
//	    [ip daddr HOSTIP] tcp dport HP jump svc-VIP # per service host port
//	    [ip daddr HOSTIP] tcp dport P dnat to IP:CP } # per published port of a container
//	chain svc-VIP {                             # per service with backends:
//	    ip daddr VIP tcp dport P dnat to numgen random mod N map { 0 : IP0, 1 : IP1, … } : TP
//	    ip daddr VIP return
//	    [ip daddr HOSTIP] tcp dport HP dnat to numgen random mod N map { … } : TP }
//	chain svc-VIP {                             # per service without backends, with activator port A:
//	    ip daddr VIP tcp dport P redirect to :A
//	    ip daddr VIP return
//	    [ip daddr HOSTIP] tcp dport HP redirect to :A }
//	chain svc-VIP-reject {                      # per service without backends (with an activator: udp only):
//	    ct state new ip daddr VIP tcp dport P reject with tcp reset
//	    ct state new [ip daddr HOSTIP] tcp dport HP reject … } # (udp: icmp port-unreachable)
//	counter svc-VIP-requests                    # per service
//	chain count-prerouting { type filter hook prerouting priority mangle
//	    iifname != lo jump count }              # what comes through lo was counted in output
//	chain count-output { type filter hook output priority mangle
//	    jump count }
//	chain count {                               # per service port: PSH segments, every UDP datagram
//	    ct direction original ip daddr VIP tcp dport P tcp flags & psh != 0 counter name svc-VIP-requests
//	    ct direction original fib daddr type local [ip daddr HOSTIP] tcp dport HP tcp flags & psh != 0 counter name svc-VIP-requests }
//	chain postrouting { type nat hook postrouting priority srcnat
//	    oifname B ip saddr 127.0.0.0/8 masquerade      # 127.0.0.1 → published port
//	    oifname B ip saddr S ct status dnat masquerade # hairpin
//	    ip saddr S oifname != B masquerade }           # outbound, non-internal networks
//
// A connection to 127.0.0.1:P is rewritten in the output chain to the
// container's address; rerouted through the bridge it keeps source
// 127.0.0.1, which the kernel allows only with route_localnet on the bridge,
// and postrouting masquerades it to the gateway address so that the
// container's reply comes back to the host (and conntrack turns it back into
// 127.0.0.1:P → 127.0.0.1).
//
// A service's VIP is a /32 address of its network's bridge, so that it
// answers ARP; a connection to it from a container on B is DNATed in
// prerouting, and from the host in output, to a backend picked by numgen
// (as kube-proxy's nftables mode does; each rule has its own anonymous map,
// which the kernel binds to one rule). Everything that a service's
// backends decide is in its two own chains, so that a change of backends
// (the frequent change: readiness, scaling, rollouts) rewrites two chains
// rather than the table. A backend on the same bridge would
// answer the client directly, bypassing conntrack, so the hairpin masquerade
// rule (ct status dnat, out through B) covers every client on B, the
// backend itself included. Containers of other networks do not match the
// iifname, find the VIP accepted un-NATed and dropped in input. With no
// backend the VIP's ports and host ports reject new connections at once
// rather than let them time out; "ct state new" lets through the replies to
// the host's own connections, which may have the VIP as their source.
//
// A service with an activator port and no backend redirects its TCP
// connections there instead (redirect: to the primary address of the
// interface they came in on, or 127.0.0.1 from the host), so that the
// process listening there (it reads SO_ORIGINAL_DST and asks ServiceFor)
// holds them while a replica starts; a redirect is a DNAT to conntrack, and
// the input chain drops what reaches the port without one. The guard and
// the counters depend on a service's ports and activator only, not its
// backends: going from 0 backends to 1 rewrites the service's two chains,
// and the counts go on. The count chains see each client packet before
// any NAT (priority mangle, before dstnat), with the address and port the
// client used, so that connections held by the activator count too; a
// table made anew starts them from 0.

const (
	regAddr  = 1
	regPort  = 2
	ipsDNAT  = 0x20 // IPS_DST_NAT
	ipHdrSrc = 12
	ipHdrDst = 16
)

type activeNet struct {
	n   *Network
	eps []*endpoint
}

// active returns the networks with endpoints, by bridge name.
func (st *state) active() []activeNet {
	var out []activeNet
	for _, n := range st.Networks {
		if eps := st.endpointsOf(n.Name); len(eps) > 0 {
			out = append(out, activeNet{n, eps})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n.Bridge < out[j].n.Bridge })
	return out
}

// rulesLayout changes whenever buildRules lays the table out differently,
// so that a table an older berth made is replaced whole.
const rulesLayout = "services-in-own-chains, counted, activators"

// applyRules makes the nftables table the one st needs, or deletes it if
// no network has endpoints and there are no services. When only services'
// backends changed since st.Rules was applied, it rewrites just those
// services' chains (a table of a hundred services takes tens of
// milliseconds to replace, a few chains under one); otherwise, or if that
// fails, it replaces the table. Either is one transaction.
func (m *Manager) applyRules(st *state) error {
	st.touched = true
	nets, svcs := st.active(), st.serviceTargets()
	want := planRules(nets, svcs)
	err := errStale
	if old := st.Rules; old != nil && old.Base == want.Base {
		var changed []svcTarget
		for _, s := range svcs {
			if k := s.vip.String(); old.Services[k] != want.Services[k] {
				changed = append(changed, s)
			}
		}
		err = m.replaceServiceChains(changed)
	}
	if err != nil {
		err = m.replaceTable(nets, svcs)
	}
	if err != nil {
		st.Rules = nil
		return fmt.Errorf("nftables table %s: %w", m.s.Prefix, err)
	}
	st.Rules = want
	return nil
}

// errStale says the table must be replaced whole.
var errStale = errors.New("table layout changed")

// planRules fingerprints the table that nets and svcs need.
func planRules(nets []activeNet, svcs []svcTarget) *rulePlan {
	p := &rulePlan{}
	if len(nets) == 0 && len(svcs) == 0 {
		return p
	}
	base := sha256.New()
	fmt.Fprintln(base, rulesLayout)
	for _, a := range nets {
		fmt.Fprintln(base, a.n.Bridge, a.n.Internal, a.n.DNS, a.n.Gateway, a.n.Subnet)
		for _, e := range a.eps {
			if len(e.Ports) > 0 { // the others have no rules
				fmt.Fprintln(base, e.IP, e.Ports)
			}
		}
	}
	p.Services = make(map[string]string, len(svcs))
	for _, s := range svcs {
		fmt.Fprintln(base, s.bridge, s.vip, s.ports, s.activator) // the counters and activator guards
		own := sha256.Sum256(fmt.Append(nil, s.ports, s.backends, s.affinity, s.activator))
		p.Services[s.vip.String()] = hex.EncodeToString(own[:8])
	}
	p.Base = hex.EncodeToString(base.Sum(nil)[:8])
	return p
}

// replaceTable deletes the table and, if nets or svcs need one, makes it
// anew, in one transaction.
func (m *Manager) replaceTable(nets []activeNet, svcs []svcTarget) error {
	c, err := nftables.New(nftables.WithSockOptions(batchBuffers))
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := m.table()
	// Adding first makes the deletion succeed whether or not the table
	// exists.
	c.AddTable(t)
	c.DelTable(t)
	if len(nets) > 0 || len(svcs) > 0 {
		c.AddTable(t)
		if err := buildRules(c, t, nets, svcs); err != nil {
			return err
		}
	}
	return c.Flush()
}

// replaceServiceChains rewrites the own chains of svcs in one transaction;
// it fails if one is missing.
func (m *Manager) replaceServiceChains(svcs []svcTarget) error {
	if len(svcs) == 0 {
		return nil
	}
	c, err := nftables.New(nftables.WithSockOptions(batchBuffers))
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := m.table()
	for _, s := range svcs {
		c.FlushChain(&nftables.Chain{Table: t, Name: s.natChain()})
		c.FlushChain(&nftables.Chain{Table: t, Name: s.rejectChain()})
		if err := serviceChainRules(c, t, addRule(c, t), s); err != nil {
			return err
		}
	}
	return c.Flush()
}

func (m *Manager) table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyIPv4, Name: m.s.Prefix}
}

// addRule returns a ruleFunc that adds to t in c's transaction.
func addRule(c *nftables.Conn, t *nftables.Table) ruleFunc {
	return func(ch *nftables.Chain, exprs ...[]expr.Any) {
		var all []expr.Any
		for _, e := range exprs {
			all = append(all, e...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: all})
	}
}

// batchBufferSize bounds the netlink buffers of a transaction: the whole
// batch is one sendmsg, and the kernel acknowledges every message of it
// before any is read. A table with a hundred services has a few thousand
// messages (some hundred bytes each, a few hundred of receive buffer per
// acknowledgement). The buffers are limits, not allocations.
const batchBufferSize = 64 << 20

// batchBuffers raises the socket's buffers past the wmem_max and rmem_max
// limits if it may (that needs CAP_NET_ADMIN, as nftables does), and up to
// them otherwise.
func batchBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var rerr, werr error
	if err := rc.Control(func(fd uintptr) {
		rerr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, batchBufferSize)
		werr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, batchBufferSize)
	}); err != nil {
		return err
	}
	if rerr != nil {
		if err := c.SetReadBuffer(batchBufferSize); err != nil {
			return err
		}
	}
	if werr != nil {
		return c.SetWriteBuffer(batchBufferSize)
	}
	return nil
}

// deleteTable removes the table if it exists.
func deleteTable(prefix string) error {
	return (&Manager{s: Settings{Prefix: prefix}}).applyRules(&state{})
}

func buildRules(c *nftables.Conn, t *nftables.Table, nets []activeNet, svcs []svcTarget) error {
	accept := nftables.ChainPolicyAccept
	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept})
	}
	forward := base("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	isolate := c.AddChain(&nftables.Chain{Name: "isolate", Table: t})
	input := base("input", nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter)
	hostports := c.AddChain(&nftables.Chain{Name: "hostports", Table: t})
	prerouting := base("prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	output := base("output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	postrouting := base("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	for _, s := range svcs {
		c.AddChain(&nftables.Chain{Name: s.natChain(), Table: t})
		c.AddChain(&nftables.Chain{Name: s.rejectChain(), Table: t})
	}
	rule := addRule(c, t)

	for _, a := range nets {
		if a.n.Internal {
			rule(forward, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, a.n.Bridge), ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, a.n.Bridge), verdict(expr.VerdictDrop))
			rule(forward, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, a.n.Bridge), ifname(unix.NFT_META_IIFNAME, expr.CmpOpNeq, a.n.Bridge), verdict(expr.VerdictDrop))
		}
	}
	rule(forward, ctStatusDNAT(expr.CmpOpNeq), verdict(expr.VerdictAccept))
	for _, a := range nets {
		rule(forward, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, a.n.Bridge), ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, a.n.Bridge), jump(isolate.Name))
		rule(isolate, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, a.n.Bridge), verdict(expr.VerdictDrop))
	}

	// A network's DNS server answers its own containers (and the host), not
	// those of other networks.
	for _, a := range nets {
		if !a.n.DNS {
			continue
		}
		for _, proto := range []string{"tcp", "udp"} {
			rule(input, ifname(unix.NFT_META_IIFNAME, expr.CmpOpNeq, a.n.Bridge), ifname(unix.NFT_META_IIFNAME, expr.CmpOpNeq, "lo"),
				ipAddr(ipHdrDst, netip.PrefixFrom(a.n.Gateway, 32)), l4port(proto, 53), verdict(expr.VerdictDrop))
		}
	}

	activatorGuards(rule, input, svcs)
	countRules(c, t, rule, svcs)
	sc := serviceChains{input: input, prerouting: prerouting, output: output, hostports: hostports}
	for _, s := range svcs {
		serviceDispatch(rule, sc, s)
		if err := serviceChainRules(c, t, rule, s); err != nil {
			return err
		}
	}
	local := []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
	rule(prerouting, local, jump(hostports.Name))
	rule(output, local, jump(hostports.Name))
	for _, a := range nets {
		for _, e := range a.eps {
			for _, p := range e.Ports {
				var match []expr.Any
				if p.HostIP.IsValid() {
					match = ipAddr(ipHdrDst, netip.PrefixFrom(p.HostIP, 32))
				}
				rule(hostports, match, l4port(p.Protocol, p.HostPort), dnat(e.IP, p.ContainerPort))
			}
		}
	}

	loopback := netip.MustParsePrefix("127.0.0.0/8")
	for _, a := range nets {
		br := a.n.Bridge
		rule(postrouting, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, br), ipAddr(ipHdrSrc, loopback), masq())
		rule(postrouting, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, br), ipAddr(ipHdrSrc, a.n.Subnet), ctStatusDNAT(expr.CmpOpNeq), masq())
		if !a.n.Internal {
			rule(postrouting, ipAddr(ipHdrSrc, a.n.Subnet), ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, br), masq())
		}
	}
	return nil
}

// ifname matches the input or output interface's name.
func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: append([]byte(name), 0)},
	}
}

// ipAddr matches the IPv4 source or destination address against p.
func ipAddr(offset uint32, p netip.Prefix) []expr.Any {
	addr := p.Masked().Addr().As4()
	out := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if p.Bits() < 32 {
		mask := make([]byte, 4)
		binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]})
}

// l4port matches protocol and destination port.
func l4port(proto string, port uint16) []expr.Any {
	p := byte(unix.IPPROTO_TCP)
	if proto == "udp" {
		p = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// ctStatusDNAT matches, with CmpOpNeq, connections whose destination was
// rewritten (DNAT or redirect); with CmpOpEq the others.
func ctStatusDNAT(op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsDNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: make([]byte, 4)},
	}
}

func dnat(ip netip.Addr, port uint16) []expr.Any {
	a := ip.As4()
	return []expr.Any{
		&expr.Immediate{Register: regAddr, Data: a[:]},
		&expr.Immediate{Register: regPort, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: regAddr, RegProtoMin: regPort, Specified: true},
	}
}

func masq() []expr.Any { return []expr.Any{&expr.Masq{}} }

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func jump(chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}
}
