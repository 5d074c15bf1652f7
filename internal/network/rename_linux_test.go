package network

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

// TestRenameRecords: Rename changes a container's name, and an alias that
// was its name, on each of its networks and nothing of other containers;
// a DNS server that reads the state answers for the new name only.
func TestRenameRecords(t *testing.T) {
	m, err := New(Settings{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ep := func(network, id, name string, ip string, aliases ...string) *endpoint {
		return &endpoint{Endpoint: Endpoint{Network: network, ContainerID: id, Name: name, Aliases: aliases, IP: netip.MustParseAddr(ip)}}
	}
	st := &state{Endpoints: []*endpoint{
		ep("n1", "aaaaaaaaaaaaaaaa", "old", "10.1.0.2", "old", "aaaaaaaaaaaa", "web"),
		ep("n2", "aaaaaaaaaaaaaaaa", "old", "10.2.0.2"),
		ep("n1", "bbbbbbbbbbbbbbbb", "other", "10.1.0.3", "old2"),
	}}
	if err := m.write(st); err != nil {
		t.Fatal(err)
	}
	if err := m.Rename(ctx, "aaaaaaaaaaaaaaaa", "new"); err != nil {
		t.Fatal(err)
	}
	got, err := m.read()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got.Endpoints {
		switch e.ContainerID {
		case "aaaaaaaaaaaaaaaa":
			if e.Name != "new" || slices.Contains(e.Aliases, "old") {
				t.Errorf("%s on %s: name %s, aliases %v", e.ContainerID, e.Network, e.Name, e.Aliases)
			}
		default:
			if e.Name != "other" || !slices.Equal(e.Aliases, []string{"old2"}) {
				t.Errorf("another container changed: %s %v", e.Name, e.Aliases)
			}
		}
	}
	if a := got.Endpoints[0].Aliases; !slices.Equal(a, []string{"new", "aaaaaaaaaaaa", "web"}) {
		t.Errorf("aliases: %v", a)
	}
	r := &resolver{}
	r.setEndpoints("n1", got.endpointsOf("n1"))
	if len(r.names["new"]) != 1 || len(r.names["new.n1"]) != 1 || len(r.names["old"]) != 0 {
		t.Errorf("records after rename: new %v, old %v", r.names["new"], r.names["old"])
	}

	// No endpoints: nothing to do. A bad name: one clear error.
	if err := m.Rename(ctx, "cccccccccccccccc", "x"); err != nil {
		t.Errorf("rename without endpoints: %v", err)
	}
	if err := m.Rename(ctx, "aaaaaaaaaaaaaaaa", "bad name"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad name: %v", err)
	}
}
