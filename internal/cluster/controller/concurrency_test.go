package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

func TestTwoControllers(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.start()
	e.create("web", 5, "nginx:1", nil)
	eventually(t, "5 replicas, one per slot", e.converged("web", 5, "nginx:1"))
	e.run.record("web", 5)
	e.update("web", "nginx:2")
	e.updateState("web", api.UpdateCompleted)
	eventually(t, "rolled out", e.converged("web", 5, "nginx:2"))
	if maxLive, minReady := e.run.counts("web"); maxLive > 5 || minReady < 4 {
		t.Errorf("two controllers broke the bounds: up to %d running, down to %d ready", maxLive, minReady)
	}
}

// TestRestartMidRollout stops the controller at random points of a rollout
// (and of a scale and a rollback) and starts a new one on the same store
// and node, which finishes the work with no duplicate and no orphan.
func TestRestartMidRollout(t *testing.T) {
	e := newEnv(t)
	stop := e.start()
	e.create("web", 4, "nginx:1", func(s *api.ServiceSpec) { s.Update.Parallelism = 2 })
	eventually(t, "v1", e.converged("web", 4, "nginx:1"))
	chaos := func() {
		for range 5 {
			time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
			stop()
			stop = e.start()
		}
	}
	e.update("web", "nginx:2")
	chaos()
	eventually(t, "v2", e.converged("web", 4, "nginx:2"))
	e.change("web", func(s *api.Service) { n := 6; s.Spec.Replicas = &n; s.Spec.Template.Image = "nginx:3" })
	chaos()
	eventually(t, "v3 scaled", e.converged("web", 6, "nginx:3"))
	e.rollback("web")
	chaos()
	eventually(t, "rolled back", e.converged("web", 6, "nginx:2"))
}

func TestConcurrentSpecWrites(t *testing.T) {
	e := newEnv(t)
	e.create("web", 1, "nginx:1", nil)
	ctx := context.Background()
	kv, err := e.st.Get(ctx, api.ServiceKey("web"))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, image := range []string{"nginx:2", "nginx:3"} {
		go func() {
			var s api.Service
			if err := json.Unmarshal(kv.Value, &s); err != nil {
				errs <- err
				return
			}
			s.Spec.Template.Image = image
			s.Generation++
			b, _ := json.Marshal(s)
			_, err := e.st.Put(ctx, api.ServiceKey("web"), b, kv.ModRevision)
			errs <- err
		}()
	}
	var conflicts int
	for range 2 {
		if err := <-errs; errors.Is(err, errdefs.ErrConflict) {
			conflicts++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if conflicts != 1 {
		t.Fatalf("%d of two concurrent writes got a conflict, want 1", conflicts)
	}
	e.start()
	s, _ := e.service("web")
	eventually(t, "the winner runs", e.converged("web", 1, s.Spec.Template.Image))
}

func TestServiceDeleted(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.create("web", 3, "nginx:1", nil)
	e.create("db", 1, "postgres", nil)
	eventually(t, "web", e.converged("web", 3, "nginx:1"))
	e.update("web", "nginx:2")
	e.updateState("web", api.UpdateCompleted)
	if _, err := e.st.Delete(context.Background(), api.ServiceKey("web"), store.Any); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web's containers, tasks and revisions gone", func() (bool, string) {
		for _, c := range e.run.containers() {
			if c.task.ServiceName == "web" {
				return false, "container " + c.task.ID
			}
		}
		kvs, _, _ := e.st.List(context.Background(), api.RevisionPrefix("id-web"))
		return len(e.tasks("web")) == 0 && len(kvs) == 0, fmt.Sprint(len(e.tasks("web")), " tasks ", len(kvs), " revisions")
	})
	eventually(t, "db untouched", e.converged("db", 1, "postgres"))
}
