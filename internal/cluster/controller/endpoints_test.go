package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
)

// TestEndpoints: the ready tasks are published with the service's ports
// and networks, and the virtual IPs and endpoints land in its status; a
// task that turns unready leaves; a removed service is unpublished.
func TestEndpoints(t *testing.T) {
	e := newEnv(t)
	e.start()
	ports := []api.PortConfig{{Protocol: api.ProtocolTCP, TargetPort: 80, PublishedPort: 8080}}
	e.create("web", 3, "nginx:1", func(s *api.ServiceSpec) {
		s.Ports = ports
		s.Template.Networks = []string{"front"}
	})
	eventually(t, "3 replicas", e.converged("web", 3, "nginx:1"))
	ids := func() []string {
		var out []string
		for _, tk := range e.wanted("web") {
			out = append(out, tk.ID)
		}
		slices.Sort(out)
		return out
	}
	eventually(t, "the 3 published", func() (bool, string) {
		p, ok := e.run.endpoints("web")
		s, _ := e.service("web")
		return ok && slices.Equal(p.Tasks, ids()) && slices.Equal(p.Ports, ports) && slices.Equal(p.Networks, []string{"front"}) &&
				slices.Equal(s.Status.Endpoints, ids()) && len(s.Status.VirtualIPs) == 1 && s.Status.VirtualIPs[0].Addr == "vip-web",
			fmt.Sprintf("published %+v, status %+v", p, s.Status)
	})
	unready := e.slotTask("web", 2).ID
	e.run.setReady(unready, false)
	eventually(t, "the unready one left", func() (bool, string) {
		p, _ := e.run.endpoints("web")
		return len(p.Tasks) == 2 && !slices.Contains(p.Tasks, unready), fmt.Sprint(p.Tasks)
	})
	e.run.setReady(unready, true)
	eventually(t, "back", func() (bool, string) {
		p, _ := e.run.endpoints("web")
		return slices.Contains(p.Tasks, unready), fmt.Sprint(p.Tasks)
	})
	// An autoscaler that may take it to zero activates it; one that may
	// not does not.
	for _, min := range []int{0, 1, 0} {
		a := api.Autoscaler{Service: "web", Spec: api.AutoscalerSpec{MinReplicas: min, MaxReplicas: 3,
			Triggers: []api.Trigger{{Type: api.TriggerHTTPRPS, Metadata: map[string]string{"target": "5"}}}}}
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.Put(context.Background(), api.AutoscalerKey("web"), b, store.Any); err != nil {
			t.Fatal(err)
		}
		eventually(t, fmt.Sprintf("activated with min %d", min), func() (bool, string) {
			p, _ := e.run.endpoints("web")
			return p.Activate == (min == 0), fmt.Sprintf("%+v", p)
		})
	}
	if _, err := e.st.Delete(context.Background(), api.ServiceKey("web"), store.Any); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unpublished", func() (bool, string) {
		_, ok := e.run.endpoints("web")
		return !ok, "still published"
	})
}

// TestDrainBeforeStop: a replica taken out by a scale-down has left the
// published endpoints when it gets its stop, and not before the drain
// delay passed.
func TestDrainBeforeStop(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var bad []string
	stopped := 0
	e.run.onStop = func(id string) {
		p, _ := e.run.endpoints("web")
		e.run.mu.Lock()
		at, ok := e.run.left[id]
		e.run.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		stopped++
		switch {
		case slices.Contains(p.Tasks, id):
			bad = append(bad, id+" stopped while published")
		case !ok:
			bad = append(bad, id+" stopped without leaving")
		case time.Since(at) < 300*time.Millisecond:
			bad = append(bad, fmt.Sprintf("%s stopped %v after it left, want the drain delay", id, time.Since(at)))
		}
	}
	e.start()
	e.create("web", 3, "nginx:1", func(s *api.ServiceSpec) {
		d := api.Duration(300 * time.Millisecond)
		s.DrainDelay = &d
	})
	eventually(t, "3 replicas", e.converged("web", 3, "nginx:1"))
	eventually(t, "3 published", func() (bool, string) {
		p, _ := e.run.endpoints("web")
		return len(p.Tasks) == 3, fmt.Sprint(p.Tasks)
	})
	one := 1
	e.change("web", func(s *api.Service) { s.Spec.Replicas = &one })
	eventually(t, "scaled to 1", e.converged("web", 1, "nginx:1"))
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 || stopped != 2 {
		t.Errorf("%d stopped: %v", stopped, bad)
	}
}

// TestPublishFailure: a node that cannot publish a service (a host port a
// container holds) does not keep its replicas from running; publishing is
// tried again until it succeeds.
func TestPublishFailure(t *testing.T) {
	e := newEnv(t)
	e.run.mu.Lock()
	e.run.publishErr = errors.New("port 8080/tcp is already published by container abc")
	e.run.mu.Unlock()
	e.start()
	e.create("web", 2, "nginx:1", nil)
	eventually(t, "2 replicas despite the failure", e.converged("web", 2, "nginx:1"))
	if _, ok := e.run.endpoints("web"); ok {
		t.Fatal("published while Publish failed")
	}
	e.run.mu.Lock()
	e.run.publishErr = nil
	e.run.mu.Unlock()
	eventually(t, "published once it can be", func() (bool, string) {
		p, ok := e.run.endpoints("web")
		return ok && len(p.Tasks) == 2, fmt.Sprint(p.Tasks)
	})
}
