package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/cluster/store/bolt"
	"github.com/berth-dev/berth/internal/errdefs"
)

// start serves the API over a real bolt store on a real unix socket and
// returns a client of it and the store.
func start(t *testing.T) (*Client, store.Store) {
	t.Helper()
	return startChecking(t, nil)
}

// startChecking is start with the nodes' host ports checked by check.
func startChecking(t *testing.T, check PortCheck) (*Client, store.Store) {
	t.Helper()
	return startWith(t, Checks{Ports: check})
}

// startWith is start with the checks c.
func startWith(t *testing.T, c Checks) (*Client, store.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(filepath.Join(dir, "run", SocketName))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), c).Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return NewClient(ln.Addr().String()), st
}

func web(image string, replicas int) api.Service {
	return api.Service{Name: "web", Spec: api.ServiceSpec{Replicas: &replicas, Template: api.TaskTemplate{Image: image}}}
}

func TestServiceLifecycle(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	if p, err := c.Ping(ctx); err != nil || p.APIVersion != api.Version {
		t.Fatalf("Ping = %+v, %v", p, err)
	}
	created, err := c.Create(ctx, web("busybox", 3))
	if err != nil {
		t.Fatal(err)
	}
	if len(created.ID) != 25 || created.Generation != 1 || created.Spec.Update.Parallelism != 1 {
		t.Fatalf("created %+v: want a 25-character ID, generation 1 and defaults", created)
	}
	if _, err := c.Create(ctx, web("busybox", 1)); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second create: %v, want already exists", err)
	}
	got, err := c.Service(ctx, "web")
	if err != nil || got.ID != created.ID {
		t.Fatalf("Service = %+v, %v", got, err)
	}
	list, err := c.Services(ctx)
	if err != nil || len(list) != 1 || list[0].Service.Name != "web" || list[0].Ready != 0 {
		t.Fatalf("Services = %+v, %v", list, err)
	}

	// An update from what was read bumps the generation; one from a stale
	// read is refused and writes nothing.
	stale := got
	got.Spec.Template.Image = "busybox:2"
	updated, err := c.Update(ctx, got)
	if err != nil || updated.Generation != 2 || updated.Spec.Template.Image != "busybox:2" {
		t.Fatalf("Update = %+v, %v", updated, err)
	}
	stale.Spec.Template.Image = "busybox:3"
	_, err = c.Update(ctx, stale)
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "service web was changed by someone else; try again: conflict" {
		t.Fatalf("stale update: %v, want the conflict line", err)
	}
	// An update that changes nothing writes nothing.
	if same, err := c.Update(ctx, updated); err != nil || same.Generation != 2 || !same.UpdatedAt.Equal(updated.UpdatedAt) {
		t.Fatalf("no-op update = %+v, %v", same, err)
	}

	scaled, err := c.Scale(ctx, "web", 5)
	if err != nil || scaled.Generation != 3 || scaled.Spec.DesiredReplicas() != 5 {
		t.Fatalf("Scale = %+v, %v", scaled, err)
	}
	if _, err := c.Scale(ctx, "web", -1); errdefs.ExitCode(err) != 2 {
		t.Fatalf("Scale -1: %v, want invalid argument", err)
	}

	if err := c.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Service(ctx, "web")
	if !errors.Is(err, errdefs.ErrNotFound) || errdefs.ExitCode(err) != 2 || err.Error() != "no such service: web: not found" {
		t.Fatalf("after rm: %v, want not found as bad input", err)
	}
	if err := c.Remove(ctx, "web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second rm: %v", err)
	}
}

// A write of the controllers (the status) between a read and an update is
// not a conflict: the generation the user read is still the service's.
func TestUpdateAfterStatusWrite(t *testing.T) {
	c, st := start(t)
	ctx := context.Background()
	svc, err := c.Create(ctx, web("busybox", 1))
	if err != nil {
		t.Fatal(err)
	}
	putStatus(t, st, func(s *api.Service) { s.Status.ObservedGeneration, s.Status.Revision = 1, 1 })
	svc.Spec.Template.Image = "busybox:2"
	got, err := c.Update(ctx, svc)
	if err != nil || got.Generation != 2 || got.Status.Revision != 1 {
		t.Fatalf("Update = %+v, %v: want generation 2 with the controller's status kept", got, err)
	}
}

// A change of the labels alone keeps the generation but is a change all
// the same: an update from a read before it is refused and writes nothing,
// so that two updates of different labels cannot both succeed with one
// of them lost.
func TestUpdateAfterLabelChange(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	svc, err := c.Create(ctx, web("busybox", 1))
	if err != nil {
		t.Fatal(err)
	}
	first, second := svc, svc
	first.Labels = map[string]string{"a": "1"}
	if got, err := c.Update(ctx, first); err != nil || got.Generation != 1 {
		t.Fatalf("labels update = %+v, %v: want generation 1 kept", got, err)
	}
	second.Labels = map[string]string{"b": "2"}
	if _, err := c.Update(ctx, second); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("update from a read before the labels changed: %v, want a conflict", err)
	}
	if got, err := c.Service(ctx, "web"); err != nil || len(got.Labels) != 1 || got.Labels["a"] != "1" {
		t.Fatalf("stored labels %v, %v: want a=1 alone", got.Labels, err)
	}
}

// putStatus changes the stored service as a controller would.
func putStatus(t *testing.T, st store.Store, change func(*api.Service)) {
	t.Helper()
	ctx := context.Background()
	kv, err := st.Get(ctx, api.ServiceKey("web"))
	if err != nil {
		t.Fatal(err)
	}
	var svc api.Service
	if err := json.Unmarshal(kv.Value, &svc); err != nil {
		t.Fatal(err)
	}
	change(&svc)
	b, _ := json.Marshal(svc)
	if _, err := st.Put(ctx, kv.Key, b, kv.ModRevision); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentUpdatesOneWins(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	svc, err := c.Create(ctx, web("busybox", 1))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := svc
			s.Spec.Template.Image = []string{"a", "b"}[i]
			_, errs[i] = c.Update(ctx, s)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, errdefs.ErrConflict):
			t.Fatalf("loser's error: %v, want a conflict", err)
		}
	}
	got, _ := c.Service(ctx, "web")
	if won != 1 || got.Generation != 2 {
		t.Fatalf("%d updates won, generation %d: want exactly one, generation 2", won, got.Generation)
	}
}

func TestRollbackRequest(t *testing.T) {
	c, st := start(t)
	ctx := context.Background()
	svc, err := c.Create(ctx, web("busybox:3", 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rollback(ctx, "web", 0); errdefs.ExitCode(err) != 2 {
		t.Fatalf("rollback without revisions: %v, want invalid argument", err)
	}
	// The controller's writes: revisions 1 to 3, the service at 3.
	for n, image := range map[int64]string{1: "busybox:1", 2: "busybox:2", 3: "busybox:3"} {
		tmpl := api.TaskTemplate{Image: image}
		b, _ := json.Marshal(api.Revision{ServiceID: svc.ID, Number: n, Template: tmpl, Hash: tmpl.Hash(), CreatedAt: time.Now()})
		if _, err := st.Put(ctx, api.RevisionKey(svc.ID, n), b, 0); err != nil {
			t.Fatal(err)
		}
	}
	putStatus(t, st, func(s *api.Service) {
		s.Status = api.ServiceStatus{ObservedGeneration: 1, Revision: 3, Update: api.UpdateCompleted}
	})
	got, err := c.Rollback(ctx, "web", 0)
	if err != nil || got.Spec.Template.Image != "busybox:2" || got.Generation != 2 || got.Status.Update != api.UpdateRollbackStarted {
		t.Fatalf("Rollback = %+v, %v: want busybox:2, generation 2, rollback_started", got, err)
	}
	got, err = c.Rollback(ctx, "web", 1)
	if err != nil || got.Spec.Template.Image != "busybox:1" || got.Generation != 3 {
		t.Fatalf("Rollback to 1 = %+v, %v", got, err)
	}
	// To the template the spec already has: nothing to write.
	if again, err := c.Rollback(ctx, "web", 1); err != nil || again.Generation != 3 {
		t.Fatalf("Rollback to 1 again = %+v, %v: want generation 3 unchanged", again, err)
	}
	_, err = c.Rollback(ctx, "web", 7)
	if errdefs.ExitCode(err) != 2 || err.Error() != "service web has no revision 7 (it has 1, 2, 3): not found" {
		t.Fatalf("Rollback to 7: %v", err)
	}
	revs, err := c.Revisions(ctx, "web")
	if err != nil || len(revs) != 3 || revs[0].Number != 1 {
		t.Fatalf("Revisions = %+v, %v", revs, err)
	}
}

func TestPublishedPortHeldByAnotherService(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	a := web("nginx", 1)
	a.Spec.Ports = []api.PortConfig{{TargetPort: 80, PublishedPort: 8080}}
	if _, err := c.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := a
	b.Name = "api"
	_, err := c.Create(ctx, b)
	if errdefs.ExitCode(err) != 2 || err.Error() != "port 8080/tcp is already published by service web: conflict" {
		t.Fatalf("create with a held port: %v", err)
	}
	b.Spec.Ports = []api.PortConfig{{TargetPort: 80, PublishedPort: 8080, Protocol: api.ProtocolUDP}}
	if _, err := c.Create(ctx, b); err != nil {
		t.Fatalf("the same port on udp: %v", err)
	}
}

// Malformed requests are refused with one line of class invalid argument.
func TestBadRequests(t *testing.T) {
	c, _ := start(t)
	for _, tc := range []struct{ name, body, want string }{
		{"bad JSON", `{"apiVersion": `, "request body: unexpected EOF"},
		{"unknown field", `{"apiVersion":"berth/v1","kind":"Service","name":"web","spec":{"template":{"image":"x"}},"color":"red"}`, `unknown field "color"`},
		{"bad version", `{"apiVersion":"berth/v9","kind":"Service","name":"web","spec":{"template":{"image":"x"}}}`, `apiVersion "berth/v9"`},
		{"invalid spec", `{"apiVersion":"berth/v1","kind":"Service","name":"web","spec":{"replicas":-1,"template":{"image":"x"}}}`, "replicas: -1: must be 0 or more"},
		{"bad name", `{"apiVersion":"berth/v1","kind":"Service","name":"Web","spec":{"template":{"image":"x"}}}`, `service name "Web"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "http://berth/v1/services", strings.NewReader(tc.body))
			resp, err := c.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e errorBody
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 400 || e.Class != "invalid argument" || !strings.Contains(e.Error, tc.want) || strings.Contains(e.Error, "\n") {
				t.Fatalf("status %d, %+v: want 400, invalid argument, one line with %q", resp.StatusCode, e, tc.want)
			}
		})
	}
}

// The socket is its owner's only, and a stale one is replaced.
func TestListen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", SocketName)
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves the file, as a killed server does
	ln, err = Listen(path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer ln.Close()
	for p, want := range map[string]string{path: "Srw-------", filepath.Dir(path): "drwx------"} {
		if st, err := os.Lstat(p); err != nil || st.Mode().String() != want {
			t.Errorf("%s: %v, %v; want mode %s", p, st.Mode(), err, want)
		}
	}
}

// TestAutoPublishedPort: a port published without a host port gets the
// first free one of 30000-32767, which an update keeps.
func TestAutoPublishedPort(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	a := web("busybox", 2)
	a.Spec.Ports = []api.PortConfig{{TargetPort: 80}, {TargetPort: 443, PublishedPort: 30001}}
	got, err := c.Create(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Spec.Ports; p[0].PublishedPort != 30000 || p[1].PublishedPort != 30001 {
		t.Fatalf("ports %+v: want 30000 picked for 80 and 30001 kept", p)
	}
	b := web("busybox", 1)
	b.Name = "api"
	b.Spec.Ports = []api.PortConfig{{TargetPort: 80}}
	if got, err := c.Create(ctx, b); err != nil || got.Spec.Ports[0].PublishedPort != 30002 {
		t.Fatalf("second service: %+v, %v; want 30002", got, err)
	}
	got.Spec.Ports = []api.PortConfig{{TargetPort: 80}, {TargetPort: 443, PublishedPort: 30001}}
	n := 3
	got.Spec.Replicas = &n
	up, err := c.Update(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if p := up.Spec.Ports; p[0].PublishedPort != 30000 {
		t.Errorf("after an update: ports %+v, want 80 still on 30000", p)
	}
}

// TestHostPortHeld: a host port the nodes cannot publish is refused as
// bad input, and one picked for a port published without one is skipped.
func TestHostPortHeld(t *testing.T) {
	held := func(_ context.Context, _ string, ports []api.PortConfig) error {
		for _, p := range ports {
			if p.PublishedPort == 8080 || p.PublishedPort == 30000 {
				return fmt.Errorf("port %d/tcp is already published by container abc: %w", p.PublishedPort, errdefs.ErrConflict)
			}
		}
		return nil
	}
	c, _ := startChecking(t, held)
	ctx := context.Background()
	a := web("busybox", 1)
	a.Spec.Ports = []api.PortConfig{{TargetPort: 80, PublishedPort: 8080}}
	_, err := c.Create(ctx, a)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "container abc") {
		t.Fatalf("create on a held port: %v; want invalid argument naming the holder", err)
	}
	a.Spec.Ports = []api.PortConfig{{TargetPort: 80}}
	got, err := c.Create(ctx, a)
	if err != nil || got.Spec.Ports[0].PublishedPort != 30001 {
		t.Fatalf("create with a picked port: %+v, %v; want 30001, 30000 being held", got, err)
	}
	got.Spec.Ports = []api.PortConfig{{TargetPort: 80, PublishedPort: 8080}}
	if _, err := c.Update(ctx, got); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("update to a held port: %v", err)
	}
}

// TestServiceByID: a service is found by its name, its ID or a prefix of
// its ID that is unique, as Docker finds them.
func TestServiceByID(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	var created api.Service
	for { // an ID that starts with a digit, which no name may
		s, err := c.Create(ctx, web("busybox", 1))
		if err != nil {
			t.Fatal(err)
		}
		if s.ID[0] >= '0' && s.ID[0] <= '9' {
			created = s
			break
		}
		if err := c.Remove(ctx, "web"); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{created.ID, created.ID[:12], created.ID[:3]} {
		if got, err := c.Service(ctx, ref); err != nil || got.Name != "web" {
			t.Errorf("Service(%s) = %s, %v; want web", ref, got.Name, err)
		}
	}
	if _, err := c.Service(ctx, "zzzzzzzzzzzz"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("an unknown ID: %v, want not found", err)
	}
	if err := c.Remove(ctx, created.ID[:12]); err != nil {
		t.Fatalf("remove by ID: %v", err)
	}
	if _, err := c.Service(ctx, "web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("after remove by ID: %v, want not found", err)
	}
}
