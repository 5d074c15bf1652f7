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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// SocketName is the API socket's file name in a root's run directory.
const SocketName = "serve.sock"

// maxBody bounds a request body.
const maxBody = 1 << 20

// Server answers the API from a store. It is safe for concurrent use.
type Server struct {
	store store.Store
	log   *slog.Logger
	// mu makes the published-port check and the write that follows it one
	// step on this server.
	mu     sync.Mutex
	now    func() time.Time
	checks Checks
}

// Checks are what the API asks beyond its own validation; nil fields
// check nothing.
type Checks struct {
	// Ports tells whether the nodes can publish a service's host ports.
	Ports PortCheck
	// Autoscaler fails, wrapping errdefs.ErrInvalidArgument with one
	// line, if a cannot scale svc: a trigger whose values make no sense
	// or whose source does not answer, a CPU target without a CPU
	// reservation or limit, …
	Autoscaler func(ctx context.Context, a api.Autoscaler, svc api.Service) error
}

// PortCheck fails with errdefs.ErrConflict, and a line that names the
// holder, if a node cannot publish service's host ports: a container, or
// a program of the host, holds one. The ports the service publishes
// already are its own.
type PortCheck func(ctx context.Context, service string, ports []api.PortConfig) error

// New returns a server over st that logs to log and asks c what it
// cannot check itself.
func New(st store.Store, log *slog.Logger, c Checks) *Server {
	return &Server{store: st, log: log, now: func() time.Time { return time.Now().UTC() }, checks: c}
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/ping", s.handle(func(*http.Request) (int, any, error) {
		return http.StatusOK, Ping{APIVersion: api.Version, PID: os.Getpid()}, nil
	}))
	mux.Handle("GET /v1/services", s.handle(s.list))
	mux.Handle("POST /v1/services", s.handle(s.create))
	mux.Handle("GET /v1/services/{name}", s.handle(s.get))
	mux.Handle("PUT /v1/services/{name}", s.handle(s.update))
	mux.Handle("DELETE /v1/services/{name}", s.handle(s.remove))
	mux.Handle("POST /v1/services/{name}/scale", s.handle(s.scale))
	mux.Handle("POST /v1/services/{name}/rollback", s.handle(s.rollback))
	mux.Handle("GET /v1/services/{name}/tasks", s.handle(s.tasks))
	mux.Handle("GET /v1/services/{name}/revisions", s.handle(s.revisions))
	mux.Handle("GET /v1/services/{name}/autoscaler", s.handle(s.getAutoscaler))
	mux.Handle("PUT /v1/services/{name}/autoscaler", s.handle(s.setAutoscaler))
	mux.Handle("DELETE /v1/services/{name}/autoscaler", s.handle(s.removeAutoscaler))
	mux.Handle("GET /v1/nodes", s.handle(s.nodes))
	mux.Handle("/", s.handle(func(r *http.Request) (int, any, error) {
		return 0, nil, fmt.Errorf("%s %s: no such API endpoint (this control plane speaks %s): %w",
			r.Method, r.URL.Path, api.Version, errdefs.ErrNotFound)
	}))
	return mux
}

// handle turns fn's answer into a JSON response: v with status, or err
// as an error body with its class's status.
func (s *Server) handle(fn func(*http.Request) (int, any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		status, v, err := fn(r)
		if err != nil {
			status = errdefs.HTTPStatus(err)
			v = errorBody{Error: err.Error(), Class: errdefs.ClassName(err)}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			s.log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		} else if r.Method != http.MethodGet {
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", status)
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	})
}

// decode reads a request body into v strictly: one JSON value, no unknown
// field (api types also check their apiVersion and kind).
func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return fmt.Errorf("request body: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, errdefs.ErrInvalidArgument) {
			return fmt.Errorf("request body: %w", err)
		}
		return fmt.Errorf("request body: %s: %w", strings.TrimPrefix(err.Error(), "json: "), errdefs.ErrInvalidArgument)
	}
	if dec.More() {
		return fmt.Errorf("request body: more than one JSON value: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// Listen listens on the unix socket at path, for its owner only: it makes
// the directory (0700) when missing, removes a socket left by a process
// that died, and makes the socket 0600. The caller makes sure no other
// server of this socket runs (berth serve holds a lock).
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control plane socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control plane socket: removing the stale one: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control plane socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control plane socket: %w", err)
	}
	return ln, nil
}

// Serve answers requests on ln until ctx is done, then lets the requests
// in flight finish (for up to five seconds) and returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("control plane API: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(shut)
	return nil
}

// classed is an error of more than one class whose message is msg alone.
type classed struct {
	msg     string
	classes []error
}

func (e *classed) Error() string   { return e.msg }
func (e *classed) Unwrap() []error { return e.classes }
