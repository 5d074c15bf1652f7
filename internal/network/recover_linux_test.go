package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

// TestConcurrentConnect connects namespaces from several processes at once
// and checks that no address is handed out twice, and that the addresses
// persist for a new Manager.
func TestConcurrentConnect(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	if _, err := env.m.Create(ctx, Network{Name: "net1", Subnet: env.subnet(1)}); err != nil {
		t.Fatal(err)
	}
	var jobs []connectJob
	for p := range 4 {
		job := connectJob{Network: "net1"}
		for i := range 3 {
			job.NetNS = append(job.NetNS, env.newNS(fmt.Sprintf("c%d%d", p, i)))
		}
		jobs = append(jobs, job)
	}
	for _, err := range env.runChildren(jobs...) {
		if err != nil {
			t.Error(err)
		}
	}
	m2, err := New(env.s)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := m2.Endpoints(ctx, "net1")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]string{}
	for _, e := range eps {
		if o, dup := seen[e.IP]; dup {
			t.Errorf("%s and %s both have %s", o, e.ContainerID, e.IP)
		}
		seen[e.IP] = e.ContainerID
	}
	if len(eps) != 12 {
		t.Errorf("%d endpoints, want 12", len(eps))
	}
	// A new endpoint through the new Manager gets a fresh address.
	_, e := env.connect("net1", "late")
	if _, dup := seen[e.IP]; dup {
		t.Errorf("late endpoint got %s, already in use", e.IP)
	}
	// The peers reach each other through the bridge the children made.
	if !ping(t, jobs[0].NetNS[0], e.IP) {
		t.Error("c00 cannot ping late")
	}
}

// TestProcessDeath connects from a process that dies right after, leaving
// its endpoints, rules and DNS server, and checks that Disconnect from
// another process removes all of it.
func TestProcessDeath(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	n, err := env.m.Create(ctx, Network{Name: "net1", Subnet: env.subnet(1)})
	if err != nil {
		t.Fatal(err)
	}
	ns := env.newNS("dead")
	errs := env.runChildren(connectJob{Network: "net1", NetNS: []string{ns}, Die: true})
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "killed") {
		t.Fatalf("child: %v", errs[0])
	}
	rec, ok := readPidFile(env.m.dnsPidFile(n))
	if !ok {
		t.Fatal("no DNS server after the child died")
	}
	if len(env.links()) != 2 || !env.tableExists() {
		t.Fatalf("after the child died: links %v, table %v", env.links(), env.tableExists())
	}
	if err := env.m.Disconnect(ctx, "net1", "dead"); err != nil {
		t.Fatal(err)
	}
	if rec.alive() {
		t.Error("DNS server still runs")
	}
	if l := env.links(); len(l) != 0 || env.tableExists() {
		t.Errorf("after Disconnect: links %v, table %v", l, env.tableExists())
	}
}

// TestHalfConnected stores endpoints as a Connect that died at various
// points would have left them and checks that Disconnect cleans up.
func TestHalfConnected(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	m := env.m
	n, err := m.Create(ctx, Network{Name: "net1", Subnet: env.subnet(1)})
	if err != nil {
		t.Fatal(err)
	}
	record := func(id string) *endpoint {
		e := &endpoint{
			Endpoint: Endpoint{Network: "net1", ContainerID: id, IfName: "eth0", IP: n.Gateway.Next(), Prefix: 24, Gateway: n.Gateway},
			NetNS:    env.newNS(id), HostVeth: hostVethName(env.s.Prefix),
		}
		if err := m.update(ctx, func(st *state) error { st.Endpoints = append(st.Endpoints, e); return nil }); err != nil {
			t.Fatal(err)
		}
		return e
	}
	// Died right after storing the endpoint.
	record("only-stored")
	if err := m.Disconnect(ctx, "net1", "only-stored"); err != nil {
		t.Fatal(err)
	}
	// Died after plugging the veth, before the rules.
	e := record("plugged")
	if err := ensureBridge(n); err != nil {
		t.Fatal(err)
	}
	if err := plugVeth(n, e); err != nil {
		t.Fatal(err)
	}
	if err := m.Disconnect(ctx, "net1", "plugged"); err != nil {
		t.Fatal(err)
	}
	if eps, _ := m.Endpoints(ctx, "net1"); len(eps) != 0 {
		t.Errorf("endpoints remain: %v", eps)
	}
	if l := env.links(); len(l) != 0 {
		t.Errorf("links remain: %v", l)
	}
}

// TestConnectUndo makes Connect fail after it made the bridge and checks
// that nothing remains; and connects one namespace to two networks.
func TestConnectUndo(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	m := env.m
	env.networks("net1", "net2")
	ns, e1 := env.connect("net1", "c")
	links := env.links()
	_, err := m.Connect(ctx, "net2", Attach{ContainerID: "c2", NetNS: ns})
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "eth0 already exists") {
		t.Fatalf("second eth0: %v", err)
	}
	if l := env.links(); fmt.Sprint(l) != fmt.Sprint(links) {
		t.Errorf("links after a failed Connect: %v, before: %v", l, links)
	}
	if eps, _ := m.Endpoints(ctx, "net2"); len(eps) != 0 {
		t.Errorf("endpoints after a failed Connect: %v", eps)
	}
	if _, err := m.Connect(ctx, "net1", Attach{ContainerID: e1.ContainerID, NetNS: ns, IfName: "eth1"}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("connected twice: %v", err)
	}
	if _, err := m.Connect(ctx, "net1", Attach{ContainerID: "x", NetNS: "/nonexistent/ns"}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing namespace: %v", err)
	}
	e2, err := m.Connect(ctx, "net2", Attach{ContainerID: "c2", NetNS: ns, IfName: "eth1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, gw := range []netip.Addr{e1.Gateway, e2.Gateway} {
		if !ping(t, ns, gw) {
			t.Errorf("cannot ping gateway %s", gw)
		}
	}
}
