package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// casAttempts bounds how often a write that lost a compare-and-swap to a
// write that does not concern it (the controllers' status) is retried.
const casAttempts = 20

// resolve returns the name of the service ref names: its name, its ID or
// a prefix of its ID that no other service's ID starts with (as Docker
// takes them).
func (s *Server) resolve(ctx context.Context, ref string) (string, error) {
	if err := api.ValidateName(ref); err != nil && !idLike(ref) {
		return "", err
	}
	if _, err := s.store.Get(ctx, api.ServiceKey(ref)); !errors.Is(err, errdefs.ErrNotFound) {
		return ref, err
	}
	all, err := listKind[api.Service](ctx, s.store, api.ServicesPrefix)
	if err != nil {
		return "", err
	}
	var found []string
	for _, svc := range all {
		if strings.HasPrefix(svc.ID, ref) {
			found = append(found, svc.Name)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no such service: %s: %w", ref, errdefs.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("service ID %s is ambiguous: it starts the IDs of services %s: %w", ref, strings.Join(found, ", "), errdefs.ErrInvalidArgument)
}

// idLike reports whether ref could be (a prefix of) a service ID, which,
// unlike a name, may start with a digit.
func idLike(ref string) bool {
	return ref != "" && strings.Trim(ref, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}

// read returns the service ref names (see resolve) and its key's state.
func (s *Server) read(ctx context.Context, ref string) (api.Service, store.KeyValue, error) {
	name, err := s.resolve(ctx, ref)
	if err != nil {
		return api.Service{}, store.KeyValue{}, err
	}
	kv, err := s.store.Get(ctx, api.ServiceKey(name))
	if errors.Is(err, errdefs.ErrNotFound) {
		return api.Service{}, kv, fmt.Errorf("no such service: %s: %w", ref, errdefs.ErrNotFound)
	}
	if err != nil {
		return api.Service{}, kv, err
	}
	var svc api.Service
	if err := json.Unmarshal(kv.Value, &svc); err != nil {
		return api.Service{}, kv, fmt.Errorf("stored service %s: %w", name, err)
	}
	return svc, kv, nil
}

// modify applies change to the service called name and writes it back if
// change says so, compare-and-swap on the key; a write lost to another
// writer is tried again from a fresh read, so change must decide anew
// each time (and refuse, with an error, what it must not overwrite).
func (s *Server) modify(ctx context.Context, name string, change func(*api.Service) (bool, error)) (api.Service, error) {
	for range casAttempts {
		svc, kv, err := s.read(ctx, name)
		if err != nil {
			return api.Service{}, err
		}
		write, err := change(&svc)
		if err != nil || !write {
			return svc, err
		}
		svc.UpdatedAt, svc.Autoscaler = s.now(), nil
		b, err := json.Marshal(svc)
		if err != nil {
			return api.Service{}, err
		}
		_, err = s.store.Put(ctx, kv.Key, b, kv.ModRevision)
		if errors.Is(err, errdefs.ErrConflict) {
			continue
		}
		return svc, err
	}
	return api.Service{}, fmt.Errorf("service %s: too many concurrent writes; try again: %w", name, errdefs.ErrConflict)
}

func (s *Server) get(r *http.Request) (int, any, error) {
	svc, _, err := s.read(r.Context(), r.PathValue("name"))
	return s.answer(r.Context(), svc, err)
}

func (s *Server) list(r *http.Request) (int, any, error) {
	kvs, _, err := s.store.List(r.Context(), api.ServicesPrefix)
	if err != nil {
		return 0, nil, err
	}
	tasks, _, err := s.store.List(r.Context(), api.TasksPrefix)
	if err != nil {
		return 0, nil, err
	}
	scalers, err := listKind[api.Autoscaler](r.Context(), s.store, api.AutoscalersPrefix)
	if err != nil {
		return 0, nil, err
	}
	byService := map[string]*api.Autoscaler{}
	for i := range scalers {
		byService[scalers[i].Service] = &scalers[i]
	}
	out := make([]ServiceSummary, 0, len(kvs))
	index := map[string]int{}
	for _, kv := range kvs {
		var svc api.Service
		if err := json.Unmarshal(kv.Value, &svc); err != nil {
			return 0, nil, fmt.Errorf("stored service %s: %w", kv.Key, err)
		}
		svc.Autoscaler = byService[svc.Name]
		index[svc.ID] = len(out)
		out = append(out, ServiceSummary{Service: svc})
	}
	for _, kv := range tasks {
		var t api.Task
		if err := json.Unmarshal(kv.Value, &t); err != nil {
			return 0, nil, fmt.Errorf("stored task %s: %w", kv.Key, err)
		}
		i, ok := index[t.ServiceID]
		if !ok || t.DesiredState != api.TaskRunning {
			continue
		}
		switch t.Status.State {
		case api.TaskReady:
			out[i].Ready++
			out[i].Running++
		case api.TaskRunning:
			out[i].Running++
		}
	}
	return http.StatusOK, out, nil
}

func (s *Server) create(r *http.Request) (int, any, error) {
	var svc api.Service
	if err := decode(r, &svc); err != nil {
		return 0, nil, err
	}
	svc.Spec.SetDefaults()
	if err := svc.Validate(); err != nil {
		return 0, nil, err
	}
	now := s.now()
	svc.ID, svc.Generation, svc.Status, svc.CreatedAt, svc.UpdatedAt = NewID(), 1, api.ServiceStatus{}, now, now
	svc.Autoscaler = nil // stored apart, set by PUT …/autoscaler
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkPorts(r.Context(), &svc); err != nil {
		return 0, nil, err
	}
	b, err := json.Marshal(svc)
	if err != nil {
		return 0, nil, err
	}
	if _, err := s.store.Put(r.Context(), api.ServiceKey(svc.Name), b, 0); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			return 0, nil, fmt.Errorf("service %s already exists: %w", svc.Name, errdefs.ErrAlreadyExists)
		}
		return 0, nil, err
	}
	return http.StatusCreated, svc, nil
}

func (s *Server) update(r *http.Request) (int, any, error) {
	name, err := s.resolve(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	var in api.Service
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Name != "" && in.Name != name {
		return 0, nil, fmt.Errorf("service %s: cannot rename to %s: %w", name, in.Name, errdefs.ErrInvalidArgument)
	}
	in.Name = name
	in.Spec.SetDefaults()
	if err := in.Validate(); err != nil {
		return 0, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkPorts(r.Context(), &in); err != nil {
		return 0, nil, err
	}
	if err := s.keepsAutoscalerResources(r.Context(), in); err != nil {
		return 0, nil, err
	}
	svc, err := s.modify(r.Context(), name, func(svc *api.Service) (bool, error) {
		// A labels-only write keeps the generation but not UpdatedAt:
		// an update read before it would lose it.
		if svc.Generation != in.Generation || (!in.UpdatedAt.IsZero() && !in.UpdatedAt.Equal(svc.UpdatedAt)) {
			return false, fmt.Errorf("service %s was changed by someone else; try again: %w", name, errdefs.ErrConflict)
		}
		specChanged := !sameJSON(svc.Spec, in.Spec)
		if !specChanged && sameJSON(svc.Labels, in.Labels) {
			return false, nil // an update that changes nothing does nothing
		}
		if specChanged {
			svc.Generation++
		}
		svc.Spec, svc.Labels = in.Spec, in.Labels
		return true, nil
	})
	return s.answer(r.Context(), svc, err)
}

// remove deletes the service and its autoscaler, if it has one, in one
// transaction.
func (s *Server) remove(r *http.Request) (int, any, error) {
	ctx, name := r.Context(), r.PathValue("name")
	// Under s.mu, no autoscaler is set between the read and the delete.
	s.mu.Lock()
	defer s.mu.Unlock()
	for range casAttempts {
		svc, kv, err := s.read(ctx, name)
		if err != nil {
			return 0, nil, err
		}
		ops := []store.Op{store.OpDelete(kv.Key, kv.ModRevision)}
		_, akv, err := s.readAutoscaler(ctx, svc.Name)
		switch {
		case err == nil:
			ops = append(ops, store.OpDelete(akv.Key, akv.ModRevision))
		case !errors.Is(err, errdefs.ErrNotFound):
			return 0, nil, err
		}
		_, err = s.store.Txn(ctx, ops...)
		if errors.Is(err, errdefs.ErrConflict) || errors.Is(err, errdefs.ErrNotFound) {
			continue // changed since read: read again
		}
		return http.StatusNoContent, nil, err
	}
	return 0, nil, fmt.Errorf("service %s: too many concurrent writes; try again: %w", name, errdefs.ErrConflict)
}

func (s *Server) scale(r *http.Request) (int, any, error) {
	var req ScaleRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Replicas < 0 {
		return 0, nil, fmt.Errorf("replicas %d: must be 0 or more: %w", req.Replicas, errdefs.ErrInvalidArgument)
	}
	svc, err := s.modify(r.Context(), r.PathValue("name"), func(svc *api.Service) (bool, error) {
		if svc.Spec.DesiredReplicas() == req.Replicas {
			return false, nil
		}
		svc.Spec.Replicas = &req.Replicas
		svc.Generation++
		return true, nil
	})
	return s.answer(r.Context(), svc, err)
}

// rollback sets the service's template to that of an earlier revision —
// ?to=N, else the latest revision before the one it runs — and asks the
// controllers to roll back to it (Status.Update rollback_started), in one
// write.
func (s *Server) rollback(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	var to int64
	if q := r.URL.Query().Get("to"); q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil || n < 1 {
			return 0, nil, fmt.Errorf("revision %q: must be a number from 1: %w", q, errdefs.ErrInvalidArgument)
		}
		to = n
	}
	svc, err := s.modify(r.Context(), name, func(svc *api.Service) (bool, error) {
		revs, err := s.listRevisions(r.Context(), svc.ID)
		if err != nil {
			return false, err
		}
		target, err := rollbackTarget(*svc, revs, to)
		if err != nil {
			return false, err
		}
		if target.Hash == svc.Spec.Template.Hash() {
			return false, nil // already there
		}
		svc.Spec.Template = target.Template
		svc.Generation++
		svc.Status.Update = api.UpdateRollbackStarted
		svc.Status.Message = fmt.Sprintf("rollback to revision %d requested", target.Number)
		svc.Status.UpdateStart, svc.Status.UpdateEnd = s.now(), time.Time{}
		return true, nil
	})
	return s.answer(r.Context(), svc, err)
}

// rollbackTarget picks the revision of revs (in number order) that a
// rollback of svc goes to: number to, or with to 0 the latest before
// svc.Status.Revision.
func rollbackTarget(svc api.Service, revs []api.Revision, to int64) (api.Revision, error) {
	if to != 0 {
		for _, rev := range revs {
			if rev.Number == to {
				return rev, nil
			}
		}
		nums := make([]string, len(revs))
		for i, rev := range revs {
			nums[i] = strconv.FormatInt(rev.Number, 10)
		}
		have := "it has none yet"
		if len(nums) > 0 {
			have = "it has " + strings.Join(nums, ", ")
		}
		return api.Revision{}, &classed{fmt.Sprintf("service %s has no revision %d (%s): %v", svc.Name, to, have, errdefs.ErrNotFound),
			[]error{errdefs.ErrNotFound, errdefs.ErrInvalidArgument}}
	}
	for _, rev := range slices.Backward(revs) {
		if rev.Number < svc.Status.Revision {
			return rev, nil
		}
	}
	return api.Revision{}, fmt.Errorf("service %s has no earlier revision to roll back to: %w", svc.Name, errdefs.ErrInvalidArgument)
}

func (s *Server) listRevisions(ctx context.Context, serviceID string) ([]api.Revision, error) {
	return listKind[api.Revision](ctx, s.store, api.RevisionPrefix(serviceID))
}

func (s *Server) revisions(r *http.Request) (int, any, error) {
	svc, _, err := s.read(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	revs, err := s.listRevisions(r.Context(), svc.ID)
	return http.StatusOK, revs, err
}

func (s *Server) tasks(r *http.Request) (int, any, error) {
	svc, _, err := s.read(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	tasks, err := listKind[api.Task](r.Context(), s.store, api.TaskPrefix(svc.ID))
	if err != nil {
		return 0, nil, err
	}
	// By slot, the newest task of each first (as `service ps` shows them).
	slices.SortStableFunc(tasks, func(a, b api.Task) int {
		if a.Slot != b.Slot {
			return a.Slot - b.Slot
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	return http.StatusOK, tasks, nil
}

func (s *Server) nodes(r *http.Request) (int, any, error) {
	nodes, err := listKind[api.Node](r.Context(), s.store, api.NodesPrefix)
	return http.StatusOK, nodes, err
}

// listKind decodes every object under prefix.
func listKind[T any](ctx context.Context, st store.Store, prefix string) ([]T, error) {
	kvs, _, err := st.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("stored %s: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// Swarm's range of the host ports it picks for a port published without
// one.
const autoPortFirst, autoPortLast = 30000, 32767

// checkPorts refuses a host port of svc that another service publishes or
// that the nodes cannot publish (Server.checks.Ports), and gives each port
// published without a host port one (assignPorts).
func (s *Server) checkPorts(ctx context.Context, svc *api.Service) error {
	if len(svc.Spec.Ports) == 0 {
		return nil
	}
	others, err := listKind[api.Service](ctx, s.store, api.ServicesPrefix)
	if err != nil {
		return err
	}
	var prev *api.Service // as stored, for an update
	if i := slices.IndexFunc(others, func(o api.Service) bool { return o.Name == svc.Name }); i >= 0 {
		prev = &others[i]
		others = slices.Delete(slices.Clone(others), i, i+1)
	}
	for _, o := range others {
		for _, op := range o.Spec.Ports {
			for _, p := range svc.Spec.Ports {
				if p.PublishedPort != 0 && p.PublishedPort == op.PublishedPort && p.Protocol == op.Protocol {
					return &classed{fmt.Sprintf("port %d/%s is already published by service %s: %v", p.PublishedPort, p.Protocol, o.Name, errdefs.ErrConflict),
						[]error{errdefs.ErrInvalidArgument, errdefs.ErrConflict}}
				}
			}
		}
	}
	onHost := func(ports ...api.PortConfig) error {
		if s.checks.Ports == nil {
			return nil
		}
		return s.checks.Ports(ctx, svc.Name, ports)
	}
	if err := onHost(svc.Spec.Ports...); err != nil {
		return &classed{err.Error(), []error{errdefs.ErrInvalidArgument, err}}
	}
	return assignPorts(svc, prev, others, func(p api.PortConfig) bool { return onHost(p) == nil })
}

// assignPorts gives each port of svc published without a host port the
// host port prev (the stored service, nil on create) had for the same
// target port, or else the first of Swarm's range that neither svc nor
// another service publishes and that the host can publish (usable).
func assignPorts(svc, prev *api.Service, others []api.Service, usable func(api.PortConfig) bool) error {
	taken := map[int]bool{}
	for _, o := range append(others, *svc) {
		for _, p := range o.Spec.Ports {
			taken[p.PublishedPort] = true
		}
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.PublishedPort != 0 {
			continue
		}
		if prev != nil {
			for _, op := range prev.Spec.Ports {
				if p.PublishedPort == 0 && op.TargetPort == p.TargetPort && op.Protocol == p.Protocol && !taken[op.PublishedPort] {
					p.PublishedPort, taken[op.PublishedPort] = op.PublishedPort, true
				}
			}
		}
		for port := autoPortFirst; p.PublishedPort == 0 && port <= autoPortLast; port++ {
			if c := *p; !taken[port] {
				if c.PublishedPort = port; usable(c) {
					p.PublishedPort, taken[port] = port, true
				}
			}
		}
		if p.PublishedPort == 0 {
			return fmt.Errorf("port %d/%s: no free host port left in %d-%d: %w", p.TargetPort, p.Protocol, autoPortFirst, autoPortLast, errdefs.ErrUnavailable)
		}
	}
	return nil
}

// sameJSON reports whether a and b encode alike.
func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// NewID returns a new object ID: 25 random lowercase letters and digits,
// as Swarm's.
func NewID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, 25)
	b := make([]byte, 32)
	for len(out) < cap(out) {
		rand.Read(b)
		for _, c := range b {
			if c < 252 && len(out) < cap(out) { // 252 = 7×36: no letter more likely than another
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out)
}
