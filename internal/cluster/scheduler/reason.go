package scheduler

import (
	"math"
	"strconv"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// UnschedulableError says why a task fits on no node, in the words of
// `service ps`: "no node has 2 CPUs free". It wraps
// errdefs.ErrUnavailable: the task waits until room appears.
type UnschedulableError struct {
	Need api.Resources // the task's reservations
	// CPU and Memory say which of them no node has free enough of; both
	// false means each fits somewhere but not both on one node (or there
	// is no node at all, Nodes 0).
	CPU, Memory bool
	Nodes       int
}

func (e *UnschedulableError) Error() string {
	cpu, mem := formatCPUs(e.Need.NanoCPUs), formatBytes(e.Need.MemoryBytes)+" of memory"
	switch {
	case e.Nodes == 0:
		return "no node is ready to run tasks"
	case e.CPU && !e.Memory:
		return "no node has " + cpu + " free"
	case e.Memory && !e.CPU:
		return "no node has " + mem + " free"
	}
	return "no node has " + cpu + " and " + mem + " free"
}

// Unwrap makes the error an errdefs.ErrUnavailable.
func (e *UnschedulableError) Unwrap() error { return errdefs.ErrUnavailable }

// unschedulable explains why need fits on none of nodes.
func unschedulable(nodes []NodeInfo, need api.Resources) error {
	e := &UnschedulableError{Need: need, Nodes: len(nodes), CPU: true, Memory: true}
	for _, n := range nodes {
		if fits(n, api.Resources{NanoCPUs: need.NanoCPUs}) {
			e.CPU = false
		}
		if fits(n, api.Resources{MemoryBytes: need.MemoryBytes}) {
			e.Memory = false
		}
	}
	return e
}

// formatCPUs writes nano-CPUs as Docker's --cpus does: "1 CPU", "0.5 CPUs".
func formatCPUs(nano int64) string {
	s := strconv.FormatFloat(math.Round(float64(nano)/1e7)/100, 'f', -1, 64)
	if s == "1" {
		return "1 CPU"
	}
	return s + " CPUs"
}

// formatBytes writes a size in binary units, to two decimals at most:
// "512 MiB", "1.5 GiB".
func formatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for ; v >= 1024 && i < len(units)-1; i++ {
		v /= 1024
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) + " " + units[i]
}
