package services

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// TestBadInput gives the service commands bad input: each is one line on
// stderr with exit status 2 (an existing name: 4, as Docker's conflict),
// and the service they name or not stays as it was.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.ok(e.sleeper("web", 2)...)
	before, _ := json.Marshal(e.service("web"))

	for _, c := range []struct {
		code int
		args []string
		want string // in the message
	}{
		{2, []string{"service", "inspect", "nope"}, "nope"},
		{2, []string{"service", "ps", "nope"}, "nope"},
		{2, []string{"service", "scale", "nope=2"}, "nope"},
		{2, []string{"service", "update", "--env-add", "A=1", "nope"}, "nope"},
		{2, []string{"service", "rollback", "nope"}, "nope"},
		{2, []string{"service", "rm", "nope"}, "nope"},
		{2, []string{"service", "logs", "nope"}, "nope"},
		{2, []string{"service", "scale", "web=-1"}, "web=-1"},
		{2, []string{"service", "scale", "web=x"}, "web=x"},
		{2, []string{"service", "scale", "web"}, "web"},
		{2, []string{"service", "update", "--replicas", "-1", "web"}, "-1"},
		{2, []string{"service", "update", "--update-delay", "5x", "web"}, "5x"},
		{2, []string{"service", "update", "--limit-memory", "12q", "web"}, "12q"},
		{2, []string{"service", "update", "--bogus", "web"}, "bogus"},
		{2, []string{"service", "update", "--session-affinity", "cookie", "web"}, "cookie"},
		{2, []string{"service", "create", "--replicas", "-1", "--name", "other", e.image}, "-1"},
		{2, []string{"service", "create", "--update-delay", "5x", "--name", "other", e.image}, "5x"},
		{2, []string{"service", "create", "--limit-memory", "12q", "--name", "other", e.image}, "12q"},
		{2, []string{"service", "create", "--bogus", "--name", "other", e.image}, "bogus"},
		{2, []string{"service", "create", "--name", "Bad_Name!", e.image}, "Bad_Name!"},
		{4, []string{"service", "create", "--name", "web", e.image, "sleep", "1"}, "web"},
	} {
		msg := e.fails(c.code, c.args...)
		t.Logf("berth %s: %s", strings.Join(c.args, " "), msg)
		if !strings.Contains(msg, c.want) {
			t.Errorf("berth %s: %q does not name %q", strings.Join(c.args, " "), msg, c.want)
		}
	}
	if after, _ := json.Marshal(e.service("web")); string(after) != string(before) {
		t.Errorf("bad input changed the service:\n%s\n%s", before, after)
	}
	if out := e.ok("service", "ls", "-q"); strings.Fields(out)[0] == "" || len(strings.Fields(out)) != 1 {
		t.Errorf("service ls: %q, want only web", out)
	}
	e.converged("web", 2, 10*time.Second)
}

// TestPortHeld creates a second service on a port the first publishes, a
// container publishes or a host program listens on: each fails with one
// line, and the first keeps serving on its port.
func TestPortHeld(t *testing.T) {
	e := newEnv(t)
	port := fmt.Sprint(18000 + rand.IntN(1000))
	e.ok("service", "create", "--name", "one", "-p", port+":80", "--stop-grace-period", "1s", e.image, "httpd", "-f", "-p", "80", "-h", "/")
	serving := func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprint(c, "GET / HTTP/1.0\r\n\r\n")
		b := make([]byte, 12)
		if _, err := c.Read(b); err != nil {
			return err
		}
		if !strings.HasPrefix(string(b), "HTTP/1.") {
			return fmt.Errorf("answer %q", b)
		}
		return nil
	}
	eventually(t, 10*time.Second, "service one to answer on port "+port, func() bool { return serving() == nil })

	msg := e.fails(2, "service", "create", "--name", "two", "-p", port+":80", e.image, "httpd", "-f", "-p", "80", "-h", "/")
	if !strings.Contains(msg, port) || !strings.Contains(msg, "one") {
		t.Errorf("the second create says %q: want the port and the service holding it", msg)
	}
	if _, _, code := e.run("service", "inspect", "two"); code == 0 {
		t.Errorf("service two was stored")
	}
	if err := serving(); err != nil {
		t.Errorf("service one no longer serves on port %s: %v", port, err)
	}

	// A port a container publishes, or a program of the host listens on.
	cport := fmt.Sprint(19000 + rand.IntN(1000))
	ctr := e.ok("run", "-d", "-p", cport+":80", e.image, "sleep", "3600")
	t.Cleanup(func() { e.run("rm", "-f", ctr) })
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hport := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	for _, c := range []struct{ port, holder string }{{cport, "container " + ctr[:12]}, {hport, "in use"}} {
		msg := e.fails(2, "service", "create", "--name", "three", "-p", c.port+":80", e.image, "sleep", "3600")
		if !strings.Contains(msg, c.port) || !strings.Contains(msg, c.holder) {
			t.Errorf("create on port %s says %q: want the port and %q", c.port, msg, c.holder)
		}
		msg = e.fails(2, "service", "update", "-p", c.port+":80", "one")
		if !strings.Contains(msg, c.port) || !strings.Contains(msg, c.holder) {
			t.Errorf("update to port %s says %q: want the port and %q", c.port, msg, c.holder)
		}
	}
	if _, _, code := e.run("service", "inspect", "three"); code == 0 {
		t.Errorf("service three was stored")
	}
	if err := serving(); err != nil {
		t.Errorf("service one no longer serves on port %s: %v", port, err)
	}
}

// TestLogsAndRemove shows the output of every replica prefixed with its
// replica, and removes several services in one command.
func TestLogsAndRemove(t *testing.T) {
	e := newEnv(t)
	e.ok("service", "create", "--name", "hello", "--replicas", "3", "--stop-grace-period", "1s", e.image, "sh", "-c", "echo hello; sleep 3600")
	e.ok(e.sleeper("quiet", 1)...)
	rs := e.converged("hello", 3, 30*time.Second)
	var out string
	eventually(t, 10*time.Second, "a hello from every replica", func() bool {
		out = e.ok("service", "logs", "hello")
		return strings.Count(out+"\n", "| hello\n") >= 3
	})
	lines := strings.Split(out, "\n")
	if len(lines) != 3 {
		t.Errorf("service logs: %d lines, want 3:\n%s", len(lines), out)
	}
	for _, r := range rs {
		prefix := fmt.Sprintf("hello.%s.%s@", r.Slot, r.Task[:12])
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) && strings.HasSuffix(l, "| hello") {
				found = true
			}
		}
		if !found {
			t.Errorf("service logs: no line %s…| hello:\n%s", prefix, out)
		}
	}

	if got := e.ok("service", "rm", "hello", "quiet"); got != "hello\nquiet" {
		t.Errorf("service rm printed %q", got)
	}
	if got := e.ok("service", "ls", "-q"); got != "" {
		t.Errorf("service ls after rm: %q", got)
	}
	eventually(t, 30*time.Second, "the replicas of both services to go", func() bool {
		return len(e.containers("hello"))+len(e.containers("quiet")) == 0
	})
}
