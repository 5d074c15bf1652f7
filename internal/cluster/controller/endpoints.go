package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// endpoints returns what the service's nodes balance its traffic over: its
// networks, its ports and the tasks wanted and ready. A task taken out is
// not among them from the moment its removal is committed. A service with
// an autoscaler that may take it to zero replicas is activated.
func (p *pass) endpoints(ctx context.Context) (api.ServiceEndpoints, error) {
	e := api.ServiceEndpoints{Service: p.v.name, Networks: p.v.spec.Template.Networks, Ports: p.v.spec.Ports,
		ClientAffinity: p.v.spec.SessionAffinity == api.AffinityClientIP}
	kv, err := p.c.st.Get(ctx, api.AutoscalerKey(p.v.name))
	switch {
	case err == nil:
		var a api.Autoscaler
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			return e, fmt.Errorf("stored %s: %w", kv.Key, err)
		}
		e.Activate = a.Spec.MinReplicas == 0
	case !errors.Is(err, errdefs.ErrNotFound):
		return e, err
	}
	for _, t := range p.v.active() {
		if t.Status.State == api.TaskReady {
			e.Tasks = append(e.Tasks, t.ID)
		}
	}
	slices.Sort(e.Tasks)
	return e, nil
}

// publish hands the service's endpoints to every Runner when they changed
// since it last did, and records the virtual IPs and endpoints in the
// service's status. A Runner that fails (a host port a container holds,
// say) does not hold up the rest of the pass, which runs the replicas all
// the same: it is logged and tried again a second later.
func (p *pass) publish(ctx context.Context) error {
	e, err := p.endpoints(ctx)
	if err != nil {
		return err
	}
	c := p.c
	c.mu.Lock()
	last, ok := c.published[p.v.svc.ID]
	c.mu.Unlock()
	st := &p.v.svc.Status
	if ok && last.Equal(e) && slices.Equal(st.Endpoints, e.Tasks) {
		return nil
	}
	var vips []api.VirtualIP
	var errs []error
	for _, r := range c.runners {
		got, err := r.Publish(ctx, e)
		errs = append(errs, err)
		for _, v := range got {
			if !slices.Contains(vips, v) {
				vips = append(vips, v)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		log(ctx).Warn("publish service", "service", p.v.name, "err", err)
		p.wake(time.Second)
		return nil
	}
	c.mu.Lock()
	c.published[p.v.svc.ID] = e
	c.mu.Unlock()
	if slices.Equal(st.VirtualIPs, vips) && slices.Equal(st.Endpoints, e.Tasks) {
		return nil
	}
	st.VirtualIPs, st.Endpoints = vips, e.Tasks
	return c.commit(ctx, p.v, nil)
}

// drain waits out the service's drain delay if any of ts took traffic
// before publish left them out, so that the connections they serve finish
// before they get their stop signal.
func (p *pass) drain(ctx context.Context, served bool) {
	if d := (*p.v.spec.DrainDelay).Std(); served && d > 0 {
		sleep(ctx, d)
	}
}

// unpublish removes from every Runner the load balancing of the services
// not in live (by name), and forgets what was published for service IDs
// not in liveIDs. It forgets after the Runners: a service created since
// live was listed, published meanwhile and unpublished by mistake here,
// is then published again by its next pass (a resync's at the latest).
func (c *Controller) unpublish(ctx context.Context, live, liveIDs map[string]bool) error {
	var errs []error
	for _, r := range c.runners {
		errs = append(errs, r.Unpublish(ctx, func(name string) bool { return live[name] }))
	}
	c.mu.Lock()
	for id := range c.published {
		if !liveIDs[id] {
			delete(c.published, id)
		}
	}
	c.mu.Unlock()
	return errors.Join(errs...)
}
