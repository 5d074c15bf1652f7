package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// Ensure makes task t run: if its container exists it only reports it
// (starting one that was created but not started); otherwise it makes the
// image present by the template's pull policy, creates the container and
// starts it. A task that cannot run at all — a missing or invalid image,
// a bad template, a command that does not start — comes back with state
// rejected and the reason, and a nil error; the error is for the node's
// own failures.
func (a *Agent) Ensure(ctx context.Context, t api.Task) (api.TaskStatus, error) {
	name := ContainerName(t)
	cur, ok, err := a.find(ctx, t.ID, name)
	if err != nil {
		return api.TaskStatus{}, fmt.Errorf("task %s: %w", t.ID, err)
	}
	if !ok {
		st, err := a.create(ctx, t, name)
		if err != nil || st.State == api.TaskRejected {
			return st, err
		}
		if cur, ok, err = a.find(ctx, t.ID, name); err != nil || !ok {
			return api.TaskStatus{}, fmt.Errorf("task %s: container %s vanished after its creation: %w", t.ID, name, errors.Join(err, errdefs.ErrUnavailable))
		}
	}
	if cur.st.Status == container.Created {
		if _, err := a.e.Start(ctx, cur.c.ID, nil); err != nil {
			a.e.Remove(context.WithoutCancel(ctx), cur.c.ID, container.RemoveOptions{Force: true, Volumes: true})
			return rejected(t.ID, err), nil
		}
		if cur, ok, err = a.find(ctx, t.ID, name); err != nil || !ok {
			return api.TaskStatus{}, fmt.Errorf("task %s: container %s vanished after its start: %w", t.ID, name, errors.Join(err, errdefs.ErrUnavailable))
		}
	}
	return a.status(cur), nil
}

// create makes t's container; a rejected status says why it could not.
func (a *Agent) create(ctx context.Context, t api.Task, name string) (api.TaskStatus, error) {
	tpl := withDefaults(t.Template)
	img, err := a.e.Images().Ensure(ctx, tpl.Image, image.PullPolicy(tpl.PullPolicy), image.PullOptions{})
	if err != nil {
		if ctx.Err() != nil {
			return api.TaskStatus{}, err
		}
		return rejected(t.ID, err), nil
	}
	o, err := createOptions(t, tpl, name)
	if err != nil {
		return rejected(t.ID, err), nil
	}
	o.Image = img
	if _, err := a.e.Create(ctx, o); err != nil {
		switch {
		case errors.Is(err, errdefs.ErrAlreadyExists):
			return api.TaskStatus{}, nil // a concurrent Ensure of the same task made it
		case errors.Is(err, errdefs.ErrInvalidArgument), errors.Is(err, errdefs.ErrNotFound):
			return rejected(t.ID, err), nil
		}
		return api.TaskStatus{}, fmt.Errorf("task %s: %w", t.ID, err)
	}
	return api.TaskStatus{}, nil
}

// rejected is the status of a task that could not run, with err's message.
func rejected(id string, err error) api.TaskStatus {
	return api.TaskStatus{TaskID: id, State: api.TaskRejected, Message: oneLine(err.Error()), Timestamp: time.Now().UTC()}
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// createOptions turns a task's template (with its defaults) into what the
// engine creates.
func createOptions(t api.Task, tpl api.TaskTemplate, name string) (container.CreateOptions, error) {
	o := container.CreateOptions{Name: name, ImageRef: tpl.Image}
	c, h := &o.Config, &o.Host
	if tpl.Command != nil {
		o.EntrypointSet = true
		c.Entrypoint = tpl.Command
	}
	c.Cmd = tpl.Args
	c.Env, c.User, c.WorkingDir, c.StopSignal = tpl.Env, tpl.User, tpl.WorkDir, tpl.StopSignal
	grace := int((time.Duration(tpl.StopGracePeriod) + time.Second - 1) / time.Second)
	c.StopTimeout = &grace
	c.Labels = taskLabels(t)
	for _, m := range tpl.Mounts {
		cm := container.Mount{Type: string(m.Type), Source: m.Source, Destination: m.Target, ReadOnly: m.ReadOnly}
		switch m.Type {
		case api.MountVolume:
			cm.Anonymous = m.Source == ""
		case api.MountBind, api.MountTmpfs:
		default:
			return o, fmt.Errorf("mount %s: type %q: use bind, volume or tmpfs: %w", m.Target, m.Type, errdefs.ErrInvalidArgument)
		}
		h.Mounts = append(h.Mounts, cm)
	}
	if len(tpl.Networks) > 0 {
		h.NetworkMode, h.ExtraNetworks = tpl.Networks[0], tpl.Networks[1:]
	}
	h.Resources.Memory = tpl.Resources.Limits.MemoryBytes
	h.Resources.NanoCPUs = tpl.Resources.Limits.NanoCPUs
	h.RestartPolicy = container.RestartPolicy{Name: "no"}
	return o, nil
}
