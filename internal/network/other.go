//go:build !linux

package network

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/berth-dev/berth/internal/errdefs"
)

var errPlatform = fmt.Errorf("container networking needs Linux: %w", errdefs.ErrNotImplemented)

func hostRoutes() ([]route, error) { return nil, errPlatform }

func lockFile(context.Context, string) (func(), error) { return nil, errPlatform }

func (m *Manager) teardownNetwork(*Network) error { return nil }

// Connect needs Linux.
func (m *Manager) Connect(context.Context, string, Attach) (*Endpoint, error) {
	return nil, errPlatform
}

// Disconnect needs Linux.
func (m *Manager) Disconnect(context.Context, string, string) error { return errPlatform }

// NewNS needs Linux.
func NewNS(string) error { return errPlatform }

// RemoveNS needs Linux.
func RemoveNS(string) error { return errPlatform }

// ServeDNS needs Linux.
func ServeDNS(context.Context, Settings, string) error { return errPlatform }

// SetService needs Linux.
func (m *Manager) SetService(context.Context, Service) (*Service, error) { return nil, errPlatform }

// CheckHostPorts needs Linux.
func (m *Manager) CheckHostPorts(context.Context, string, []ServicePort) error { return errPlatform }

// RemoveService needs Linux.
func (m *Manager) RemoveService(context.Context, string, string) error { return errPlatform }

// ServiceFor needs Linux.
func (m *Manager) ServiceFor(context.Context, netip.AddrPort) (*Target, error) {
	return nil, errPlatform
}

// ServiceCounts needs Linux.
func (m *Manager) ServiceCounts(context.Context) ([]ServiceCount, error) { return nil, errPlatform }
