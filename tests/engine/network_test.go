package engine

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/tests/fixture"
)

// httpGet fetches url and returns the body, or "" on any error.
func httpGet(url string) string {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return ""
	}
	return string(b)
}

// hostAddr is the host's first non-loopback IPv4 address.
func hostAddr(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !strings.HasPrefix(ipn.IP.String(), "10.") {
			return ipn.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address to test published ports from")
	return ""
}

func TestPublishedPorts(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	host := hostAddr(t)
	e.must("run", "-d", "--name", "web", "-p", "18741:8080", img, "sh", "-c", "echo served > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")
	for _, addr := range []string{"127.0.0.1", host} {
		url := fmt.Sprintf("http://%s:18741/index.html", addr)
		eventually(t, 5*time.Second, "GET "+url, func() bool { return httpGet(url) == "served\n" })
	}
	if got := e.must("inspect", "-f", `{{(index (index .NetworkSettings.Ports "8080/tcp") 0).HostPort}}`, "web"); got != "18741" {
		t.Fatalf("inspect ports: %q", got)
	}
	if got := e.must("ps", "--format", "{{.Ports}}"); got != "0.0.0.0:18741->8080/tcp" {
		t.Fatalf("ps ports: %q", got)
	}
	// -P publishes exposed ports on free host ports.
	e.must("run", "-d", "--name", "auto", "-P", "--expose", "8080", img, "sh", "-c", "echo auto > /tmp/index.html; exec httpd -f -p 8080 -h /tmp")
	port := e.must("inspect", "-f", `{{(index (index .NetworkSettings.Ports "8080/tcp") 0).HostPort}}`, "auto")
	if port == "" || port == "0" {
		t.Fatalf("-P chose no port: %q", port)
	}
	eventually(t, 5*time.Second, "GET via -P", func() bool { return httpGet("http://127.0.0.1:"+port+"/index.html") == "auto\n" })
	// Stopping the container releases the port and its rules.
	e.must("stop", "-t", "1", "web")
	if httpGet("http://127.0.0.1:18741/index.html") != "" {
		t.Fatal("port still served after stop")
	}
	e.must("start", "web")
	eventually(t, 5*time.Second, "GET after restart", func() bool { return httpGet("http://127.0.0.1:18741/index.html") == "served\n" })
}

func TestUserNetworkDNS(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	n := e.prefix[2:] // unique per test
	e.must("network", "create", "--subnet", e.extraSubnet(0), "app"+n)
	e.must("network", "create", "--subnet", e.extraSubnet(1), "other"+n)
	e.must("run", "-d", "--name", "db", "--network", "app"+n, img, "sh", "-c", "echo db > /tmp/index.html; exec httpd -f -p 80 -h /tmp")
	// A container on the same network reaches db by name.
	got := e.must("run", "--rm", "--network", "app"+n, img, "wget", "-q", "-O", "-", "http://db/index.html")
	if got != "db" {
		t.Fatalf("wget http://db: %q", got)
	}
	// One on another network cannot resolve or reach it. (Busybox's
	// wget -T crashes, which passed for "cannot reach"; timeout's signal
	// would not end a PID 1, hence the shell.)
	dbIP := e.must("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db")
	if _, _, code := e.run("run", "--rm", "--network", "other"+n, img, "sh", "-c", "timeout 3 wget -q -O - http://"+dbIP+"/index.html; exit $?"); code != 1 && code != 143 {
		t.Fatalf("a container on another network: wget exit %d, want 1 (refused) or 143 (timed out)", code)
	}
	e.fails("connected container", "network", "rm", "app"+n)
	// network connect joins a running container to another network at once.
	e.must("run", "-d", "--name", "client", "--network", "other"+n, img, "sleep", "60")
	e.must("network", "connect", "app"+n, "client")
	if got := e.must("exec", "client", "wget", "-q", "-O", "-", "http://db/index.html"); got != "db" {
		t.Fatalf("after network connect: %q", got)
	}
	e.fails("already on network", "network", "connect", "app"+n, "client")
	e.must("network", "disconnect", "app"+n, "client")
	if _, _, code := e.run("exec", "client", "timeout", "3", "wget", "-q", "-O", "-", "http://"+dbIP+"/index.html"); code != 1 && code != 143 {
		t.Fatalf("after network disconnect: wget exit %d, want 1 (refused) or 143 (timed out)", code)
	}
	e.must("rm", "-f", "client")
	e.must("rm", "-f", "db")
	e.must("network", "rm", "app"+n, "other"+n)
}

// TestNginx is the seeds' "web server in one second": a Debian nginx
// image served through a published port.
func TestNginx(t *testing.T) {
	e := newEnv(t)
	img := fixture.NginxImage(t, e.berth, e.root)
	start := time.Now()
	e.must("run", "-d", "--name", "nginx", "-p", "18742:80", "-m", "128m", img)
	eventually(t, 10*time.Second, "nginx serving", func() bool { return strings.Contains(httpGet("http://127.0.0.1:18742/"), "html") })
	t.Logf("nginx serving %v after run", time.Since(start).Round(time.Millisecond))
	eventually(t, 5*time.Second, "access log", func() bool { return strings.Contains(e.must("logs", "nginx"), "GET / HTTP") })
	// STOPSIGNAL SIGQUIT: nginx stops gracefully, not by SIGKILL.
	e.must("stop", "nginx")
	if got := e.must("inspect", "-f", "{{.State.ExitCode}}", "nginx"); got != "0" {
		t.Fatalf("nginx exit status after stop: %s", got)
	}
}

// TestRenameDNS: after `berth rename`, the other containers of a
// user-defined network resolve a running container by its new name and no
// longer by its old one, as with Docker; the container's own /etc/hosts
// and the network's records follow, and so does a restart.
func TestRenameDNS(t *testing.T) {
	e := newEnv(t)
	img := e.busybox()
	n := e.prefix[2:]
	net1, net2 := "ren"+n, "ren2"+n
	e.must("network", "create", "--subnet", e.extraSubnet(0), net1)
	e.must("network", "create", "--subnet", e.extraSubnet(1), net2)
	oldName, newName := "before"+n, "after"+n
	e.must("run", "-d", "--name", oldName, "--network", net1, img, "sh", "-c", "echo served > /tmp/index.html; exec httpd -f -p 80 -h /tmp")
	e.must("network", "connect", net2, oldName)
	e.must("run", "-d", "--name", "client", "--network", net1, img, "sleep", "1000")
	e.must("run", "-d", "--name", "client2", "--network", net2, img, "sleep", "1000")
	ip := e.must("inspect", "-f", "{{(index .NetworkSettings.Networks \""+net1+"\").IPAddress}}", oldName)
	ip2 := e.must("inspect", "-f", "{{(index .NetworkSettings.Networks \""+net2+"\").IPAddress}}", oldName)
	// resolves reports whether client's nslookup of name finds ip.
	resolves := func(client, name, ip string) bool {
		out, _, code := e.run("exec", client, "nslookup", name)
		return code == 0 && strings.Contains(out, ip)
	}
	if !resolves("client", oldName, ip) || !resolves("client2", oldName, ip2) {
		t.Fatalf("before the rename, %s does not resolve", oldName)
	}

	e.must("rename", oldName, newName)
	for _, c := range []struct{ client, ip string }{{"client", ip}, {"client2", ip2}} {
		if !resolves(c.client, newName, c.ip) {
			out, errOut, _ := e.run("exec", c.client, "nslookup", newName)
			t.Fatalf("%s does not resolve the new name %s to %s: %s%s", c.client, newName, c.ip, out, errOut)
		}
		if out, _, code := e.run("exec", c.client, "nslookup", oldName); code == 0 || strings.Contains(out, c.ip) {
			t.Fatalf("%s still resolves the old name %s: %s", c.client, oldName, out)
		}
		// With the network's domain too.
		net := net1
		if c.client == "client2" {
			net = net2
		}
		if !resolves(c.client, newName+"."+net, c.ip) {
			t.Fatalf("%s does not resolve %s.%s", c.client, newName, net)
		}
	}
	if got := e.must("exec", "client", "wget", "-q", "-O", "-", "http://"+newName+"/index.html"); got != "served" {
		t.Fatalf("wget http://%s: %q", newName, got)
	}
	// The reverse name is the new one.
	if out, _, _ := e.run("exec", "client", "nslookup", ip); !strings.Contains(out, newName) || strings.Contains(out, oldName) {
		t.Fatalf("reverse lookup of %s after the rename: %s", ip, out)
	}
	// The container knows itself by its new name, and the networks list it
	// so.
	if hosts := e.must("exec", newName, "cat", "/etc/hosts"); !strings.Contains(hosts, newName) || strings.Contains(hosts, oldName) {
		t.Fatalf("/etc/hosts after the rename:\n%s", hosts)
	}
	if got := e.must("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", net2); !strings.Contains(got, newName) || strings.Contains(got, oldName) {
		t.Fatalf("network inspect after the rename: %q", got)
	}

	// A stopped container takes its new name along when it starts again;
	// a second rename of a running one moves it once more.
	e.must("stop", "-t", "0", newName)
	e.must("start", newName)
	if !resolves("client", newName, "") {
		t.Fatalf("after a restart, %s does not resolve", newName)
	}
	third := "third" + n
	e.must("rename", newName, third)
	if !resolves("client", third, "") || resolves("client", newName, "") {
		t.Fatalf("after a second rename, %s does not resolve or %s still does", third, newName)
	}
	e.must("rm", "-f", third, "client", "client2")
	e.must("network", "rm", net1, net2)
}
