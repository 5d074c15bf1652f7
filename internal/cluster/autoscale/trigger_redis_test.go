package autoscale

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// startRedis runs a real redis-server on a free port of 127.0.0.1, with
// no persistence, until the test ends; it returns its address and a stop
// function.
func startRedis(t *testing.T, args ...string) (addr string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: apt-get install redis-server")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var out strings.Builder
	cmd := exec.Command(bin, append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir()}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if redisAnswers(addr) {
			return addr, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer: %s", addr, out.String())
		}
	}
}

// redisAnswers says whether a server at addr replies to a PING (with
// PONG or an error such as NOAUTH).
func redisAnswers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-"))
}

func TestRedisListTrigger(t *testing.T) {
	addr, stop := startRedis(t)
	ctx := t.Context()
	client := redis.NewClient(&redis.Options{Addr: addr, DB: 2})
	t.Cleanup(func() { client.Close() })

	tr := testTrigger(t, api.TriggerRedisList, "address="+addr, "list=jobs", "target=5", "activation=2", "database=2")
	if err := checkTrigger(ctx, tr); err != nil {
		t.Fatalf("checkTrigger: %v", err)
	}
	s := mustScaler(t, tr)
	check := func(n, desired int, active bool) {
		t.Helper()
		r := mustRead(t, s, time.Now())
		current := strconv.Itoa(n) + " items"
		if n == 1 {
			current = "1 item"
		}
		want := reading{Desired: desired, Active: active, Current: current, Target: "5 per replica"}
		if r != want {
			t.Errorf("%d items: Read = %+v, want %+v", n, r, want)
		}
	}
	check(0, 0, false)
	push := func(n int) {
		t.Helper()
		for range n {
			if err := client.RPush(ctx, "jobs", "job").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	push(1)
	check(1, 1, false)
	push(1)
	check(2, 1, false) // activation 2: not above it yet
	push(1)
	check(3, 1, true)
	push(8)
	check(11, 3, true)
	for range 6 {
		client.LPop(ctx, "jobs")
	}
	check(5, 1, true)
	if err := client.Del(ctx, "jobs").Err(); err != nil {
		t.Fatal(err)
	}
	check(0, 0, false)

	// The list is in database 2, not 0.
	db0 := redis.NewClient(&redis.Options{Addr: addr})
	defer db0.Close()
	if err := db0.RPush(ctx, "jobs", "a", "b").Err(); err != nil {
		t.Fatal(err)
	}
	check(0, 0, false)

	// A key of another type is an error.
	if err := client.Set(ctx, "jobs", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(ctx, time.Now()); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("Read of a string key: %v, want WRONGTYPE", err)
	}
	client.Del(ctx, "jobs")
	check(0, 0, false)

	// A server that is gone is an error, soon.
	stop()
	start := time.Now()
	r, err := s.Read(ctx, time.Now())
	if err == nil || !strings.HasPrefix(err.Error(), "redis-list: LLEN jobs at "+addr+": ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Read with redis stopped = %+v, %v; want an error", r, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Read with redis stopped took %s", d)
	}
}

func TestRedisPassword(t *testing.T) {
	addr, _ := startRedis(t, "--requirepass", "s3cret")
	ok := testTrigger(t, api.TriggerRedisList, "address="+addr, "list=jobs", "target=1", "password=s3cret")
	if err := checkTrigger(t.Context(), ok); err != nil {
		t.Errorf("checkTrigger with the password: %v", err)
	}
	if r := mustRead(t, mustScaler(t, ok), time.Now()); r.Desired != 0 || r.Current != "0 items" {
		t.Errorf("Read = %+v", r)
	}
	for _, pw := range []string{"", "wrong"} {
		tr := testTrigger(t, api.TriggerRedisList, "address="+addr, "list=jobs", "target=1")
		if pw != "" {
			tr.Metadata["password"] = pw
		}
		err := checkTrigger(t.Context(), tr)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), "redis-list: address "+addr+" answers ") {
			t.Errorf("checkTrigger with password %q: %v, want ErrInvalidArgument", pw, err)
		}
		if _, err := mustScaler(t, tr).Read(t.Context(), time.Now()); err == nil {
			t.Errorf("Read with password %q: no error", pw)
		}
	}
}

func TestRedisNoServer(t *testing.T) {
	// Nothing listens on port 1.
	tr := testTrigger(t, api.TriggerRedisList, "address=127.0.0.1:1", "list=jobs", "target=5")
	start := time.Now()
	err := checkTrigger(context.Background(), tr)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), "redis-list: address 127.0.0.1:1 does not answer: ") {
		t.Errorf("checkTrigger = %v, want ErrInvalidArgument, does not answer", err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("checkTrigger took %s", d)
	}
	t.Log(err)

	// A server that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tr = testTrigger(t, api.TriggerRedisList, "address="+l.Addr().String(), "list=jobs", "target=5")
	start = time.Now()
	err = checkTrigger(context.Background(), tr)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "does not answer: timed out") {
		t.Errorf("checkTrigger on a silent server = %v, want ErrInvalidArgument, no answer", err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("checkTrigger on a silent server took %s", d)
	}
	t.Log(err)
}

func TestRedisInvalid(t *testing.T) {
	for _, addr := range []string{"localhost", "127.0.0.1:0", "127.0.0.1:http", ":99999"} {
		tr := testTrigger(t, api.TriggerRedisList, "address="+addr, "list=jobs", "target=5")
		start := time.Now()
		err := checkTrigger(context.Background(), tr)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), "redis-list: address \""+addr+"\": ") {
			t.Errorf("address %q: %v, want ErrInvalidArgument", addr, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("address %q: took %s, as if it had dialled", addr, d)
		}
	}
}
