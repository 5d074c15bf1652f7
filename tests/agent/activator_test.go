package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/agent"
	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/root"
)

// TestActivatorScalesFromZero follows a connection to a service with no
// replica through nftables' redirect to the activator, which wakes the
// service, holds the request until Publish gives it a ready replica and
// then hands it over; on both the VIP and a published host port.
func TestActivatorScalesFromZero(t *testing.T) {
	e := newEnv(t)
	r, err := root.Open(e.dir, root.WithExecutable(e.berth))
	if err != nil {
		t.Fatal(err)
	}
	nets, err := r.Networks()
	if err != nil {
		t.Fatal(err)
	}
	woke := make(chan string, 16)
	a := e.newAgent(agent.WithNetworks(nets), agent.WithActivator(func(s string) {
		select {
		case woke <- s:
		default:
		}
	}))
	w := e.watch(a)
	ctx := context.Background()
	t.Cleanup(func() {
		if err := a.Unpublish(ctx, func(string) bool { return false }); err != nil {
			t.Error(err)
		}
	})
	hostPort := freePort(t)
	ep := api.ServiceEndpoints{Service: "web", Activate: true,
		Ports: []api.PortConfig{{Protocol: "tcp", TargetPort: 8080, PublishedPort: hostPort}}}
	vips, err := a.Publish(ctx, ep)
	if err != nil || len(vips) != 1 {
		t.Fatalf("Publish = %v, %v", vips, err)
	}
	viaVIP := fmt.Sprintf("http://%s:8080/index.html", vips[0].Addr)
	viaHost := fmt.Sprintf("http://127.0.0.1:%d/index.html", hostPort)

	// Cold: the request waits for the replica the wake starts.
	got := getAsync(viaVIP)
	awaitWoken(t, woke)
	tk := e.task(api.TaskTemplate{
		Command:        []string{"sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"},
		ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGet{Port: 8080, Path: "/index.html"}, Period: api.Duration(50 * time.Millisecond)},
	})
	e.ensure(a, tk)
	w.await(t, tk.ID, api.ActionReady, 10*time.Second)
	select {
	case res := <-got:
		t.Fatalf("answered before a replica was published: %q, %v", res.body, res.err)
	default:
	}
	ep.Tasks = []string{tk.ID}
	published := time.Now()
	if _, err := a.Publish(ctx, ep); err != nil {
		t.Fatal(err)
	}
	res := <-got
	if res.err != nil || res.body != "ok\n" {
		t.Fatalf("GET %s through the activator: %q, %v", viaVIP, res.body, res.err)
	}
	t.Logf("answered %v after the replica was published", time.Since(published))
	if d := time.Since(published); d > 500*time.Millisecond {
		t.Errorf("answered %v after the replica was published, want within 0.5 s", d)
	}

	// Warm: straight to the replica.
	for _, url := range []string{viaVIP, viaHost} {
		if res := <-getAsync(url); res.err != nil || res.body != "ok\n" {
			t.Fatalf("GET %s with a replica: %q, %v", url, res.body, res.err)
		}
	}
	if n, err := a.ServiceRequests(ctx, "web"); err != nil || n == 0 {
		t.Errorf("ServiceRequests = %d, %v; want the requests counted", n, err)
	}

	// Back to zero: the host port holds too, until the replica is back.
	ep.Tasks = nil
	if _, err := a.Publish(ctx, ep); err != nil {
		t.Fatal(err)
	}
	got = getAsync(viaHost)
	awaitWoken(t, woke)
	time.Sleep(200 * time.Millisecond)
	select {
	case res := <-got:
		t.Fatalf("answered with no replica published: %q, %v", res.body, res.err)
	default:
	}
	ep.Tasks = []string{tk.ID}
	if _, err := a.Publish(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if res := <-got; res.err != nil || res.body != "ok\n" {
		t.Fatalf("GET %s through the activator: %q, %v", viaHost, res.body, res.err)
	}
}

type getResult struct {
	body string
	err  error
}

// getAsync GETs url on a connection of its own.
func getAsync(url string) <-chan getResult {
	out := make(chan getResult, 1)
	go func() {
		c := http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			out <- getResult{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- getResult{string(b), err}
	}()
	return out
}

func awaitWoken(t *testing.T, woke <-chan string) {
	t.Helper()
	select {
	case s := <-woke:
		if s != "web" {
			t.Fatalf("woke %q, want web", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the activator did not wake the service")
	}
}

// freePort returns a TCP port free on the host now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
