package services

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// readyWatch polls `service ls` for the ready replicas of a service while
// something else runs, and keeps the lowest count it saw.
type readyWatch struct {
	stopc   chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	low     int
	samples int
}

// watchReady starts polling the ready replicas of service name.
func (e *env) watchReady(name string) *readyWatch {
	w := &readyWatch{stopc: make(chan struct{}), done: make(chan struct{}), low: -1}
	e.t.Cleanup(w.halt) // before the env's cleanup, which kills the control plane
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stopc:
				return
			default:
			}
			out, _, code := e.run("service", "ls", "--filter", "name="+name, "--format", "{{.Name}} {{.Replicas}}")
			for _, line := range strings.Split(out, "\n") {
				var n string
				var ready, want int
				if _, err := fmt.Sscanf(line, "%s %d/%d", &n, &ready, &want); code != 0 || err != nil || n != name {
					continue
				}
				w.mu.Lock()
				if w.low < 0 || ready < w.low {
					w.low = ready
				}
				w.samples++
				w.mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return w
}

// stop ends the watch and returns the lowest number of ready replicas
// seen; it fails the test if it saw too few samples to mean anything.
func (w *readyWatch) stop(t *testing.T) int {
	t.Helper()
	w.halt()
	if w.samples < 3 {
		t.Fatalf("service ls answered %d times while the rollout ran; too few to tell", w.samples)
	}
	return w.low
}

func (w *readyWatch) halt() {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
}

// event is a start or die of a replica's container, as `berth events`
// reports it.
type event struct {
	Action, Task, Slot string
}

// events returns the starts and deaths of service name's containers since
// a time, in order.
func (e *env) events(name string, since time.Time) []event {
	e.t.Helper()
	out := e.ok("events", "--since", since.UTC().Format(time.RFC3339Nano), "--until", "0s",
		"--filter", "label=berth.service.name="+name, "--filter", "event=start", "--filter", "event=die",
		"--format", `{{.Action}} {{index .Actor.Attributes "berth.task.id"}} {{index .Actor.Attributes "berth.task.slot"}}`)
	var evs []event
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			evs = append(evs, event{f[0], f[1], f[2]})
		}
	}
	return evs
}

// tasksBySlot maps the slots of replicas to their task IDs.
func tasksBySlot(rs []replica) map[string]string {
	m := map[string]string{}
	for _, r := range rs {
		m[r.Slot] = r.Task
	}
	return m
}

// envOf returns the value of variable key in replica r, as `berth exec r
// env` prints it.
func (e *env) envOf(r replica, key string) string {
	e.t.Helper()
	for _, line := range strings.Split(e.ok("exec", r.Name, "env"), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	return ""
}

// awaitUpdate waits until service name's rollout is in state want with its
// replicas all ready, and returns the service.
func (e *env) awaitUpdate(name string, want api.UpdateState) api.Service {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		svc := e.service(name)
		ready, desired := e.ready(name)
		if svc.Status.Update == want && ready == desired {
			return svc
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("service %s: %s (%s) with %d/%d ready after 30s, want %s and all ready\n%s",
				name, svc.Status.Update, svc.Status.Message, ready, desired, want, e.ok("service", "ps", name))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
