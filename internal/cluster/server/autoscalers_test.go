package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// reserved is web with a CPU reservation of half a CPU per replica.
func reserved(replicas int) api.Service {
	svc := web("busybox", replicas)
	svc.Spec.Template.Resources.Reservations.NanoCPUs = 5e8
	return svc
}

func cpuScaler(min, max, percent int) api.Autoscaler {
	return api.Autoscaler{Spec: api.AutoscalerSpec{MinReplicas: min, MaxReplicas: max, CPUPercent: percent}}
}

// storedAutoscaler reads the autoscaler key of web as the store has it.
func storedAutoscaler(t *testing.T, st store.Store) (api.Autoscaler, error) {
	t.Helper()
	kv, err := st.Get(context.Background(), api.AutoscalerKey("web"))
	if err != nil {
		return api.Autoscaler{}, err
	}
	var a api.Autoscaler
	if err := json.Unmarshal(kv.Value, &a); err != nil {
		t.Fatal(err)
	}
	return a, nil
}

func TestAutoscalerLifecycle(t *testing.T) {
	c, st := start(t)
	ctx := context.Background()
	created, err := c.Create(ctx, reserved(2))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Autoscaler(ctx, "web")
	if !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "service web has no autoscaler: not found" {
		t.Fatalf("Autoscaler before one is set: %v", err)
	}
	if err := c.RemoveAutoscaler(ctx, "web"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("RemoveAutoscaler before one is set: %v, want not found", err)
	}

	// Create: defaults filled in, the service named, the times set.
	a, err := c.SetAutoscaler(ctx, "web", cpuScaler(2, 10, 50))
	if err != nil {
		t.Fatal(err)
	}
	if a.Service != "web" || a.Spec.PollingInterval.Std() != api.DefaultPollingInterval || a.Spec.ScaleDownStabilization == nil ||
		a.CreatedAt.IsZero() || !a.CreatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("SetAutoscaler = %+v: want service web, defaults, CreatedAt = UpdatedAt", a)
	}
	if got, err := c.Autoscaler(ctx, "web"); err != nil || !sameJSON(got, a) {
		t.Fatalf("Autoscaler = %+v, %v; want %+v", got, err, a)
	}
	// The service is answered with it, but not stored with it.
	if svc, err := c.Service(ctx, "web"); err != nil || svc.Autoscaler == nil || svc.Autoscaler.Spec.MaxReplicas != 10 {
		t.Fatalf("Service = %+v, %v; want its autoscaler", svc, err)
	}
	if list, err := c.Services(ctx); err != nil || len(list) != 1 || list[0].Service.Autoscaler == nil {
		t.Fatalf("Services = %+v, %v; want web with its autoscaler", list, err)
	}
	if scaled, err := c.Scale(ctx, "web", 4); err != nil || scaled.Autoscaler == nil {
		t.Fatalf("Scale = %+v, %v; want the service with its autoscaler", scaled, err)
	}
	kv, _ := st.Get(ctx, api.ServiceKey("web"))
	if strings.Contains(string(kv.Value), "autoscaler") {
		t.Fatalf("stored service has its autoscaler: %s", kv.Value)
	}

	// The autoscaler writes its status; a replace keeps it, and CreatedAt.
	status := api.AutoscalerStatus{CurrentReplicas: 4, DesiredReplicas: 5,
		Decisions: []api.ScaleDecision{{Time: time.Now().UTC(), From: 4, To: 5, Reason: "cpu 90% of 50% target"}}}
	kv, _ = st.Get(ctx, api.AutoscalerKey("web"))
	withStatus := a
	withStatus.Status = status
	b, _ := json.Marshal(withStatus)
	if _, err := st.Put(ctx, kv.Key, b, kv.ModRevision); err != nil {
		t.Fatal(err)
	}
	change := cpuScaler(3, 8, 60)
	change.Service = "web"
	change.Status = api.AutoscalerStatus{CurrentReplicas: 99} // the request's status is not the API's to write
	got, err := c.SetAutoscaler(ctx, created.ID[:8], change)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.MinReplicas != 3 || got.Spec.MaxReplicas != 8 || got.Status.DesiredReplicas != 5 || len(got.Status.Decisions) != 1 ||
		!got.CreatedAt.Equal(a.CreatedAt) || got.UpdatedAt.Before(a.UpdatedAt) {
		t.Fatalf("replaced = %+v; want 3-8, the status and CreatedAt kept", got)
	}
	if stored, err := storedAutoscaler(t, st); err != nil || !sameJSON(stored, got) {
		t.Fatalf("stored %+v, %v; want %+v", stored, err, got)
	}

	if err := c.RemoveAutoscaler(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := storedAutoscaler(t, st); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after RemoveAutoscaler: %v, want the key gone", err)
	}
	if svc, err := c.Service(ctx, "web"); err != nil || svc.Autoscaler != nil || svc.Spec.DesiredReplicas() != 4 {
		t.Fatalf("Service after RemoveAutoscaler = %+v, %v; want no autoscaler, 4 replicas kept", svc, err)
	}
	if err := c.RemoveAutoscaler(ctx, "web"); errdefs.ExitCode(err) != 2 || err.Error() != "service web has no autoscaler: not found" {
		t.Fatalf("second RemoveAutoscaler: %v", err)
	}
}

// Each bad autoscaler is refused with one line and leaves the one before
// as it was.
func TestAutoscalerRefused(t *testing.T) {
	var checked []api.Service
	hook := func(_ context.Context, a api.Autoscaler, svc api.Service) error {
		checked = append(checked, svc)
		for _, tr := range a.Spec.Triggers {
			if tr.Metadata["address"] == "nowhere:6379" {
				return fmt.Errorf("redis-list: nowhere:6379 does not answer: %w", errdefs.ErrInvalidArgument)
			}
		}
		return nil
	}
	c, st := startWith(t, Checks{Autoscaler: hook})
	ctx := context.Background()
	if _, err := c.Create(ctx, reserved(2)); err != nil {
		t.Fatal(err)
	}
	plain := web("busybox", 1)
	plain.Name = "plain"
	if _, err := c.Create(ctx, plain); err != nil {
		t.Fatal(err)
	}
	before, err := c.SetAutoscaler(ctx, "web", cpuScaler(2, 10, 50))
	if err != nil {
		t.Fatal(err)
	}
	if len(checked) != 1 || checked[0].Name != "web" || checked[0].ID == "" {
		t.Fatalf("the hook saw %+v; want the stored web once", checked)
	}
	redis := func(addr string) api.Autoscaler {
		return api.Autoscaler{Spec: api.AutoscalerSpec{MinReplicas: 1, MaxReplicas: 3,
			Triggers: []api.Trigger{{Type: api.TriggerRedisList, Metadata: map[string]string{"address": addr, "list": "jobs", "target": "5"}}}}}
	}
	memory := api.Autoscaler{Spec: api.AutoscalerSpec{MinReplicas: 1, MaxReplicas: 3, MemoryPercent: 80}}
	other := cpuScaler(1, 3, 50)
	other.Service = "api"
	for _, tc := range []struct {
		name, service string
		a             api.Autoscaler
		code          int
		want          string
	}{
		{"unknown service", "nope", cpuScaler(1, 2, 50), 2, "no such service: nope: not found"},
		{"min above max", "web", cpuScaler(3, 2, 50), 2, "minReplicas: 3 is above maxReplicas 2: invalid argument"},
		{"negative target", "web", cpuScaler(1, 2, -5), 2, "cpuPercent: -5: must be above 0"},
		{"nothing to scale on", "web", cpuScaler(1, 2, 0), 2, "nothing to scale on"},
		{"another service's", "web", other, 2, "autoscaler of service web: it names service api: invalid argument"},
		{"memory without a reservation", "web", memory, 2,
			"--memory-percent needs a memory reservation or limit on the service (berth service update --reserve-memory 256m web): invalid argument"},
		{"cpu without a reservation", "plain", cpuScaler(1, 2, 50), 2,
			"--cpu-percent needs a CPU reservation or limit on the service (berth service update --reserve-cpu 0.5 plain): invalid argument"},
		{"the hook refuses", "web", redis("nowhere:6379"), 2, "redis-list: nowhere:6379 does not answer: invalid argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.SetAutoscaler(ctx, tc.service, tc.a)
			if errdefs.ExitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("SetAutoscaler: %v (exit %d); want exit %d, one line with %q", err, errdefs.ExitCode(err), tc.code, tc.want)
			}
		})
	}
	if got, err := storedAutoscaler(t, st); err != nil || !sameJSON(got, before) {
		t.Fatalf("after bad input: %+v, %v; want %+v", got, err, before)
	}
	if _, err := st.Get(ctx, api.AutoscalerKey("plain")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("plain got an autoscaler: %v", err)
	}
	// What the hook passes is set.
	if _, err := c.SetAutoscaler(ctx, "web", redis("redis:6379")); err != nil {
		t.Fatalf("redis trigger: %v", err)
	}
}

// An update that takes away the reservation or limit the autoscaler
// measures by is refused; one that keeps a limit in its place is not.
func TestUpdateKeepsAutoscalerResources(t *testing.T) {
	c, _ := start(t)
	ctx := context.Background()
	svc, err := c.Create(ctx, reserved(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetAutoscaler(ctx, "web", cpuScaler(1, 4, 50)); err != nil {
		t.Fatal(err)
	}
	bare := svc
	bare.Spec.Template.Resources = api.ResourceRequirements{}
	_, err = c.Update(ctx, bare)
	want := "service web: its autoscaler has a cpu target, which needs a CPU reservation or limit (keep one, or first berth service autoscale web --off): invalid argument"
	if errdefs.ExitCode(err) != 2 || err.Error() != want {
		t.Fatalf("update without a reservation: %v; want %q", err, want)
	}
	if got, _ := c.Service(ctx, "web"); got.Generation != 1 {
		t.Fatalf("the refused update wrote generation %d", got.Generation)
	}
	limited := svc
	limited.Spec.Template.Resources = api.ResourceRequirements{Limits: api.Resources{NanoCPUs: 1e9}}
	if got, err := c.Update(ctx, limited); err != nil || got.Generation != 2 || got.Autoscaler == nil {
		t.Fatalf("update to a limit = %+v, %v; want generation 2, with its autoscaler", got, err)
	}
	// Without the autoscaler, the reservation may go.
	if err := c.RemoveAutoscaler(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Service(ctx, "web")
	got.Spec.Template.Resources = api.ResourceRequirements{}
	if _, err := c.Update(ctx, got); err != nil {
		t.Fatalf("update without an autoscaler: %v", err)
	}
}

// Removing a service removes its autoscaler: a new service of the name
// has none.
func TestRemoveServiceRemovesAutoscaler(t *testing.T) {
	c, st := start(t)
	ctx := context.Background()
	if _, err := c.Create(ctx, reserved(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetAutoscaler(ctx, "web", cpuScaler(1, 3, 50)); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := storedAutoscaler(t, st); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("autoscaler after the service's removal: %v, want gone", err)
	}
	if _, err := c.Autoscaler(ctx, "web"); err == nil || err.Error() != "no such service: web: not found" {
		t.Fatalf("Autoscaler of a removed service: %v", err)
	}
	if _, err := c.Create(ctx, reserved(1)); err != nil {
		t.Fatal(err)
	}
	if svc, err := c.Service(ctx, "web"); err != nil || svc.Autoscaler != nil {
		t.Fatalf("new web = %+v, %v; want no autoscaler", svc.Autoscaler, err)
	}
	// A service without an autoscaler is removed as before.
	if err := c.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
}
