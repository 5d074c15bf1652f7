package container

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// Stats is one sample of a container's resource use, read from its cgroup
// (v1 or v2, through opencontainers/cgroups) and, for the network, from its
// network namespace. A container that is not running has only its ID and
// name set.
type Stats struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Read    time.Time `json:"read"`
	Running bool      `json:"running"`
	// CPUTime is the CPU time the container has used, in nanoseconds;
	// CPUPercent turns two samples into a rate.
	CPUTime uint64 `json:"cpuTime"`
	// MemoryUsage is Docker's: the cgroup's usage less its inactive file
	// cache. MemoryLimit is the cgroup's limit, or the host's memory when
	// the container has none.
	MemoryUsage uint64 `json:"memoryUsage"`
	MemoryLimit uint64 `json:"memoryLimit"`
	Pids        uint64 `json:"pids"`
	PidsLimit   uint64 `json:"pidsLimit,omitempty"`
	BlockRead   uint64 `json:"blockRead"`
	BlockWrite  uint64 `json:"blockWrite"`
	// NetRx and NetTx are bytes received and sent by the interfaces of the
	// container's network namespace, loopback aside (zero with --network
	// host, as Docker shows it).
	NetRx uint64 `json:"netRx"`
	NetTx uint64 `json:"netTx"`
}

// CPUPercent is the CPU use between two samples of one container, where
// 100 is one CPU kept busy (Docker's CPU %).
func CPUPercent(prev, cur *Stats) float64 {
	if prev == nil || cur == nil || !prev.Running || !cur.Running || cur.CPUTime < prev.CPUTime {
		return 0
	}
	wall := cur.Read.Sub(prev.Read)
	if wall <= 0 {
		return 0
	}
	return float64(cur.CPUTime-prev.CPUTime) / float64(wall.Nanoseconds()) * 100
}

// MemoryPercent is the memory usage as a share of the limit.
func (s *Stats) MemoryPercent() float64 {
	if s.MemoryLimit == 0 {
		return 0
	}
	return float64(s.MemoryUsage) / float64(s.MemoryLimit) * 100
}

// cgroupPath is the cgroup every container's spec names (see spec_linux.go).
func cgroupPath(id string) string { return "/berth/" + id }

// cgroupManager opens the existing cgroup of container id.
func cgroupManager(id string) (cgroups.Manager, error) {
	return manager.New(&cgroups.Cgroup{Path: cgroupPath(id), Resources: &cgroups.Resources{}})
}

// Stats samples the resource use of the container ref names.
func (e *Engine) Stats(ctx context.Context, ref string) (*Stats, error) {
	c, st, err := e.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	s := &Stats{ID: c.ID, Name: c.Name, Read: time.Now()}
	if st.Status != Running && st.Status != Paused {
		return s, nil
	}
	m, err := cgroupManager(c.ID)
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.Name, err)
	}
	cs, err := m.Stats(&cgroups.StatsOptions{Controllers: cgroups.CPU | cgroups.Memory | cgroups.Pids | cgroups.IO})
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.Name, err)
	}
	s.Read, s.Running = time.Now(), true
	s.CPUTime = cs.CpuStats.CpuUsage.TotalUsage
	mem := cs.MemoryStats
	s.MemoryUsage = mem.Usage.Usage
	inactive := mem.Stats["total_inactive_file"] // v1
	if cgroups.IsCgroup2UnifiedMode() {
		inactive = mem.Stats["inactive_file"]
	}
	if inactive < s.MemoryUsage {
		s.MemoryUsage -= inactive
	}
	s.MemoryLimit = mem.Usage.Limit
	if total := HostMemory(); total > 0 && (s.MemoryLimit == 0 || s.MemoryLimit > total) {
		s.MemoryLimit = total
	}
	s.Pids, s.PidsLimit = cs.PidsStats.Current, cs.PidsStats.Limit
	if s.PidsLimit == ^uint64(0) {
		s.PidsLimit = 0
	}
	for _, b := range cs.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			s.BlockRead += b.Value
		case "write":
			s.BlockWrite += b.Value
		}
	}
	if c.networkMode() != "host" && st.Pid > 0 {
		s.NetRx, s.NetTx = netDev(st.Pid)
	}
	return s, nil
}

// HostMemory is the host's memory in bytes (MemTotal), 0 if unknown.
func HostMemory() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// netDev sums the bytes received and sent by the interfaces, other than
// lo, of the network namespace that process pid is in.
func netDev(pid int) (rx, tx uint64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return 0, 0
	}
	return parseNetDev(string(b))
}

// parseNetDev reads /proc/net/dev: two header lines, then
// "iface: rx_bytes packets errs drop fifo frame compressed multicast
// tx_bytes …".
func parseNetDev(s string) (rx, tx uint64) {
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 == nil && err2 == nil {
			rx, tx = rx+r, tx+t
		}
	}
	return rx, tx
}

// Top returns the processes in the container ref names as the host's ps
// shows them with psArgs (Docker's default -ef): its column titles and one
// row per process of the container's cgroup, the last column (the command)
// with its spaces.
func (e *Engine) Top(ctx context.Context, ref string, psArgs []string) ([]string, [][]string, error) {
	c, st, err := e.Get(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	if st.Status != Running && st.Status != Paused {
		return nil, nil, fmt.Errorf("container %s is not running: %w", c.Name, errdefs.ErrConflict)
	}
	m, err := cgroupManager(c.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("top %s: %w", c.Name, err)
	}
	pids, err := m.GetAllPids()
	if err != nil {
		return nil, nil, fmt.Errorf("top %s: processes: %w", c.Name, err)
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	cmd := exec.CommandContext(ctx, "ps", psArgs...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := lastLine(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, nil, fmt.Errorf("top %s: ps %s: %s: %w", c.Name, strings.Join(psArgs, " "), msg, errdefs.ErrInvalidArgument)
	}
	return filterPs(string(out), pids)
}

// filterPs keeps the lines of ps's output whose PID column is one of pids.
func filterPs(out string, pids []int) ([]string, [][]string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	titles := strings.Fields(lines[0])
	col := -1
	for i, t := range titles {
		if t == "PID" {
			col = i
		}
	}
	if col < 0 {
		return nil, nil, fmt.Errorf("ps's output has no PID column: give ps options that show it (e.g. -ef or aux): %w", errdefs.ErrInvalidArgument)
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	var rows [][]string
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= col {
			continue
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil || !want[pid] {
			continue
		}
		if len(f) > len(titles) {
			f = append(f[:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		}
		rows = append(rows, f)
	}
	return titles, rows, nil
}
