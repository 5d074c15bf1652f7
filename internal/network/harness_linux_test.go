package network

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The test binary doubles as the DNS server process.
const (
	envDNSNetwork  = "BERTH_NETTEST_DNS"
	envDNSSettings = "BERTH_NETTEST_SETTINGS"
	envConnect     = "BERTH_NETTEST_CONNECT"
)

// connectJob is what a child process connects (see runConnectJob).
type connectJob struct {
	Settings dnsTestSettings
	Network  string
	NetNS    []string
	// Die makes the child kill itself with SIGKILL once connected.
	Die bool
}

func TestMain(m *testing.M) {
	if network := os.Getenv(envDNSNetwork); network != "" {
		var s dnsTestSettings
		if err := json.Unmarshal([]byte(os.Getenv(envDNSSettings)), &s); err != nil {
			os.Exit(2)
		}
		if err := ServeDNS(context.Background(), Settings{StateDir: s.StateDir, Prefix: s.Prefix, DefaultSubnet: s.DefaultSubnet}, network); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if job := os.Getenv(envConnect); job != "" {
		os.Exit(runConnectJob(job))
	}
	os.Exit(m.Run())
}

type dnsTestSettings struct {
	StateDir      string
	Prefix        string
	DefaultSubnet netip.Prefix
}

// testEnv is one test's networking world: its own prefix, state directory
// and subnets 10.<octet>.0.0/16 that no host route overlaps.
type testEnv struct {
	t      *testing.T
	s      Settings
	m      *Manager
	octet  int
	remote string // a netns that plays another host, see addRemote
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, veth pairs and nftables")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (Debian busybox-static)")
	}
}

// newEnv returns a test environment whose host objects are removed at the
// end of the test, and checked to be gone.
func newEnv(t *testing.T) *testEnv {
	t.Helper()
	requireRoot(t)
	env := &testEnv{t: t}
	routes, err := hostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	for tries := 0; ; tries++ {
		env.octet = 150 + rand.IntN(100)
		p := netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/16", env.octet))
		free := true
		for _, r := range routes {
			free = free && (r.dst.Bits() == 0 || !r.dst.Overlaps(p))
		}
		if free {
			break
		}
		if tries > 100 {
			t.Fatal("no free 10.x.0.0/16 for the test")
		}
	}
	env.s = Settings{
		StateDir:      t.TempDir(),
		Prefix:        fmt.Sprintf("bt%04x", rand.IntN(0x10000)),
		DefaultSubnet: env.subnet(0),
	}
	env.s.DNSCommand = dnsCommand(dnsTestSettings{env.s.StateDir, env.s.Prefix, env.s.DefaultSubnet})
	env.m, err = New(env.s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.cleanup)
	return env
}

// dnsCommand starts the test binary as a DNS server process.
func dnsCommand(s dnsTestSettings) func(network string) *exec.Cmd {
	return func(network string) *exec.Cmd {
		data, err := json.Marshal(s)
		if err != nil {
			panic(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envDNSNetwork+"="+network, envDNSSettings+"="+string(data))
		return cmd
	}
}

// runConnectJob is a child process that connects namespaces, each as the
// container named after its file, and exits (or dies).
func runConnectJob(data string) int {
	var job connectJob
	if err := json.Unmarshal([]byte(data), &job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s := job.Settings
	m, err := New(Settings{StateDir: s.StateDir, Prefix: s.Prefix, DefaultSubnet: s.DefaultSubnet, DNSCommand: dnsCommand(s)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, ns := range job.NetNS {
		name := filepath.Base(ns)
		if _, err := m.Connect(context.Background(), job.Network, Attach{ContainerID: name, Name: name, NetNS: ns}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if job.Die {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	return 0
}

// runChildren runs one child process per job at once and returns their
// errors.
func (env *testEnv) runChildren(jobs ...connectJob) []error {
	errs := make([]error, len(jobs))
	done := make(chan struct{})
	for i, job := range jobs {
		job.Settings = dnsTestSettings{env.s.StateDir, env.s.Prefix, env.s.DefaultSubnet}
		data, _ := json.Marshal(job)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envConnect+"="+string(data))
		go func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, out)
			}
			done <- struct{}{}
		}()
	}
	for range jobs {
		<-done
	}
	return errs
}

func (env *testEnv) subnet(i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", env.octet, i))
}

// networks creates networks of the given names on subnets 1, 2, ….
func (env *testEnv) networks(names ...string) {
	env.t.Helper()
	for i, name := range names {
		if _, err := env.m.Create(context.Background(), Network{Name: name, Subnet: env.subnet(i + 1)}); err != nil {
			env.t.Fatal(err)
		}
	}
}

// cleanup removes the services and disconnects what the test left
// connected, then fails the test if any host object with the prefix
// remains, and removes it.
func (env *testEnv) cleanup() {
	t := env.t
	ctx := context.Background()
	st, err := env.m.read()
	if err == nil {
		for _, s := range st.Services {
			if err := env.m.RemoveService(ctx, s.Network, s.Name); err != nil {
				t.Errorf("cleanup: remove service %s: %v", s.Name, err)
			}
		}
		for _, e := range st.Endpoints {
			if err := env.m.Disconnect(ctx, e.Network, e.ContainerID); err != nil {
				t.Errorf("cleanup: disconnect %s from %s: %v", e.ContainerID, e.Network, err)
			}
		}
	}
	if env.remote != "" {
		_ = removeLink(env.s.Prefix + "r")
	}
	// The kernel deletes the veth pairs of a removed namespace in the
	// background (see release): give it a moment.
	links := env.links()
	for deadline := time.Now().Add(3 * time.Second); len(links) > 0 && time.Now().Before(deadline); links = env.links() {
		time.Sleep(50 * time.Millisecond)
	}
	for _, l := range links {
		t.Errorf("link %s remains", l)
		_ = removeLink(l)
	}
	if env.tableExists() {
		t.Errorf("nftables table %s remains", env.s.Prefix)
		_ = deleteTable(env.s.Prefix)
	}
	pids, _ := filepath.Glob(filepath.Join(env.s.StateDir, "dns", "*.pid"))
	for _, p := range pids {
		if rec, ok := readPidFile(p); ok {
			t.Errorf("DNS server %d remains", rec.pid)
			_ = syscall.Kill(rec.pid, syscall.SIGKILL)
		}
	}
}

func (env *testEnv) links() []string {
	ls, err := dump(netlink.LinkList)
	if err != nil {
		env.t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		if strings.HasPrefix(l.Attrs().Name, env.s.Prefix) {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

func (env *testEnv) tableExists() bool {
	c, err := nftables.New()
	if err != nil {
		env.t.Fatal(err)
	}
	_, err = c.ListTableOfFamily(env.s.Prefix, nftables.TableFamilyIPv4)
	return err == nil
}

// ruleHandles returns the handles of the rules of chains in the test's
// table; a chain made anew has new ones.
func (env *testEnv) ruleHandles(chains ...string) map[string][]uint64 {
	c, err := nftables.New()
	if err != nil {
		env.t.Fatal(err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: env.s.Prefix}
	out := map[string][]uint64{}
	for _, ch := range chains {
		rules, err := c.GetRules(t, &nftables.Chain{Table: t, Name: ch})
		if err != nil {
			env.t.Fatalf("rules of chain %s: %v", ch, err)
		}
		for _, r := range rules {
			out[ch] = append(out[ch], r.Handle)
		}
	}
	return out
}

// newNS makes a network namespace for the test.
func (env *testEnv) newNS(name string) string {
	t := env.t
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := NewNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveNS(path); err != nil {
			t.Error(err)
		}
	})
	return path
}

// addRemote makes a namespace that plays another host: routed to the host
// through a veth pair <prefix>r, with the host end 10.<octet>.250.1/30 and
// its own 10.<octet>.250.2. It returns the host end's address.
func (env *testEnv) addRemote() (ns string, hostAddr, remoteAddr netip.Addr) {
	t := env.t
	t.Helper()
	ns = env.newNS("remote")
	env.remote = ns
	hostAddr = netip.MustParseAddr(fmt.Sprintf("10.%d.250.1", env.octet))
	remoteAddr = netip.MustParseAddr(fmt.Sprintf("10.%d.250.2", env.octet))
	h, err := netns.GetFromPath(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	name := env.s.Prefix + "r"
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(h)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeLink(name) })
	l, _ := netlink.LinkByName(name)
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipNet(hostAddr, 30)}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	peer, _ := nh.LinkByName("eth0")
	if err := nh.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(remoteAddr, 30)}); err != nil {
		t.Fatal(err)
	}
	if err := nh.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	if err := nh.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: hostAddr.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	return ns, hostAddr, remoteAddr
}

// inNS runs fn on a thread in the namespace at path ("" for the host's).
// Sockets made by fn stay in that namespace.
func inNS(t *testing.T, path string, fn func()) {
	t.Helper()
	if path == "" {
		fn()
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // a thread in the wrong namespace must not be reused
		}
	}()
	fn()
}

// serveTCP listens on port in the namespace and answers every connection
// with reply and the peer's address: "reply from 1.2.3.4".
func serveTCP(t *testing.T, ns string, port int, reply string) {
	t.Helper()
	acceptTCP(t, ns, port, func(c net.Conn) {
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		fmt.Fprintf(c, "%s from %s", reply, host)
		c.Close()
	})
}

// acceptTCP listens on port (0: any) in the namespace ("" for the host's)
// and hands each connection to serve, in a goroutine of its own, until the
// test ends; it returns the port.
func acceptTCP(t *testing.T, ns string, port int, serve func(net.Conn)) uint16 {
	t.Helper()
	var l net.Listener
	var err error
	inNS(t, ns, func() { l, err = net.Listen("tcp4", fmt.Sprintf(":%d", port)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// serveUDP echoes datagrams on port in the namespace, prefixed by reply.
func serveUDP(t *testing.T, ns string, port int, reply string) {
	t.Helper()
	var c net.PacketConn
	var err error
	inNS(t, ns, func() { c, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteTo(append([]byte(reply+" "), buf[:n]...), from)
		}
	}()
}

// dialTCP connects from the namespace to addr and returns what the server
// said, or an error.
func dialTCP(t *testing.T, ns, addr string) (string, error) {
	t.Helper()
	var c net.Conn
	var err error
	inNS(t, ns, func() { c, err = net.DialTimeout("tcp4", addr, time.Second) })
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	data, err := io.ReadAll(c)
	return string(data), err
}

// expectTCP fails the test unless a connection from ns to addr gets a
// reply starting with want.
func expectTCP(t *testing.T, ns, addr, want string) string {
	t.Helper()
	got, err := dialTCP(t, ns, addr)
	if err != nil || !strings.HasPrefix(got, want) {
		t.Errorf("%s from %s: %q, %v; want %q", addr, nsName(ns), got, err, want)
	}
	return got
}

func nsName(ns string) string {
	if ns == "" {
		return "host"
	}
	return filepath.Base(ns)
}

// ping reports whether ns reaches ip with one ICMP echo.
func ping(t *testing.T, ns string, ip netip.Addr) bool {
	t.Helper()
	args := []string{"ping", "-c", "1", "-W", "1", ip.String()}
	cmd := exec.Command("/bin/busybox", args...)
	if ns != "" {
		cmd = exec.Command("nsenter", append([]string{"--net=" + ns, "/bin/busybox"}, args...)...)
	}
	return cmd.Run() == nil
}

// connect attaches a fresh namespace to a network.
func (env *testEnv) connect(network, name string, ports ...PortMapping) (string, *Endpoint) {
	t := env.t
	t.Helper()
	ns := env.newNS(name)
	e, err := env.m.Connect(context.Background(), network, Attach{ContainerID: name + "-0123456789abcdef", Name: name, NetNS: ns, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	return ns, e
}

// primaryAddr is the host's source address on its default route.
func primaryAddr(t *testing.T) netip.Addr {
	t.Helper()
	rs, err := netlink.RouteGet(net.IPv4(1, 1, 1, 1))
	if err != nil || len(rs) == 0 || rs[0].Src == nil {
		t.Skip("no default route: cannot find the host's primary address")
	}
	a, _ := netip.AddrFromSlice(rs[0].Src.To4())
	return a
}
