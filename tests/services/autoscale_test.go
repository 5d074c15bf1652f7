package services

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// replicasWanted is the service's desired replica count.
func (e *env) replicasWanted(name string) int {
	e.t.Helper()
	return e.service(name).Spec.DesiredReplicas()
}

// TestAutoscaleCPU: a busy-loop service at --cpu-percent 50 scales out
// while busy and back in once idle, and each decision is an event.
func TestAutoscaleCPU(t *testing.T) {
	e := newEnv(t)
	ctl := t.TempDir()
	// Busy while /ctl/busy exists, idle otherwise.
	e.ok("service", "create", "--name", "burn", "--reserve-cpu", "0.1", "-v", ctl+":/ctl", "--stop-grace-period", "1s",
		e.image, "sh", "-c", "while :; do while [ -e /ctl/busy ]; do :; done; sleep 0.2; done")
	since := time.Now()
	e.ok("service", "autoscale", "burn", "--min", "1", "--max", "3", "--cpu-percent", "50", "--scale-down-stabilization", "3s")

	// Idle: it stays at 1.
	time.Sleep(3 * time.Second)
	if n := e.replicasWanted("burn"); n != 1 {
		t.Fatalf("idle service scaled to %d", n)
	}
	if err := os.WriteFile(filepath.Join(ctl, "busy"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 20*time.Second, "burn to scale out to 3", func() bool { return e.replicasWanted("burn") == 3 })
	t.Logf("busy → 3 replicas wanted in %v", time.Since(start).Round(10*time.Millisecond))
	e.converged("burn", 3, 30*time.Second)

	if err := os.Remove(filepath.Join(ctl, "busy")); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	eventually(t, 30*time.Second, "burn to scale back in to 1", func() bool { return e.replicasWanted("burn") == 1 })
	t.Logf("idle → 1 replica wanted in %v", time.Since(start).Round(10*time.Millisecond))

	show := e.ok("service", "autoscale", "burn")
	for _, want := range []string{"→ 3: cpu", "→ 1: cpu"} {
		if !strings.Contains(show, want) {
			t.Errorf("service autoscale burn does not show %q:\n%s", want, show)
		}
	}
	events := e.ok("events", "--since", since.Format(time.RFC3339Nano), "--until", time.Now().Format(time.RFC3339Nano), "--filter", "type=service")
	if !strings.Contains(events, "service scale") || !strings.Contains(events, "name=burn") || !strings.Contains(events, "replicas.new=3") {
		t.Errorf("berth events has no scale of burn to 3:\n%s", events)
	}
	// A manual scale is taken, and says the autoscaler goes on.
	_, stderr, code := e.run("service", "scale", "-d", "burn=2")
	if code != 0 || !strings.Contains(stderr, "autoscale") {
		t.Errorf("service scale of an autoscaled service: exit %d, %q", code, stderr)
	}
	e.ok("service", "autoscale", "burn", "--off")
}

// redis starts a redis-server of the test's own on a free port and
// returns its address and a function that runs redis-cli against it.
func startRedis(t *testing.T) (addr string, stop func(), cli func(args ...string) string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	var cmd *exec.Cmd
	start := func() {
		cmd = exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "redis-server to answer", func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	stop = func() {
		if cmd != nil {
			cmd.Process.Kill()
			cmd.Wait()
			cmd = nil
		}
	}
	start()
	t.Cleanup(stop)
	cli = func(args ...string) string {
		if cmd == nil {
			start()
		}
		out, err := exec.Command("redis-cli", append([]string{"-p", fmt.Sprint(port)}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	return addr, stop, cli
}

// TestAutoscaleRedis: a Redis list pushed and drained moves the count up
// and down to zero; with Redis down the count holds and the status says
// why.
func TestAutoscaleRedis(t *testing.T) {
	e := newEnv(t)
	addr, stopRedis, redis := startRedis(t)
	e.ok(e.sleeper("worker", 1)...)
	e.ok("service", "autoscale", "worker", "--min", "0", "--max", "4", "--cooldown", "2s",
		"--trigger", "redis-list,address="+addr+",list=jobs,target=2")
	eventually(t, 10*time.Second, "the idle worker to go to zero", func() bool { return e.replicasWanted("worker") == 0 })

	redis("rpush", "jobs", "1", "2", "3", "4", "5")
	start := time.Now()
	eventually(t, 10*time.Second, "5 jobs to ask for 3 workers", func() bool { return e.replicasWanted("worker") == 3 })
	t.Logf("5 jobs → 3 replicas wanted in %v", time.Since(start).Round(10*time.Millisecond))

	// Redis goes away: the count holds past the cooldown.
	stopRedis()
	time.Sleep(4 * time.Second)
	if n := e.replicasWanted("worker"); n != 3 {
		t.Errorf("with Redis down the worker went to %d, want 3 held", n)
	}
	if show := e.ok("service", "autoscale", "worker"); !strings.Contains(show, "refused") && !strings.Contains(show, "does not answer") {
		t.Errorf("service autoscale worker does not say Redis is down:\n%s", show)
	}

	// Redis back, the list empty: after the cooldown, zero.
	redis("ping")
	eventually(t, 15*time.Second, "the drained worker to go to zero", func() bool { return e.replicasWanted("worker") == 0 })
	eventually(t, 30*time.Second, "the worker's replicas to go", func() bool { return len(e.containers("worker")) == 0 })
}

// TestAutoscaleSchedule: a schedule whose window holds the current minute
// gives the service its replicas now.
func TestAutoscaleSchedule(t *testing.T) {
	e := newEnv(t)
	e.ok(e.sleeper("peak", 1)...)
	now := time.Now().UTC()
	start, end := now.Minute(), (now.Minute()+2)%60
	e.ok("service", "autoscale", "peak", "--min", "1", "--max", "5",
		"--trigger", fmt.Sprintf("cron,start=%d * * * *,end=%d * * * *,replicas=3,timezone=UTC", start, end))
	eventually(t, 10*time.Second, "the schedule to ask for 3", func() bool { return e.replicasWanted("peak") == 3 })
	if show := e.ok("service", "autoscale", "peak"); !strings.Contains(show, "1 → 3: cron/0") {
		t.Errorf("service autoscale peak does not show the decision:\n%s", show)
	}
}

// TestAutoscaleFromZero: an HTTP service at --min 0 goes to zero replicas
// when idle; its first request after that, by its published port and by
// its name from a container, is answered (held while a replica starts),
// and the requests it serves keep it up.
func TestAutoscaleFromZero(t *testing.T) {
	e := newEnv(t)
	n := rand.IntN(1 << 8)
	e.ok("network", "create", "--subnet", fmt.Sprintf("10.%d.%d.0/24", 150+rand.IntN(40), n), "front")
	port := fmt.Sprint(19000 + rand.IntN(1000))
	e.ok(append([]string{"service", "create", "--name", "web", "--network", "front", "-p", port + ":80"}, e.webArgs()...)...)
	e.ok("service", "autoscale", "web", "--min", "0", "--max", "2", "--cooldown", "2s", "--trigger", "http-rps,target=50")
	get := hostGet("http://127.0.0.1:" + port + "/")
	toZero := func() {
		t.Helper()
		eventually(t, 20*time.Second, "web to go to zero", func() bool { return e.replicasWanted("web") == 0 })
		eventually(t, 20*time.Second, "web's replica to go", func() bool { return len(e.containers("web")) == 0 })
	}
	toZero()
	start := time.Now()
	if body, err := get(); err != nil || strings.HasPrefix(body, "error") {
		t.Fatalf("first request at zero replicas: %q, %v", body, err)
	}
	t.Logf("first response from zero replicas in %v", time.Since(start).Round(time.Millisecond))
	if n := e.replicasWanted("web"); n != 1 {
		t.Errorf("after a request at zero: %d replicas wanted, want 1", n)
	}
	if show := e.ok("service", "autoscale", "web"); !strings.Contains(show, "0 → 1: ") {
		t.Errorf("service autoscale web does not show the activation:\n%s", show)
	}

	// By name, from a container on the network.
	toZero()
	out := e.ok("run", "--rm", "--network", "front", e.image, "wget", "-qO-", "http://web/")
	if strings.TrimSpace(out) == "" {
		t.Errorf("a container's first request to web at zero replicas: %q", out)
	}
}

// TestAutoscaleMemory: replicas that hold twice their memory reservation
// scale the service out, and back in once they let it go.
func TestAutoscaleMemory(t *testing.T) {
	e := newEnv(t)
	ctl := t.TempDir()
	// Holds about 24 MB in a shell variable while /ctl/fat exists.
	e.ok("service", "create", "--name", "fat", "--reserve-memory", "12m", "-v", ctl+":/ctl", "--stop-grace-period", "1s",
		e.image, "sh", "-c", `while :; do if [ -e /ctl/fat ]; then x=$(head -c 24000000 /dev/zero | tr '\0' a); while [ -e /ctl/fat ]; do sleep 0.2; done; unset x; fi; sleep 0.2; done`)
	e.ok("service", "autoscale", "fat", "--min", "1", "--max", "3", "--memory-percent", "80", "--scale-down-stabilization", "3s")
	if err := os.WriteFile(filepath.Join(ctl, "fat"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "fat to scale out", func() bool { return e.replicasWanted("fat") > 1 })
	if err := os.Remove(filepath.Join(ctl, "fat")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "fat to scale back in to 1", func() bool { return e.replicasWanted("fat") == 1 })
	if show := e.ok("service", "autoscale", "fat"); !strings.Contains(show, ": memory ") {
		t.Errorf("service autoscale fat shows no memory decision:\n%s", show)
	}
}
