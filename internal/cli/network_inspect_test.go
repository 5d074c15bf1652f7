package cli

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/berth-dev/berth/internal/network"
)

func TestInspectServices(t *testing.T) {
	if inspectServices(nil, nil) != nil {
		t.Error("a network without services shows Services")
	}
	svcs := []network.Service{{
		Name: "web", Namespace: "default", Network: "net1", VIP: netip.MustParseAddr("10.1.0.9"),
		Ports: []network.ServicePort{
			{Protocol: "tcp", Port: 80, TargetPort: 8080, HostPort: 8000},
			{Protocol: "udp", Port: 53, TargetPort: 5353, HostPort: 5300, HostIP: netip.MustParseAddr("127.0.0.1")},
		},
		Backends: []string{"c1", "gone"},
	}}
	eps := []network.Endpoint{{ContainerID: "c1", Name: "web.1", IP: netip.MustParseAddr("10.1.0.2")}}
	data, err := json.Marshal(inspectServices(svcs, eps))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"web":{"Namespace":"default","VIP":"10.1.0.9","Ports":["80-\u003e8080/tcp (host 8000)","53-\u003e5353/udp (host 127.0.0.1:5300)"],` +
		`"Tasks":[{"Name":"web.1","EndpointID":"c1","EndpointIP":"10.1.0.2"}]}}`
	if string(data) != want {
		t.Errorf("got  %s\nwant %s", data, want)
	}
}
