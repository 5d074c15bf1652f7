package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// state is everything the Manager keeps: one JSON file, replaced atomically
// and changed only under the lock, so that readers never need the lock.
type state struct {
	Networks  []*Network  `json:"networks"`
	Endpoints []*endpoint `json:"endpoints,omitempty"`
	Services  []*Service  `json:"services,omitempty"`
	// LastIP is the last address handed out per network ID; allocation goes
	// on after it so that a released address is not reused at once.
	LastIP map[string]netip.Addr `json:"lastIP,omitempty"`
	// Rules fingerprints the nftables table as last applied, nil when
	// unknown (a failed change): see applyRules.
	Rules *rulePlan `json:"rules,omitempty"`

	// touched says applyRules changed the kernel's table during an
	// update, whose state may then not be stored.
	touched bool
}

// rulePlan fingerprints a table: Base everything outside the services' own
// chains, Services each service's chains by VIP.
type rulePlan struct {
	Base     string            `json:"base"`
	Services map[string]string `json:"services,omitempty"`
}

// endpoint is an Endpoint with what teardown needs. It is stored before
// any host object is made, so that Disconnect can undo a Connect that died
// half-way.
type endpoint struct {
	Endpoint
	NetNS    string `json:"netns"`
	HostVeth string `json:"hostVeth"`
}

func (e *endpoint) public() Endpoint {
	p := e.Endpoint
	p.Aliases = append([]string(nil), e.Aliases...)
	p.Ports = append([]PortMapping(nil), e.Ports...)
	return p
}

const stateFile = "state.json"

// read returns the stored state without the lock.
func (m *Manager) read() (*state, error) {
	st := &state{}
	data, err := os.ReadFile(m.path(stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("network state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("network state %s: %w", m.path(stateFile), err)
	}
	return st, nil
}

func (m *Manager) write(st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(m.path(stateFile), data)
}

// writeFileAtomic replaces path with data so that readers see the old or the
// new content, never a mix, even if the process dies.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// load returns the state with the default network present, storing it on
// first use.
func (m *Manager) load(ctx context.Context) (*state, error) {
	st, err := m.read()
	if err != nil {
		return nil, err
	}
	if !m.defaultStale(st) {
		return st, nil
	}
	var out *state
	err = m.update(ctx, func(s *state) error { out = s; return nil })
	return out, err
}

// defaultStale reports whether the default network is missing or, with no
// endpoints and no services, differs from the settings.
func (m *Manager) defaultStale(st *state) bool {
	d := st.network(DefaultNetwork)
	if d == nil {
		return true
	}
	return d.Subnet != m.s.DefaultSubnet && len(st.endpointsOf(DefaultNetwork)) == 0 && len(st.servicesOf(DefaultNetwork)) == 0
}

// update runs fn on the state under the lock and stores the result if fn
// succeeds.
func (m *Manager) update(ctx context.Context, fn func(st *state) error) error {
	unlock, err := lockFile(ctx, m.path("lock"))
	if err != nil {
		return err
	}
	defer unlock()
	st, err := m.read()
	if err != nil {
		return err
	}
	if m.defaultStale(st) {
		d := m.defaultNetwork()
		if old := st.network(DefaultNetwork); old != nil {
			*old = *d
		} else {
			st.Networks = append(st.Networks, d)
		}
	}
	if err := fn(st); err != nil {
		if st.touched {
			// The table changed, the state that says how did not: the
			// stored fingerprint no longer holds, and the next change
			// must replace the table.
			if old, rerr := m.read(); rerr == nil && old.Rules != nil {
				old.Rules = nil
				err = errors.Join(err, m.write(old))
			}
		}
		return err
	}
	return m.write(st)
}

func (st *state) network(name string) *Network {
	for _, n := range st.Networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// find looks a network up by name, full ID or unique ID prefix.
func (st *state) find(ref string) (*Network, error) {
	if ref == "" {
		return nil, fmt.Errorf("network name is empty: %w", errdefs.ErrInvalidArgument)
	}
	if n := st.network(ref); n != nil {
		return n, nil
	}
	var found []*Network
	for _, n := range st.Networks {
		if strings.HasPrefix(n.ID, ref) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("network %s: %w", ref, errdefs.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("network ID prefix %s matches %d networks; give more of it: %w", ref, len(found), errdefs.ErrInvalidArgument)
}

func (st *state) endpointsOf(network string) []*endpoint {
	var out []*endpoint
	for _, e := range st.Endpoints {
		if e.Network == network {
			out = append(out, e)
		}
	}
	return out
}

func (st *state) endpoint(network, containerID string) *endpoint {
	for _, e := range st.Endpoints {
		if e.Network == network && e.ContainerID == containerID {
			return e
		}
	}
	return nil
}

func (st *state) removeEndpoint(e *endpoint) {
	for i, o := range st.Endpoints {
		if o == e {
			st.Endpoints = append(st.Endpoints[:i], st.Endpoints[i+1:]...)
			return
		}
	}
}

// freeBridge returns the lowest unused bridge name <prefix>N with N ≥ 1;
// <prefix>0 belongs to the default network.
func (st *state) freeBridge(prefix string) string {
	used := map[int]bool{0: true}
	for _, n := range st.Networks {
		if i := bridgeIndex(prefix, n.Bridge); i >= 0 {
			used[i] = true
		}
	}
	i := 1
	for used[i] {
		i++
	}
	return prefix + strconv.Itoa(i)
}
