package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/container"
)

// prober probes one running task container, as the kubelet does: the
// startup probe until it passes, then liveness and readiness side by side.
// Without probes, the image's HEALTHCHECK (run by the container's monitor,
// its verdicts arriving as health_status events) stands for both; with
// neither the task is ready as soon as it runs.
type prober struct {
	a      *Agent
	id     string // the container's
	taskID string
	p      probes
	health func(status string) // set for a HEALTHCHECK; called by handle

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	ready bool
}

// startProber starts probing c unless it is probed already. A container
// adopted (running before this agent started: the control plane was
// restarted) starts ready, so that a restart does not take the replicas
// that serve out of load balancing; its probes run as usual from there.
func (a *Agent) startProber(c *container.Container, st *container.State, adopted bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.probers[c.ID]; ok || a.ctx.Err() != nil {
		return
	}
	p := &prober{a: a, id: c.ID, taskID: c.Config.Labels[LabelTaskID], p: probesOf(c.Config.Labels), done: make(chan struct{}),
		ready: adopted}
	p.ctx, p.cancel = context.WithCancel(a.ctx)
	hc := c.Config.Healthcheck != nil && len(c.Config.Healthcheck.Test) > 0 && c.Config.Healthcheck.Test[0] != "NONE"
	if p.p.none() && hc {
		p.health = p.onHealth
	}
	a.probers[c.ID] = p
	go p.run(st)
}

// stopProber stops probing container id; it does not wait.
func (a *Agent) stopProber(id string) {
	a.mu.Lock()
	p := a.probers[id]
	delete(a.probers, id)
	a.mu.Unlock()
	if p != nil {
		p.cancel()
	}
}

func (a *Agent) prober(id string) *prober {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.probers[id]
}

func (p *prober) stop() { p.cancel(); <-p.done }

func (p *prober) isReady() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// setReady records readiness and reports a change.
func (p *prober) setReady(ready bool, msg string) {
	p.mu.Lock()
	changed := p.ready != ready && p.ctx.Err() == nil
	p.ready = ready
	p.mu.Unlock()
	if !changed {
		return
	}
	ev := api.TaskEvent{Action: api.ActionReady, Status: api.TaskStatus{TaskID: p.taskID, ContainerID: p.id, State: api.TaskReady}}
	if !ready {
		ev.Action, ev.Status.State, ev.Status.Message = api.ActionUnready, api.TaskRunning, msg
	}
	p.a.publish(ev)
}

// fail reports the task unhealthy and stops its container with its stop
// signal and stop timeout; the engine's die event then reports the exit.
func (p *prober) fail(msg string) {
	if p.ctx.Err() != nil {
		return
	}
	p.a.publish(api.TaskEvent{Action: api.ActionUnhealthy,
		Status: api.TaskStatus{TaskID: p.taskID, ContainerID: p.id, State: api.TaskRunning, Message: msg}})
	p.setReady(false, msg)
	if err := p.a.e.Stop(p.a.ctx, p.id, nil); err != nil {
		p.a.o.log.Warn("agent: stopping an unhealthy task", "task", p.taskID, "err", err)
	}
}

// onHealth follows the HEALTHCHECK's verdicts.
func (p *prober) onHealth(status string) {
	switch status {
	case "healthy":
		p.setReady(true, "")
	case "unhealthy":
		p.fail("health check failed")
	}
}

func (p *prober) run(st *container.State) {
	defer close(p.done)
	switch {
	case p.health != nil:
		if st.Health != nil {
			p.onHealth(st.Health.Status)
		}
		return
	case p.p.none():
		p.setReady(true, "")
		return
	}
	started := st.StartedAt
	if p.p.Startup != nil {
		passed := false
		p.every(p.p.Startup, started, func(ok bool, fails, _ int, msg string) bool {
			if ok {
				passed = true
				return true
			}
			if fails >= p.p.Startup.FailureThreshold {
				p.fail("startup probe failed: " + msg)
				return true
			}
			return false
		})
		if !passed {
			return
		}
	}
	var wg sync.WaitGroup
	if l := p.p.Liveness; l != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.every(l, started, func(ok bool, fails, _ int, msg string) bool {
				if !ok && fails >= l.FailureThreshold {
					p.fail("liveness probe failed: " + msg)
					return true
				}
				return false
			})
		}()
	}
	if r := p.p.Readiness; r != nil {
		p.every(r, started, func(ok bool, fails, oks int, msg string) bool {
			switch {
			case ok && oks >= r.SuccessThreshold:
				p.setReady(true, "")
			case !ok && fails >= r.FailureThreshold:
				p.setReady(false, "readiness probe failed: "+msg)
			}
			return false
		})
	} else {
		p.setReady(true, "")
	}
	wg.Wait()
}

// every runs probe pr every period from its initial delay after started,
// while the container runs, calling fn with each result and the numbers
// of failures and successes in a row, until fn returns true or the
// prober stops.
func (p *prober) every(pr *api.Probe, started time.Time, fn func(ok bool, fails, oks int, msg string) bool) {
	wait := time.Until(started.Add(time.Duration(pr.InitialDelay)))
	fails, oks := 0, 0
	for {
		if wait > 0 {
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		wait = time.Duration(pr.Period)
		st, err := p.a.e.State(p.ctx, p.id)
		if err != nil || st.Status != container.Running || p.ctx.Err() != nil {
			return // the die or destroy event stops the prober
		}
		ok, msg := p.check(pr, st)
		if p.ctx.Err() != nil {
			return
		}
		if ok {
			fails, oks = 0, oks+1
		} else {
			fails, oks = fails+1, 0
		}
		if fn(ok, fails, oks, msg) {
			return
		}
	}
}

// check runs a probe once: exec in the container, an HTTP GET to its
// address (200–399 pass) or a TCP connect to it, within the probe's
// timeout.
func (p *prober) check(pr *api.Probe, st *container.State) (bool, string) {
	ctx, cancel := context.WithTimeout(p.ctx, time.Duration(pr.Timeout))
	defer cancel()
	switch {
	case len(pr.Exec) > 0:
		code, err := p.a.e.Exec(ctx, p.id, container.ExecOptions{Args: pr.Exec})
		switch {
		case ctx.Err() == context.DeadlineExceeded:
			return false, fmt.Sprintf("%q timed out after %v", pr.Exec, time.Duration(pr.Timeout))
		case err != nil:
			return false, err.Error()
		case code != 0:
			return false, fmt.Sprintf("%q exited with status %d", pr.Exec, code)
		}
		return true, ""
	case pr.HTTPGet != nil:
		return httpGet(ctx, pr.HTTPGet, address(st))
	case pr.TCPSocket != nil:
		addr := net.JoinHostPort(address(st).String(), strconv.Itoa(pr.TCPSocket.Port))
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	}
	return false, "the probe has no exec, httpGet or tcpSocket"
}

// address is where the container is reached from the host: its first
// network's address, or the host's loopback on the host's network.
func address(st *container.State) netip.Addr {
	for _, ep := range st.Endpoints {
		if ep.IP.IsValid() {
			return ep.IP
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// probeClient takes a redirect as an answer (3xx passes) and, as the
// kubelet, does not check certificates.
var probeClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true,
		Proxy: nil},
}

func httpGet(ctx context.Context, h *api.HTTPGet, ip netip.Addr) (bool, string) {
	scheme := "http"
	if h.Scheme == api.SchemeHTTPS {
		scheme = "https"
	}
	url := scheme + "://" + net.JoinHostPort(ip.String(), strconv.Itoa(h.Port)) + h.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return false, fmt.Sprintf("GET %s: %s", url, resp.Status)
	}
	return true, ""
}
