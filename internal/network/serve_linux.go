package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// ServeDNS is the body of a network's embedded DNS server process (see
// Settings.DNSCommand). It listens on the gateway address, port 53, UDP and
// TCP; answers A (and PTR) queries for the names and aliases of the
// network's containers, following changes to them; forwards other queries
// to the nameservers of Settings.ResolvConf; and returns when the network
// has no endpoints left, ctx is done or the process gets SIGTERM.
func ServeDNS(ctx context.Context, s Settings, network string) (err error) {
	notify := func(string) {}
	if fd, e := strconv.Atoi(os.Getenv(notifyEnv)); e == nil && fd > 2 {
		f := os.NewFile(uintptr(fd), "notify")
		os.Unsetenv(notifyEnv)
		notify = func(msg string) {
			if f != nil {
				_, _ = f.WriteString(msg + "\n")
				f.Close()
				f = nil
			}
		}
		defer func() {
			if err != nil {
				notify(err.Error())
			}
		}()
	}
	ctx, stop := signal.NotifyContext(ctx, unix.SIGTERM, os.Interrupt)
	defer stop()

	m, err := New(s)
	if err != nil {
		return err
	}
	st, err := m.read()
	if err != nil {
		return err
	}
	n := st.network(network)
	if n == nil {
		return fmt.Errorf("network %s: %w", network, errdefs.ErrNotFound)
	}
	if !n.DNS {
		return fmt.Errorf("network %s has no embedded DNS: %w", network, errdefs.ErrInvalidArgument)
	}
	r := &resolver{timeout: 3 * time.Second, network: n.Name, stateFile: m.path(stateFile), read: m.read}
	r.refresh()
	r.setUpstreams(m.s.ResolvConf)

	addr := net.JoinHostPort(n.Gateway.String(), "53")
	udp, tcp, err := listenDNS(ctx, addr)
	if err != nil {
		return err
	}
	servers := []*dns.Server{
		{PacketConn: udp, Handler: r, ReadTimeout: 5 * time.Second},
		{Listener: tcp, Handler: r, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
	}
	for _, srv := range servers {
		go func() { _ = srv.ActivateAndServe() }()
	}
	defer func() {
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
		udp.Close()
		tcp.Close()
	}()

	pidFile := m.dnsPidFile(n)
	self, err := selfPidRecord()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.path("dns"), 0o700); err != nil {
		return err
	}
	if err := writeFileAtomic(pidFile, []byte(self.String())); err != nil {
		return err
	}
	defer func() {
		if rec, _ := readPidFile(pidFile); rec.pid == self.pid {
			os.Remove(pidFile)
		}
	}()
	notify("ok")

	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		r.setUpstreams(m.s.ResolvConf)
		if r.refresh() > 0 {
			continue
		}
		// Under the lock, so that a Connect either sees this server gone
		// or finds its endpoint seen here.
		unlock, err := lockFile(ctx, m.path("lock"))
		if err != nil {
			return nil
		}
		st, err = m.read()
		if err == nil && len(st.endpointsOf(n.Name)) == 0 {
			if rec, _ := readPidFile(pidFile); rec.pid == self.pid {
				os.Remove(pidFile)
			}
			for _, srv := range servers {
				_ = srv.Shutdown()
			}
			udp.Close()
			tcp.Close()
			unlock()
			return nil
		}
		unlock()
	}
}

// listenDNS binds addr for UDP and TCP, retrying for a while: a server that
// is going away may still hold it, or the address may be coming up.
func listenDNS(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		udp, err := net.ListenPacket("udp4", addr)
		if err == nil {
			var tcp net.Listener
			if tcp, err = net.Listen("tcp4", addr); err == nil {
				return udp, tcp, nil
			}
			udp.Close()
		}
		retry := errors.Is(err, unix.EADDRINUSE) || errors.Is(err, unix.EADDRNOTAVAIL)
		if !retry || time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
