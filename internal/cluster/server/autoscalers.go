package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// readAutoscaler returns the autoscaler of the service called name and
// its key's state, or a not-found error that says the service has none.
func (s *Server) readAutoscaler(ctx context.Context, name string) (api.Autoscaler, store.KeyValue, error) {
	kv, err := s.store.Get(ctx, api.AutoscalerKey(name))
	if errors.Is(err, errdefs.ErrNotFound) {
		return api.Autoscaler{}, kv, fmt.Errorf("service %s has no autoscaler: %w", name, errdefs.ErrNotFound)
	}
	if err != nil {
		return api.Autoscaler{}, kv, err
	}
	var a api.Autoscaler
	if err := json.Unmarshal(kv.Value, &a); err != nil {
		return api.Autoscaler{}, kv, fmt.Errorf("stored autoscaler %s: %w", name, err)
	}
	return a, kv, nil
}

// withAutoscaler returns svc with its autoscaler, if it has one, in
// svc.Autoscaler.
func (s *Server) withAutoscaler(ctx context.Context, svc api.Service) (api.Service, error) {
	a, _, err := s.readAutoscaler(ctx, svc.Name)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		svc.Autoscaler = nil
	case err != nil:
		return svc, err
	default:
		svc.Autoscaler = &a
	}
	return svc, nil
}

// answer is the answer of a handler that wrote or read svc: svc with its
// autoscaler.
func (s *Server) answer(ctx context.Context, svc api.Service, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	svc, err = s.withAutoscaler(ctx, svc)
	return http.StatusOK, svc, err
}

// missingResource says what a spec's targets need that the service's
// replicas lack — "CPU" (a CPU target needs a CPU reservation or limit)
// or "memory" — or "" if nothing: utilization is a share of one of them.
func missingResource(spec api.AutoscalerSpec, svc api.Service) string {
	r := svc.Spec.Template.Resources
	switch {
	case spec.CPUPercent > 0 && r.Reservations.NanoCPUs <= 0 && r.Limits.NanoCPUs <= 0:
		return "CPU"
	case spec.MemoryPercent > 0 && r.Reservations.MemoryBytes <= 0 && r.Limits.MemoryBytes <= 0:
		return "memory"
	}
	return ""
}

// autoscalerResources refuses a spec whose targets the service cannot
// measure (see missingResource).
func autoscalerResources(spec api.AutoscalerSpec, svc api.Service) error {
	switch missingResource(spec, svc) {
	case "CPU":
		return fmt.Errorf("--cpu-percent needs a CPU reservation or limit on the service (berth service update --reserve-cpu 0.5 %s): %w",
			svc.Name, errdefs.ErrInvalidArgument)
	case "memory":
		return fmt.Errorf("--memory-percent needs a memory reservation or limit on the service (berth service update --reserve-memory 256m %s): %w",
			svc.Name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// keepsAutoscalerResources refuses svc, an update of a stored service,
// if it takes away a reservation or limit the service's autoscaler needs.
// The caller holds s.mu.
func (s *Server) keepsAutoscalerResources(ctx context.Context, svc api.Service) error {
	a, _, err := s.readAutoscaler(ctx, svc.Name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if what := missingResource(a.Spec, svc); what != "" {
		return fmt.Errorf("service %s: its autoscaler has a %s target, which needs a %s reservation or limit (keep one, or first berth service autoscale %s --off): %w",
			svc.Name, strings.ToLower(what), what, svc.Name, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (s *Server) getAutoscaler(r *http.Request) (int, any, error) {
	svc, _, err := s.read(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	a, _, err := s.readAutoscaler(r.Context(), svc.Name)
	return http.StatusOK, a, err
}

// setAutoscaler creates or replaces the autoscaler of a service: the spec
// is the request's, the status and the creation time the previous
// autoscaler's.
func (s *Server) setAutoscaler(r *http.Request) (int, any, error) {
	ctx := r.Context()
	svc, _, err := s.read(ctx, r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	var in api.Autoscaler
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Service != "" && in.Service != svc.Name {
		return 0, nil, fmt.Errorf("autoscaler of service %s: it names service %s: %w", svc.Name, in.Service, errdefs.ErrInvalidArgument)
	}
	in.Service = svc.Name
	in.Spec.SetDefaults()
	if err := in.Validate(); err != nil {
		return 0, nil, err
	}
	if err := autoscalerResources(in.Spec, svc); err != nil {
		return 0, nil, err
	}
	// The deep check (a trigger's source that answers…) may take a while:
	// it runs before the lock, and the service is read again under it.
	if s.checks.Autoscaler != nil {
		if err := s.checks.Autoscaler(ctx, in, svc); err != nil {
			return 0, nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range casAttempts {
		// Under s.mu, no update of the service (which checks its
		// autoscaler) and no removal runs between this read and the write.
		svc, _, err := s.read(ctx, svc.Name)
		if err != nil {
			return 0, nil, err
		}
		if err := autoscalerResources(in.Spec, svc); err != nil {
			return 0, nil, err
		}
		out := api.Autoscaler{Service: svc.Name, Spec: in.Spec, UpdatedAt: s.now()}
		out.CreatedAt = out.UpdatedAt
		prev, kv, err := s.readAutoscaler(ctx, svc.Name)
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			kv.ModRevision = 0 // create only
		case err != nil:
			return 0, nil, err
		default:
			out.Status, out.CreatedAt = prev.Status, prev.CreatedAt
		}
		b, err := json.Marshal(out)
		if err != nil {
			return 0, nil, err
		}
		_, err = s.store.Put(ctx, api.AutoscalerKey(svc.Name), b, kv.ModRevision)
		if errors.Is(err, errdefs.ErrConflict) {
			continue // the autoscaler wrote its status, or another request won
		}
		return http.StatusOK, out, err
	}
	return 0, nil, fmt.Errorf("autoscaler of service %s: too many concurrent writes; try again: %w", svc.Name, errdefs.ErrConflict)
}

func (s *Server) removeAutoscaler(r *http.Request) (int, any, error) {
	ctx := r.Context()
	for range casAttempts {
		svc, _, err := s.read(ctx, r.PathValue("name"))
		if err != nil {
			return 0, nil, err
		}
		_, kv, err := s.readAutoscaler(ctx, svc.Name)
		if err != nil {
			return 0, nil, err
		}
		_, err = s.store.Delete(ctx, kv.Key, kv.ModRevision)
		if errors.Is(err, errdefs.ErrConflict) {
			continue
		}
		if errors.Is(err, errdefs.ErrNotFound) {
			return 0, nil, fmt.Errorf("service %s has no autoscaler: %w", svc.Name, errdefs.ErrNotFound)
		}
		return http.StatusNoContent, nil, err
	}
	return 0, nil, fmt.Errorf("autoscaler of service %s: too many concurrent writes; try again: %w", r.PathValue("name"), errdefs.ErrConflict)
}
