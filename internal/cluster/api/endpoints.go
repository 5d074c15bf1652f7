package api

import "slices"

// ServiceEndpoints is what a node needs to balance a service's traffic
// (service networking): the networks it joins, the ports it publishes and
// the tasks that take traffic now — wanted and ready. A task about to go
// is left out before it is stopped, so that it drains.
type ServiceEndpoints struct {
	Service string `json:"service"`
	// Networks are the template's; none means the default network.
	Networks []string     `json:"networks,omitempty"`
	Ports    []PortConfig `json:"ports,omitempty"`
	// Tasks are the IDs of the tasks that take traffic, sorted.
	Tasks []string `json:"tasks,omitempty"`
	// ClientAffinity keeps a client's connections on one task.
	ClientAffinity bool `json:"clientAffinity,omitempty"`
	// Activate holds new TCP connections while no task takes traffic
	// (rather than refusing them) and wakes the service's autoscaler: the
	// service scales from zero.
	Activate bool `json:"activate,omitempty"`
}

// Equal reports whether e and o ask the same of a node.
func (e ServiceEndpoints) Equal(o ServiceEndpoints) bool {
	return e.Service == o.Service && slices.Equal(e.Networks, o.Networks) &&
		slices.Equal(e.Ports, o.Ports) && slices.Equal(e.Tasks, o.Tasks) &&
		e.ClientAffinity == o.ClientAffinity && e.Activate == o.Activate
}

// VirtualIP is a service's stable address on one of its networks.
type VirtualIP struct {
	Network string `json:"network"`
	Addr    string `json:"addr"`
}
