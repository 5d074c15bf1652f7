package services

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// web is the image and command of a replica whose busybox httpd answers
// its host name.
func (e *env) web() []string {
	return []string{e.image, "sh", "-c", "mkdir -p /w && hostname > /w/index.html && exec httpd -f -p 80 -h /w"}
}

// webArgs are web's with a stop grace period of 1s and readiness while
// /w/unready does not exist.
func (e *env) webArgs() []string {
	return append([]string{"--stop-grace-period", "1s", "--readiness-cmd", "test ! -f /w/unready", "--health-interval", "200ms"}, e.web()...)
}

// distinct asks get n times and returns the distinct answers, sorted; a
// failed request is an answer "error: …".
func distinct(n int, get func() (string, error)) []string {
	seen := map[string]bool{}
	for range n {
		s, err := get()
		if err != nil {
			s = "error: " + err.Error()
		}
		seen[strings.TrimSpace(s)] = true
	}
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// hostGet is one HTTP GET from the host, on a new connection.
func hostGet(url string) func() (string, error) {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return func() (string, error) {
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("status %d", resp.StatusCode)
		}
		return string(b), err
	}
}

// TestServiceNetworking: a service's replicas are reached by its name and
// virtual IP from a container on its network, by tasks.NAME one by one,
// and through its published port from the host, spread over every ready
// replica; a replica that turns unready and those scaled away receive
// nothing more; service rm takes the names, address and rules away.
func TestServiceNetworking(t *testing.T) {
	e := newEnv(t)
	n := rand.IntN(1 << 8)
	e.ok("network", "create", "--subnet", fmt.Sprintf("10.%d.%d.0/24", 150+rand.IntN(40), n), "front")
	port := fmt.Sprint(19000 + rand.IntN(1000))
	e.ok(append([]string{"service", "create", "--name", "web", "--replicas", "3", "--network", "front", "-p", port + ":80"}, e.webArgs()...)...)
	rs := e.replicas("web")
	var hosts []string
	for _, r := range rs {
		hosts = append(hosts, e.ok("exec", r.ID, "hostname"))
	}
	slices.Sort(hosts)
	if len(hosts) != 3 {
		t.Fatalf("replicas %v", hosts)
	}

	svc := e.service("web")
	if len(svc.Status.VirtualIPs) != 1 || svc.Status.VirtualIPs[0].Network != "front" || len(svc.Status.Endpoints) != 3 {
		t.Fatalf("service inspect: virtual IPs %+v, endpoints %v; want one on front and 3 endpoints", svc.Status.VirtualIPs, svc.Status.Endpoints)
	}
	vip := svc.Status.VirtualIPs[0].Addr

	// From a container on the network: the name, its cluster forms, the
	// virtual IP, and tasks.web.
	script := `for n in web web.default.svc.cluster.local ` + vip + `; do for i in $(seq 30); do wget -qO- http://$n/ || echo fail; done; done; nslookup web; nslookup tasks.web`
	out := e.ok("run", "--rm", "--network", "front", e.image, "sh", "-c", script)
	got := map[string]int{}
	for _, l := range strings.Split(out, "\n") {
		if slices.Contains(hosts, l) || l == "fail" {
			got[l]++
		}
	}
	if got["fail"] > 0 || len(got) != 3 {
		t.Errorf("90 requests from a container to web, web.default.svc.cluster.local and %s: %v; want all 3 replicas, no failure", vip, got)
	}
	_, dns, _ := strings.Cut(out, "Name:")
	if !strings.Contains(dns, vip) {
		t.Errorf("nslookup web: no %s in %q", vip, dns)
	}
	for _, r := range rs {
		ip := e.ok("inspect", "-f", `{{(index .NetworkSettings.Networks "front").IPAddress}}`, r.ID)
		if !strings.Contains(dns, ip) {
			t.Errorf("nslookup tasks.web: no %s (%s) in %q", ip, r.Name, dns)
		}
	}

	// From the host, through the published port.
	get := hostGet("http://127.0.0.1:" + port + "/")
	if d := distinct(40, get); !slices.Equal(d, hosts) {
		t.Errorf("40 requests to 127.0.0.1:%s reached %v, want %v", port, d, hosts)
	}

	// An unready replica receives nothing.
	e.ok("exec", rs[0].ID, "touch", "/w/unready")
	left := slices.DeleteFunc(slices.Clone(hosts), func(h string) bool { return h == e.ok("exec", rs[0].ID, "hostname") })
	eventually(t, 10*time.Second, "the unready replica to leave", func() bool { return slices.Equal(distinct(20, get), left) })
	e.ok("exec", rs[0].ID, "rm", "/w/unready")
	eventually(t, 10*time.Second, "the replica to come back", func() bool { return slices.Equal(distinct(30, get), hosts) })

	// Client affinity: the host's requests go to one replica, which is
	// not replaced for it.
	e.ok("service", "update", "--session-affinity", "clientip", "web")
	eventually(t, 10*time.Second, "one replica for one client", func() bool { return len(distinct(20, get)) == 1 })
	if now := e.replicas("web"); len(now) != 3 || now[0].ID != rs[0].ID {
		t.Errorf("the affinity's update replaced replicas: %v, was %v", now, rs)
	}
	e.ok("service", "update", "--session-affinity", "None", "web")
	eventually(t, 10*time.Second, "all replicas again", func() bool { return slices.Equal(distinct(30, get), hosts) })

	// Scaled to one: one replica answers, no request fails.
	e.ok("service", "scale", "web=1")
	if d := distinct(20, get); len(d) != 1 || strings.HasPrefix(d[0], "error") {
		t.Errorf("after scaling to 1: %v, want one replica", d)
	}

	e.ok("service", "rm", "web")
	eventually(t, 10*time.Second, "the published port to close", func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if rules, _, _ := e.run("network", "inspect", "front"); strings.Contains(rules, vip) {
		t.Errorf("network inspect front still shows %s after service rm: %s", vip, rules)
	}
}
