package network

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ipsSeenReply is conntrack's IPS_SEEN_REPLY.
const ipsSeenReply = 1 << 1

// counterName names a service's request counter, a named counter object
// of the table.
func (s svcTarget) counterName() string { return "svc-" + s.vip.String() + "-requests" }

// countRules adds the services' request counters and the chains that count
// into them. The chains hook in at priority mangle, before the NAT
// chains, so that they see every client packet with the address and port
// the client gave: count-prerouting what comes from elsewhere and
// count-output the host's own (which comes back through lo, to be seen in
// prerouting again). They depend on the services' addresses and ports
// only, not on their backends: counts go on through backend changes, and
// start from 0 when the table is made anew.
func countRules(c *nftables.Conn, t *nftables.Table, rule ruleFunc, svcs []svcTarget) {
	if len(svcs) == 0 {
		return
	}
	accept := nftables.ChainPolicyAccept
	pre := c.AddChain(&nftables.Chain{Name: "count-prerouting", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityMangle, Policy: &accept})
	out := c.AddChain(&nftables.Chain{Name: "count-output", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityMangle, Policy: &accept})
	count := c.AddChain(&nftables.Chain{Name: "count", Table: t})
	rule(pre, ifname(unix.NFT_META_IIFNAME, expr.CmpOpNeq, "lo"), jump(count.Name))
	rule(out, jump(count.Name))

	local := []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
	for _, s := range svcs {
		c.AddObj(&nftables.CounterObj{Table: t, Name: s.counterName()})
		to := []expr.Any{&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: s.counterName()}}
		vip := ipAddr(ipHdrDst, netip.PrefixFrom(s.vip, 32))
		for _, p := range s.ports {
			rule(count, ctOriginal(), vip, l4port(p.Protocol, p.Port), isRequest(p.Protocol), to)
			if p.HostPort != 0 {
				rule(count, ctOriginal(), local, hostAddr(p), l4port(p.Protocol, p.HostPort), isRequest(p.Protocol), to)
			}
		}
	}
}

// ctOriginal matches packets from the side that opened the connection:
// the client's.
func ctOriginal() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0}}, // IP_CT_DIR_ORIGINAL
	}
}

// ctSeenReply matches connections that were answered: a packet forged
// without a connection behind it (nor one the filter drops) counts for
// nothing, and cannot scale a service up or keep it awake.
func ctSeenReply() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsSeenReply), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// isRequest matches what counts as a request: a TCP segment with PSH set
// (the last of a write: "tcp flags & psh != 0") on a connection that was
// answered, or any UDP datagram (a flow's first comes before any answer).
func isRequest(proto string) []expr.Any {
	if proto == "udp" {
		return nil
	}
	return append(ctSeenReply(),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x08}, Xor: []byte{0}}, // PSH
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0}},
	)
}

// counters returns the packets of the counter objects of table t, by
// name: none if it does not exist.
func counters(t *nftables.Table) (map[string]uint64, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, err
	}
	objs, err := c.GetObjects(t)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return nil, err
	}
	out := map[string]uint64{}
	for _, o := range objs {
		if co, ok := o.(*nftables.CounterObj); ok {
			out[co.Name] = co.Packets
		}
	}
	return out, nil
}

// ServiceCounts returns the counts of every service, by network and name.
// A service whose counter the table lacks (no table: it was deleted behind
// berth's back) counts 0.
func (m *Manager) ServiceCounts(ctx context.Context) ([]ServiceCount, error) {
	st, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := counters(m.table())
	if err != nil {
		return nil, fmt.Errorf("service counts: nftables table %s: %w", m.s.Prefix, err)
	}
	out := make([]ServiceCount, 0, len(st.Services))
	for _, s := range st.Services {
		name := svcTarget{vip: s.VIP}.counterName()
		out = append(out, ServiceCount{Network: s.Network, Name: s.Name, Requests: counts[name]})
	}
	slices.SortFunc(out, func(a, b ServiceCount) int {
		return cmp.Or(cmp.Compare(a.Network, b.Network), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}
