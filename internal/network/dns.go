package network

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// dnsTTL is the time to live of the embedded server's answers, as
// aardvark-dns's.
const dnsTTL = 60

// resolver answers for the containers of one network and forwards the rest
// to upstream servers.
type resolver struct {
	mu    sync.RWMutex
	names map[string][]netip.Addr // lower-case name without the final dot
	ptrs  map[string][]string     // reverse name (with final dot) → names
	// peers are the names on the other networks of the container at each
	// address of this network.
	peers     map[netip.Addr][]map[string][]netip.Addr
	upstreams []string // host:port
	timeout   time.Duration

	// With stateFile set, records follow the state file: every query and
	// refresh checks whether it was replaced.
	network   string
	stateFile string
	read      func() (*state, error)
	refreshMu sync.Mutex
	last      os.FileInfo
	endpoints int
}

// refresh reloads the records if the state file changed and returns the
// number of the network's endpoints.
func (r *resolver) refresh() int {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	fi, err := os.Stat(r.stateFile)
	if err != nil || r.last != nil && os.SameFile(fi, r.last) && fi.ModTime().Equal(r.last.ModTime()) {
		return r.endpoints
	}
	st, err := r.read()
	if err != nil {
		return r.endpoints
	}
	r.last = fi
	eps := st.endpointsOf(r.network)
	names, ptrs := records(r.network, eps)
	serviceRecords(st, r.network, names)
	r.mu.Lock()
	r.names, r.ptrs = names, ptrs
	r.mu.Unlock()
	r.setPeers(st, eps)
	r.endpoints = len(eps)
	return r.endpoints
}

// setPeers records, for each container on this network that is on other
// networks too, the names on those: as with Docker, a container resolves
// every container it shares a network with, whichever network's server it
// asks.
func (r *resolver) setPeers(st *state, eps []*endpoint) {
	byNet := map[string]map[string][]netip.Addr{}
	peers := map[netip.Addr][]map[string][]netip.Addr{}
	for _, e := range eps {
		for _, other := range st.Endpoints {
			if other.ContainerID != e.ContainerID || other.Network == r.network {
				continue
			}
			if byNet[other.Network] == nil {
				byNet[other.Network], _ = records(other.Network, st.endpointsOf(other.Network))
			}
			peers[e.IP] = append(peers[e.IP], byNet[other.Network])
		}
	}
	r.mu.Lock()
	r.peers = peers
	r.mu.Unlock()
}

// setEndpoints replaces the records with those of eps.
func (r *resolver) setEndpoints(network string, eps []*endpoint) {
	names, ptrs := records(network, eps)
	r.mu.Lock()
	r.names, r.ptrs = names, ptrs
	r.mu.Unlock()
}

// records are the names of the endpoints eps of network: each container's
// name, aliases and short ID, alone and followed by ".<network>", and the
// reverse names of their addresses.
func records(network string, eps []*endpoint) (map[string][]netip.Addr, map[string][]string) {
	names := map[string][]netip.Addr{}
	ptrs := map[string][]string{}
	for _, e := range eps {
		var all []string
		if e.Name != "" {
			all = append(all, e.Name)
		}
		all = append(all, e.Aliases...)
		if len(e.ContainerID) >= 12 {
			all = append(all, e.ContainerID[:12])
		}
		for _, n := range all {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			for _, k := range []string{n, n + "." + strings.ToLower(network)} {
				if !containsAddr(names[k], e.IP) {
					names[k] = append(names[k], e.IP)
				}
			}
		}
		if e.Name != "" {
			rev, err := dns.ReverseAddr(e.IP.String())
			if err == nil {
				ptrs[rev] = append(ptrs[rev], dns.Fqdn(e.Name))
			}
		}
	}
	return names, ptrs
}

// serviceRecords adds the names of a network's services to names: NAME,
// NAME.NAMESPACE.svc and NAME.NAMESPACE.svc.cluster.local → the VIP, and
// tasks.NAME → the backends' own addresses. A service without backends
// keeps its names with no address: a name with no ready replica answers
// with no address, not with a dead one (nor with the host's resolvers') —
// unless an activator holds its connections (it scales from zero), when
// NAME answers with the VIP all the same.
func serviceRecords(st *state, network string, names map[string][]netip.Addr) {
	add := func(k string, addrs ...netip.Addr) {
		if _, ok := names[k]; !ok {
			names[k] = nil
		}
		for _, a := range addrs {
			if !containsAddr(names[k], a) {
				names[k] = append(names[k], a)
			}
		}
	}
	for _, s := range st.servicesOf(network) {
		backends := st.backendAddrs(s)
		name, ns := strings.ToLower(s.Name), strings.ToLower(s.Namespace)
		if ns == "" {
			ns = DefaultNamespace
		}
		for _, k := range []string{name, name + "." + ns + ".svc", name + "." + ns + ".svc.cluster.local"} {
			if len(backends) > 0 || s.Activator != 0 {
				add(k, s.VIP)
			} else {
				add(k)
			}
		}
		add("tasks."+name, backends...)
	}
}

func containsAddr(s []netip.Addr, a netip.Addr) bool {
	for _, b := range s {
		if a == b {
			return true
		}
	}
	return false
}

// setUpstreams reads the nameservers of a resolv.conf file. Loopback ones
// (a local caching resolver) are used only when there is nothing else:
// containers cannot reach them, but this server runs on the host and can.
func (r *resolver) setUpstreams(resolvConf string) {
	f, err := os.Open(resolvConf)
	if err != nil {
		return
	}
	defer f.Close()
	var remote, local []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil {
			continue
		}
		hp := netip.AddrPortFrom(a.Unmap(), 53).String()
		if a.IsLoopback() {
			local = append(local, hp)
		} else {
			remote = append(remote, hp)
		}
	}
	if len(remote) == 0 {
		remote = local
	}
	r.mu.Lock()
	r.upstreams = remote
	r.mu.Unlock()
}

// ServeDNS implements dns.Handler.
func (r *resolver) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		resp := new(dns.Msg).SetRcode(req, dns.RcodeNotImplemented)
		_ = w.WriteMsg(resp)
		return
	}
	if r.stateFile != "" {
		r.refresh()
	}
	q := req.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	r.mu.RLock()
	addrs, known := r.names[name]
	if !known {
		if client, ok := clientAddr(w); ok {
			for _, names := range r.peers[client] {
				if addrs, known = names[name]; known {
					break
				}
			}
		}
	}
	ptrs := r.ptrs[strings.ToLower(dns.Fqdn(q.Name))]
	upstreams := r.upstreams
	r.mu.RUnlock()
	if q.Qclass == dns.ClassINET && (known || len(ptrs) > 0 && q.Qtype == dns.TypePTR) {
		resp := new(dns.Msg).SetReply(req)
		resp.Authoritative, resp.RecursionAvailable = true, true
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: dnsTTL}
		switch {
		case q.Qtype == dns.TypePTR:
			hdr.Rrtype = dns.TypePTR
			for _, p := range ptrs {
				resp.Answer = append(resp.Answer, &dns.PTR{Hdr: hdr, Ptr: p})
			}
		case q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY:
			hdr.Rrtype = dns.TypeA
			for _, a := range addrs {
				resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
			}
		}
		// Other types of a known name: no data, rather than a forward that
		// would say the name does not exist.
		_ = w.WriteMsg(resp)
		return
	}
	r.forward(w, req, upstreams)
}

func (r *resolver) forward(w dns.ResponseWriter, req *dns.Msg, upstreams []string) {
	proto := "udp"
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	c := &dns.Client{Net: proto, Timeout: r.timeout}
	for _, up := range upstreams {
		resp, _, err := c.Exchange(req, up)
		if err == nil && resp != nil {
			resp.Id = req.Id
			_ = w.WriteMsg(resp)
			return
		}
	}
	resp := new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	resp.RecursionAvailable = true
	_ = w.WriteMsg(resp)
}

// clientAddr is the address a query came from.
func clientAddr(w dns.ResponseWriter) (netip.Addr, bool) {
	var ip net.IP
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	default:
		return netip.Addr{}, false
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr.Unmap(), ok
}
