package network

import (
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// regNum holds the random number that picks a backend.
const regNum = 3

// svcTarget is a service as the rules see it.
type svcTarget struct {
	bridge   string
	vip      netip.Addr
	ports    []ServicePort
	backends []netip.Addr // connected ones only
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
		out = append(out, svcTarget{bridge: n.Bridge, vip: s.VIP, ports: s.Ports, backends: st.backendAddrs(s)})
	}
	return out
}

// ruleFunc appends a rule made of exprs to a chain.
type ruleFunc func(ch *nftables.Chain, exprs ...[]expr.Any)

// serviceChains are the chains service rules go in.
type serviceChains struct {
	input, prerouting, output, hostports *nftables.Chain
}

// serviceRules adds the rules of svcs; they must come before the jumps to
// hostports in prerouting and output. See the ruleset in nft_linux.go.
func serviceRules(c *nftables.Conn, t *nftables.Table, rule ruleFunc, ch serviceChains, svcs []svcTarget) error {
	for _, s := range svcs {
		vip := ipAddr(ipHdrDst, netip.PrefixFrom(s.vip, 32))
		for _, p := range s.ports {
			var host []expr.Any
			if p.HostIP.IsValid() {
				host = ipAddr(ipHdrDst, netip.PrefixFrom(p.HostIP, 32))
			}
			if len(s.backends) == 0 {
				rule(ch.input, ctNew(), vip, l4port(p.Protocol, p.Port), reject(p.Protocol))
				if p.HostPort != 0 {
					rule(ch.input, ctNew(), host, l4port(p.Protocol, p.HostPort), reject(p.Protocol))
				}
				continue
			}
			// An anonymous map is bound to one rule: each rule gets its own.
			lb := func() ([]expr.Any, error) { return loadBalance(c, t, s.backends, p.TargetPort) }
			to, err := lb()
			if err != nil {
				return err
			}
			rule(ch.prerouting, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, s.bridge), vip, l4port(p.Protocol, p.Port), to)
			if to, err = lb(); err != nil {
				return err
			}
			rule(ch.output, vip, l4port(p.Protocol, p.Port), to)
			if p.HostPort != 0 {
				if to, err = lb(); err != nil {
					return err
				}
				rule(ch.hostports, host, l4port(p.Protocol, p.HostPort), to)
			}
		}
		// The VIP is a host address: keep the host's own services and
		// containers' published ports off it.
		rule(ch.prerouting, vip, verdict(expr.VerdictAccept))
		rule(ch.output, vip, verdict(expr.VerdictAccept))
		rule(ch.input, ctNew(), vip, verdict(expr.VerdictDrop))
	}
	return nil
}

// loadBalance DNATs to one of backends, port, picked at random:
// numgen random mod N map { 0 : IP0, 1 : IP1, … } → dnat to IP:port.
func loadBalance(c *nftables.Conn, t *nftables.Table, backends []netip.Addr, port uint16) ([]expr.Any, error) {
	set := &nftables.Set{Table: t, Anonymous: true, Constant: true, IsMap: true,
		KeyType: nftables.TypeInteger, DataType: nftables.TypeIPAddr}
	elems := make([]nftables.SetElement, len(backends))
	for i, ip := range backends {
		a := ip.As4()
		elems[i] = nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(i)), Val: a[:]}
	}
	if err := c.AddSet(set, elems); err != nil {
		return nil, err
	}
	return []expr.Any{
		&expr.Numgen{Register: regNum, Modulus: uint32(len(backends)), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: regNum, DestRegister: regAddr, IsDestRegSet: true, SetName: set.Name, SetID: set.ID},
		&expr.Immediate{Register: regPort, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: regAddr, RegProtoMin: regPort, Specified: true},
	}, nil
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
