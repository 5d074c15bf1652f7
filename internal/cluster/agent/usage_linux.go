package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
	"github.com/berth-dev/berth/internal/container"
)

// cpuSample is the CPU time each task container had used when Usage last
// looked, to turn into a rate the next time.
type cpuSample map[string]cpuTime

type cpuTime struct {
	used uint64 // ns of CPU
	at   time.Time
}

// Usage returns the node's capacity (this machine's CPUs and memory, or
// WithCapacity's), the reservations of the task containers that run or
// are about to (from their labels), and what those use now: memory as the
// engine's stats count it, CPU averaged since the previous Usage call (0
// on the first).
func (a *Agent) Usage(ctx context.Context) (api.NodeUsage, error) {
	u := api.NodeUsage{NodeID: a.nodeID, Time: time.Now().UTC()}
	if a.o.capacity != nil {
		u.Capacity = *a.o.capacity
	} else {
		u.Capacity = machineCapacity()
	}
	ts, err := a.tasks(ctx)
	if err != nil {
		return u, fmt.Errorf("node usage: %w", err)
	}
	next := cpuSample{}
	a.mu.Lock()
	prev := a.cpu
	a.mu.Unlock()
	for _, t := range ts {
		if !t.st.Running() && t.st.Status != container.Created {
			continue
		}
		u.Tasks++
		u.Reserved = u.Reserved.Add(reservation(t.c.Config.Labels))
		s, err := a.e.Stats(ctx, t.c.ID)
		if err != nil || !s.Running {
			continue
		}
		u.Used.MemoryBytes += int64(s.MemoryUsage)
		next[t.c.ID] = cpuTime{s.CPUTime, s.Read}
		if p, ok := prev[t.c.ID]; ok && s.CPUTime >= p.used && s.Read.After(p.at) {
			u.Used.NanoCPUs += int64(float64(s.CPUTime-p.used) / float64(s.Read.Sub(p.at)) * 1e9)
		}
	}
	a.mu.Lock()
	a.cpu = next
	a.mu.Unlock()
	return u, nil
}

// machineCapacity is the CPUs this process may run on and the machine's
// memory, lowered to the limits of this process's cgroup (v2, or v1's
// memory limit).
func machineCapacity() api.Resources {
	r := api.Resources{NanoCPUs: int64(runtime.NumCPU()) * 1e9, MemoryBytes: int64(container.HostMemory())}
	v2, v1mem := ownCgroups()
	var limits []string // memory limit files
	if v2 != "" {
		limits = append(limits, filepath.Join(v2, "memory.max"))
	}
	if v1mem != "" {
		limits = append(limits, filepath.Join(v1mem, "memory.limit_in_bytes"))
	}
	if b, err := os.ReadFile(filepath.Join(v2, "cpu.max")); v2 != "" && err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 && f[0] != "max" {
			quota, err1 := strconv.ParseInt(f[0], 10, 64)
			period, err2 := strconv.ParseInt(f[1], 10, 64)
			if err1 == nil && err2 == nil && period > 0 {
				r.NanoCPUs = min(r.NanoCPUs, quota*1e9/period)
			}
		}
	}
	for _, f := range limits {
		if b, err := os.ReadFile(f); err == nil {
			if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
				r.MemoryBytes = min(r.MemoryBytes, n)
			}
		}
	}
	return r
}

// ownCgroups returns this process's cgroup v2 directory and its v1 memory
// cgroup directory; either is "" when there is none.
func ownCgroups() (v2, v1mem string) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			v2 = filepath.Join("/sys/fs/cgroup", p)
		} else if f := strings.SplitN(line, ":", 3); len(f) == 3 && f[1] == "memory" {
			v1mem = filepath.Join("/sys/fs/cgroup/memory", f[2])
		}
	}
	return v2, v1mem
}
