package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/cluster/agent"
	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/autoscale"
	"github.com/berth-dev/berth/internal/cluster/controller"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

func init() { wirePlane = wireNode }

// heartbeat is how often the node's record is written again (its
// Heartbeat, and its capacity should the machine's limits change).
const heartbeat = 30 * time.Second

// wireNode runs this machine as one node of the plane: its agent over the
// root's engine, registered in the store, the controller that places tasks
// on it, and the autoscalers.
func wireNode(p *Plane) error {
	eng, err := p.Root.Engine()
	if err != nil {
		return err
	}
	nets, err := p.Root.Networks()
	if err != nil {
		return err
	}
	// The agent's activator wakes the autoscalers, which read the agent:
	// a connection may come before they exist.
	var scaler atomic.Pointer[autoscale.Controller]
	wake := func(service string) {
		if s := scaler.Load(); s != nil {
			s.Wake(service)
		}
	}
	a := agent.New(eng, p.NodeID, agent.WithLogger(p.Log), agent.WithNetworks(nets), agent.WithActivator(wake))
	scaler.Store(autoscale.New(p.Store, []autoscale.Metrics{a}, a.RecordScale, p.Log))
	ctl := controller.New(p.Store, map[string]controller.Runner{p.NodeID: a})
	p.Checks.Ports, p.Checks.Autoscaler = a.CheckPorts, autoscale.Check
	p.Parts = append(p.Parts,
		func(ctx context.Context) error {
			defer a.Close()
			return ctl.Run(ctx)
		},
		func(ctx context.Context) error { return registerNode(ctx, p.Store, p.NodeID, a) },
		scaler.Load().Run)
	return nil
}

// registerNode writes the node's record at once, as ready, and then every
// heartbeat until ctx ends.
func registerNode(ctx context.Context, st store.Store, id string, a *agent.Agent) error {
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		if err := putNode(ctx, st, id, a); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// putNode writes this node's record, keeping its creation time.
func putNode(ctx context.Context, st store.Store, id string, a *agent.Agent) error {
	u, err := a.Usage(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	host, _ := os.Hostname()
	n := api.Node{ID: id, Name: host, Capacity: u.Capacity, State: api.NodeReady, Heartbeat: now, CreatedAt: now}
	rev := int64(0)
	kv, err := st.Get(ctx, api.NodeKey(id))
	switch {
	case err == nil:
		var old api.Node
		if json.Unmarshal(kv.Value, &old) == nil && !old.CreatedAt.IsZero() {
			n.CreatedAt, n.Labels, n.Address = old.CreatedAt, old.Labels, old.Address
		}
		rev = kv.ModRevision
	case !errors.Is(err, errdefs.ErrNotFound):
		return fmt.Errorf("node %s: %w", id, err)
	}
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if _, err := st.Put(ctx, api.NodeKey(id), b, rev); err != nil {
		return fmt.Errorf("register node %s: %w", id, err)
	}
	return nil
}
