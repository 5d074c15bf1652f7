package network

import (
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// regNum holds the random number that picks a backend.
const regNum = 3

// svcTarget is a service as the rules see it.
type svcTarget struct {
	bridge    string
	vip       netip.Addr
	ports     []ServicePort
	backends  []netip.Addr // connected ones only
	affinity  bool
	activator uint16
}

// serviceTargets returns every service, on active networks or not: one
// without backends still rejects at its VIP and host ports.
func (st *state) serviceTargets() []svcTarget {
	var out []svcTarget
	for _, s := range st.Services {
		n := st.network(s.Network)
		if n == nil {
			continue
		}
		out = append(out, svcTarget{bridge: n.Bridge, vip: s.VIP, ports: s.Ports, backends: st.backendAddrs(s),
			affinity: s.ClientAffinity, activator: s.Activator})
	}
	return out
}

// natChain and rejectChain name a service's own chains: what its backends
// change lives there and nowhere else, so that a change of backends
// rewrites those two chains and leaves the rest of the table alone.
func (s svcTarget) natChain() string    { return "svc-" + s.vip.String() }
func (s svcTarget) rejectChain() string { return "svc-" + s.vip.String() + "-reject" }

// ruleFunc appends a rule made of exprs to a chain.
type ruleFunc func(ch *nftables.Chain, exprs ...[]expr.Any)

// serviceChains are the chains service rules go in.
type serviceChains struct {
	input, prerouting, output, hostports *nftables.Chain
}

// serviceDispatch adds the rules that send a service's traffic to its own
// chains; they depend on its addresses and ports only, and must come
// before the jumps to hostports in prerouting and output. See the ruleset
// in nft_linux.go.
func serviceDispatch(rule ruleFunc, ch serviceChains, s svcTarget) {
	vip := ipAddr(ipHdrDst, netip.PrefixFrom(s.vip, 32))
	rule(ch.input, vip, jump(s.rejectChain()))
	for _, p := range s.ports {
		if p.HostPort != 0 {
			rule(ch.input, hostAddr(p), l4port(p.Protocol, p.HostPort), jump(s.rejectChain()))
			rule(ch.hostports, hostAddr(p), l4port(p.Protocol, p.HostPort), jump(s.natChain()))
		}
	}
	rule(ch.prerouting, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, s.bridge), vip, jump(s.natChain()))
	rule(ch.output, vip, jump(s.natChain()))
	// The VIP is a host address: keep the host's own services and
	// containers' published ports off it.
	rule(ch.prerouting, vip, verdict(expr.VerdictAccept))
	rule(ch.output, vip, verdict(expr.VerdictAccept))
	rule(ch.input, ctNew(), vip, verdict(expr.VerdictDrop))
}

// serviceChainRules fills a service's own chains: with backends, its nat
// chain balances its VIP's ports and then its host ports; without, its
// reject chain refuses new connections to both, and with an activator its
// nat chain redirects TCP to it instead.
func serviceChainRules(c *nftables.Conn, t *nftables.Table, rule ruleFunc, s svcTarget) error {
	nat := &nftables.Chain{Table: t, Name: s.natChain()}
	rej := &nftables.Chain{Table: t, Name: s.rejectChain()}
	vip := ipAddr(ipHdrDst, netip.PrefixFrom(s.vip, 32))
	if len(s.backends) == 0 {
		held := func(p ServicePort) bool { return s.activator != 0 && p.Protocol == "tcp" }
		for _, p := range s.ports {
			if held(p) {
				rule(nat, vip, l4port(p.Protocol, p.Port), redirect(s.activator))
				continue
			}
			rule(rej, ctNew(), vip, l4port(p.Protocol, p.Port), reject(p.Protocol))
			if p.HostPort != 0 {
				rule(rej, ctNew(), hostAddr(p), l4port(p.Protocol, p.HostPort), reject(p.Protocol))
			}
		}
		if s.activator == 0 {
			return nil
		}
		rule(nat, vip, verdict(expr.VerdictReturn))
		for _, p := range s.ports {
			if held(p) && p.HostPort != 0 {
				rule(nat, hostAddr(p), l4port(p.Protocol, p.HostPort), redirect(s.activator))
			}
		}
		return nil
	}
	// An anonymous map is bound to one rule: each rule gets its own.
	for _, p := range s.ports {
		to, err := loadBalance(c, t, s, p.TargetPort)
		if err != nil {
			return err
		}
		rule(nat, vip, l4port(p.Protocol, p.Port), to)
	}
	// Jumps from prerouting and output stop here: a VIP's ports are its
	// only ones.
	rule(nat, vip, verdict(expr.VerdictReturn))
	for _, p := range s.ports {
		if p.HostPort == 0 {
			continue
		}
		to, err := loadBalance(c, t, s, p.TargetPort)
		if err != nil {
			return err
		}
		rule(nat, hostAddr(p), l4port(p.Protocol, p.HostPort), to)
	}
	return nil
}

// activatorGuards drops what reaches an activator's port without having
// been redirected there (a redirect is a DNAT to conntrack): one rule per
// port in the input chain.
func activatorGuards(rule ruleFunc, input *nftables.Chain, svcs []svcTarget) {
	var ports []uint16
	for _, s := range svcs {
		if s.activator != 0 && !slices.Contains(ports, s.activator) {
			ports = append(ports, s.activator)
		}
	}
	slices.Sort(ports)
	for _, port := range ports {
		rule(input, l4port("tcp", port), ctStatusDNAT(expr.CmpOpEq), verdict(expr.VerdictDrop))
	}
}

// redirect sends a connection to port on the address it arrived on, or
// 127.0.0.1 from the host itself.
func redirect(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: regPort, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Redir{RegisterProtoMin: regPort},
	}
}

// hostAddr matches a published port's host address, if it has one.
func hostAddr(p ServicePort) []expr.Any {
	if !p.HostIP.IsValid() {
		return nil
	}
	return ipAddr(ipHdrDst, netip.PrefixFrom(p.HostIP, 32))
}

// loadBalance DNATs to one of s's backends, port, picked at random or,
// with affinity, by a hash of the client's address:
// numgen random mod N map { 0 : IP0, 1 : IP1, … } → dnat to IP:port, or
// jhash ip saddr mod N map { … }.
func loadBalance(c *nftables.Conn, t *nftables.Table, s svcTarget, port uint16) ([]expr.Any, error) {
	set := &nftables.Set{Table: t, Anonymous: true, Constant: true, IsMap: true,
		KeyType: nftables.TypeInteger, DataType: nftables.TypeIPAddr}
	elems := make([]nftables.SetElement, len(s.backends))
	for i, ip := range s.backends {
		a := ip.As4()
		elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: a[:]}
	}
	if err := c.AddSet(set, elems); err != nil {
		return nil, err
	}
	n := uint32(len(s.backends))
	pick := []expr.Any{&expr.Numgen{Register: regNum, Modulus: n, Type: unix.NFT_NG_RANDOM}}
	if s.affinity {
		pick = []expr.Any{
			&expr.Payload{DestRegister: regNum, Base: expr.PayloadBaseNetworkHeader, Offset: ipHdrSrc, Len: 4},
			&expr.Hash{SourceRegister: regNum, DestRegister: regNum, Length: 4, Modulus: n, Type: expr.HashTypeJenkins},
		}
	}
	return append(pick,
		&expr.Lookup{SourceRegister: regNum, DestRegister: regAddr, IsDestRegSet: true, SetName: set.Name, SetID: set.ID},
		&expr.Immediate{Register: regPort, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: regAddr, RegProtoMin: regPort, Specified: true},
	), nil
}

// ctNew matches the first packet of a connection: replies to the host's
// own connections (from the VIP, or from a host port) must pass.
func ctNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// reject refuses at once: a TCP reset, or ICMP port unreachable for UDP.
func reject(proto string) []expr.Any {
	if proto == "udp" {
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}} // ICMP_PORT_UNREACH
	}
	return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}
}
