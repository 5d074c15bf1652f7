package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Client calls the API of the control plane at one unix socket. Its
// errors are one line of the class the server gave (errdefs.FromClass);
// a control plane that does not answer gives errdefs.ErrUnavailable. An
// unknown service is errdefs.ErrNotFound and errdefs.ErrInvalidArgument
// both: to the command that named it, it is bad input.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client of the control plane listening at socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &Client{socket: socket, http: &http.Client{Transport: tr}}
}

// Socket returns the path the client connects to.
func (c *Client) Socket() string { return c.socket }

// Ping asks the control plane whether it answers.
func (c *Client) Ping(ctx context.Context) (Ping, error) {
	var p Ping
	return p, c.do(ctx, http.MethodGet, "/v1/ping", nil, &p)
}

// Services lists every service with its task counts.
func (c *Client) Services(ctx context.Context) ([]ServiceSummary, error) {
	var out []ServiceSummary
	return out, c.do(ctx, http.MethodGet, "/v1/services", nil, &out)
}

// Service returns the service called name.
func (c *Client) Service(ctx context.Context, name string) (api.Service, error) {
	var svc api.Service
	return svc, c.do(ctx, http.MethodGet, servicePath(name, ""), nil, &svc)
}

// Create creates svc (its Name and Spec, Labels) and returns it as stored,
// with its ID, defaults and generation 1.
func (c *Client) Create(ctx context.Context, svc api.Service) (api.Service, error) {
	var out api.Service
	return out, c.do(ctx, http.MethodPost, "/v1/services", svc, &out)
}

// Update replaces the spec and labels of the service svc names, if its
// generation is still svc.Generation and (when set) it was last written
// at svc.UpdatedAt; otherwise it fails with errdefs.ErrConflict.
func (c *Client) Update(ctx context.Context, svc api.Service) (api.Service, error) {
	var out api.Service
	return out, c.do(ctx, http.MethodPut, servicePath(svc.Name, ""), svc, &out)
}

// Remove removes the service called name.
func (c *Client) Remove(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, servicePath(name, ""), nil, nil)
}

// Scale sets the service's number of replicas.
func (c *Client) Scale(ctx context.Context, name string, replicas int) (api.Service, error) {
	var out api.Service
	return out, c.do(ctx, http.MethodPost, servicePath(name, "/scale"), ScaleRequest{Replicas: replicas}, &out)
}

// Rollback asks for a rollback to revision to, or with to 0 to the
// revision before the one the service runs. A service already at that
// template is returned unchanged.
func (c *Client) Rollback(ctx context.Context, name string, to int64) (api.Service, error) {
	p := servicePath(name, "/rollback")
	if to != 0 {
		p += "?to=" + strconv.FormatInt(to, 10)
	}
	var out api.Service
	return out, c.do(ctx, http.MethodPost, p, nil, &out)
}

// Tasks returns the service's tasks, current and past, by slot and the
// newest first.
func (c *Client) Tasks(ctx context.Context, name string) ([]api.Task, error) {
	var out []api.Task
	return out, c.do(ctx, http.MethodGet, servicePath(name, "/tasks"), nil, &out)
}

// Revisions returns the service's revisions in number order.
func (c *Client) Revisions(ctx context.Context, name string) ([]api.Revision, error) {
	var out []api.Revision
	return out, c.do(ctx, http.MethodGet, servicePath(name, "/revisions"), nil, &out)
}

// SetAutoscaler creates or replaces the autoscaler of the service called
// name with a's spec (a.Service may be empty) and returns it as stored,
// with its defaults and the status of the one it replaced.
func (c *Client) SetAutoscaler(ctx context.Context, name string, a api.Autoscaler) (api.Autoscaler, error) {
	var out api.Autoscaler
	return out, c.do(ctx, http.MethodPut, servicePath(name, "/autoscaler"), a, &out)
}

// Autoscaler returns the autoscaler of the service called name; a service
// without one gives errdefs.ErrNotFound.
func (c *Client) Autoscaler(ctx context.Context, name string) (api.Autoscaler, error) {
	var out api.Autoscaler
	return out, c.do(ctx, http.MethodGet, servicePath(name, "/autoscaler"), nil, &out)
}

// RemoveAutoscaler removes the autoscaler of the service called name,
// which keeps the replicas it has; a service without one gives
// errdefs.ErrNotFound.
func (c *Client) RemoveAutoscaler(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, servicePath(name, "/autoscaler"), nil, nil)
}

// Nodes returns the registered nodes.
func (c *Client) Nodes(ctx context.Context) ([]api.Node, error) {
	var out []api.Node
	return out, c.do(ctx, http.MethodGet, "/v1/nodes", nil, &out)
}

func servicePath(name, rest string) string {
	return "/v1/services/" + url.PathEscape(name) + rest
}

// do sends one request with in as its JSON body (when not nil) and decodes
// the answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://berth"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("control plane at %s: not answering: %w", c.socket, errdefs.ErrUnavailable)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("control plane at %s: %v: %w", c.socket, err, errdefs.ErrUnavailable)
	}
	if resp.StatusCode >= 300 {
		var e errorBody
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			return fmt.Errorf("control plane: %s %s: %s", method, path, resp.Status)
		}
		err := errdefs.FromClass(e.Class, e.Error)
		if errors.Is(err, errdefs.ErrNotFound) {
			return &classed{e.Error, []error{errdefs.ErrNotFound, errdefs.ErrInvalidArgument}}
		}
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("control plane: %s %s: answer: %w", method, path, err)
	}
	return nil
}
