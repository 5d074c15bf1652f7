package services

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// load sends GETs to url from several clients until stop, half of them on
// keep-alive connections and half on a new connection each, and counts
// the requests and the failures (a connection error, a reset, a non-2xx).
type load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	ok, fail atomic.Int64
	mu       sync.Mutex
	errs     []string
}

func startLoad(url string, clients int) *load {
	l := &load{stop: make(chan struct{})}
	for i := range clients {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 1}}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				err := get(c, url)
				if err == nil {
					l.ok.Add(1)
					continue
				}
				l.fail.Add(1)
				l.mu.Lock()
				if len(l.errs) < 5 {
					l.errs = append(l.errs, err.Error())
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// end stops the load and fails the test if a request failed or none went.
func (l *load) end(t *testing.T, what string) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	t.Logf("%s: %d requests, %d failed", what, l.ok.Load(), l.fail.Load())
	if l.fail.Load() > 0 || l.ok.Load() == 0 {
		t.Errorf("%s: %d of %d requests failed (%v), want none", what, l.fail.Load(), l.ok.Load()+l.fail.Load(), l.errs)
	}
}

// TestZeroDowntime: under continuous HTTP load on the published port, a
// rolling update of 3 replicas, scaling 3 → 1 → 3 and a rollback each end
// with no failed request.
func TestZeroDowntime(t *testing.T) {
	e := newEnv(t)
	port := fmt.Sprint(19000 + rand.IntN(1000))
	// Ready once httpd answers: a replica joins the balancer only then.
	e.ok(append([]string{"service", "create", "--name", "web", "--replicas", "3", "-p", port + ":80", "--stop-grace-period", "1s",
		"--readiness-http", "80", "--health-interval", "200ms"}, e.web()...)...)
	url := "http://127.0.0.1:" + port + "/"

	l := startLoad(url, 4)
	e.ok("service", "update", "--env-add", "V=2", "web")
	l.end(t, "rolling update")

	l = startLoad(url, 4)
	e.ok("service", "scale", "web=1")
	e.ok("service", "scale", "web=3")
	l.end(t, "scale 3 → 1 → 3")

	l = startLoad(url, 4)
	e.ok("service", "rollback", "web")
	l.end(t, "rollback")
}

// TestRestartKeepsServing: the replicas that serve keep serving through
// kill -9 of the control plane and its restart: the new one does not take
// them out of the balancer while it probes them again.
func TestRestartKeepsServing(t *testing.T) {
	e := newEnv(t)
	port := fmt.Sprint(19000 + rand.IntN(1000))
	e.ok(append([]string{"service", "create", "--name", "web", "--replicas", "2", "-p", port + ":80", "--stop-grace-period", "1s",
		"--readiness-http", "80", "--health-interval", "3s"}, e.web()...)...)
	l := startLoad("http://127.0.0.1:"+port+"/", 2)
	e.killServe(syscall.SIGKILL)
	e.ok("service", "ls") // starts it again
	time.Sleep(4 * time.Second)
	l.end(t, "control plane restarted")
}
