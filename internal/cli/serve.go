package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/cluster/server"
	"github.com/berth-dev/berth/internal/cluster/store"
	_ "github.com/berth-dev/berth/internal/cluster/store/bolt" // bolt:// stores
	_ "github.com/berth-dev/berth/internal/cluster/store/etcd" // etcd:// stores
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/root"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// Plane is the control plane `berth serve` runs for one root: the API
// over Store, and Parts beside it.
type Plane struct {
	Root  *root.Root
	Store store.Store
	// NodeID is this machine's node, kept in ROOT/node-id.
	NodeID string
	Log    *slog.Logger
	// Parts run beside the API, each until its context ends; one that
	// returns an error stops the control plane with it. The controllers
	// and this node's agent are added here by wirePlane.
	Parts []func(ctx context.Context) error
	// Checks are what the API asks beyond its own validation (whether the
	// nodes can publish a service's host ports, whether an autoscaler can
	// scale its service); set by wirePlane.
	Checks server.Checks
}

// wirePlane adds the controllers and the node's agent to p once the root
// and the store are open. It is the one place where `berth serve` learns
// of cluster/controller and cluster/agent.
var wirePlane = func(p *Plane) error { return nil }

func newServe(g *globals) *cobra.Command {
	var storeURI string
	var ifNotRunning bool
	cmd := &cobra.Command{
		Use:   "serve [--store URI]",
		Short: "Run the control plane for services in the foreground",
		Long: `Run the control plane of one root: the API on ROOTRUN/serve.sock and the
controllers over the store (default bolt://ROOT/cluster/state.db; etcd://HOST:PORT[,…]
for several machines). One runs per root; the service commands start it when
none runs. It holds no container: stopping it leaves every replica running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.open()
			if err != nil {
				return err
			}
			unlock, err := lockServe(r.Dir)
			if err != nil {
				if ifNotRunning && errors.Is(err, errdefs.ErrConflict) {
					return nil // another CLI's start won the race: it serves
				}
				return err
			}
			defer unlock()
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			if storeURI == "" {
				storeURI = "bolt://" + filepath.Join(r.Dir, "cluster", "state.db")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), unix.SIGTERM, unix.SIGINT)
			defer stop()
			st, err := store.Open(ctx, storeURI)
			if err != nil {
				return err
			}
			defer st.Close()
			nodeID, err := nodeID(r.Dir)
			if err != nil {
				return err
			}
			p := &Plane{Root: r, Store: st, NodeID: nodeID, Log: log}
			if err := wirePlane(p); err != nil {
				return err
			}
			sock := filepath.Join(r.RunDir, server.SocketName)
			ln, err := server.Listen(sock)
			if err != nil {
				return err
			}
			defer os.Remove(sock)
			log.Info("control plane serving", "root", r.Dir, "socket", sock, "store", storeURI, "node", nodeID, "pid", os.Getpid())
			return p.run(ctx, server.New(st, log, p.Checks), ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&storeURI, "store", "", "state store: bolt:///PATH (default ROOT/cluster/state.db) or etcd://HOST:PORT[,HOST:PORT…][/PREFIX]")
	f.BoolVar(&ifNotRunning, "if-not-running", false, "exit quietly when a control plane already runs for the root")
	f.MarkHidden("if-not-running")
	return cmd
}

// run serves the API and the parts until ctx ends or one of them fails.
func (p *Plane) run(ctx context.Context, srv *server.Server, ln net.Listener) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	parts := append([]func(context.Context) error{func(ctx context.Context) error {
		return srv.Serve(ctx, ln)
	}}, p.Parts...)
	for _, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := part(ctx); err != nil && ctx.Err() == nil {
				cancel(err)
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		p.Log.Error("control plane stopped", "err", err)
		return err
	}
	p.Log.Info("control plane stopped")
	return nil
}

// lockServe takes ROOT/serve.lock for this process, with its PID in it,
// or says which process holds it (errdefs.ErrConflict).
func lockServe(dir string) (func(), error) {
	path := filepath.Join(dir, "serve.lock")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("berth serve: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		pid := strings.TrimSpace(string(b))
		if _, err := strconv.Atoi(pid); err != nil {
			pid = "unknown"
		}
		return nil, fmt.Errorf("berth serve is already running for %s (pid %s): %w", dir, pid, errdefs.ErrConflict)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// nodeID returns this machine's node ID, made once and kept in
// ROOT/node-id.
func nodeID(dir string) (string, error) {
	path := filepath.Join(dir, "node-id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	id := server.NewID()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node ID: %w", err)
	}
	return id, nil
}
