package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestOOMKill runs a process that grows past a 32 MiB limit: the kernel's
// OOM killer ends it and run reports 137 (128+SIGKILL).
func TestOOMKill(t *testing.T) {
	// Doubling a shell variable allocates fast without any extra tool.
	e := newEnv(t, "sh", "-c", `x=0123456789abcdef; while true; do x="$x$x"; done`)
	limit := int64(32 << 20)
	swap := limit // no swap beyond the limit
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &swap}
	if r := e.run(e.id("oom")); r.code != 137 {
		t.Fatalf("exit %d, want 137 (OOM-killed); stderr %s", r.code, r.stderr)
	}
}

// TestPidsLimitStopsForkBomb caps the container at 16 processes: forks past
// that fail, the container survives and the host is untouched.
func TestPidsLimitStopsForkBomb(t *testing.T) {
	// The bomb runs in a subshell, which dies when a fork fails; the
	// container's shell then counts with builtins only (it cannot fork
	// either) and kills the lot.
	e := newEnv(t, "sh", "-c", `
		( i=0; while [ $i -lt 64 ]; do sleep 30 & i=$((i+1)); done ) 2>/dev/null
		n=0; for p in /proc/[0-9]*; do n=$((n+1)); done
		echo "running=$n"
		kill -9 -1; echo survived`)
	limit := int64(16)
	e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
	r := e.run(e.id("forkbomb"))
	if r.code != 0 || !strings.Contains(r.stdout, "survived") {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	var running int
	for _, line := range strings.Split(r.stdout, "\n") {
		if n, ok := strings.CutPrefix(line, "running="); ok {
			running = atoi(t, n)
		}
	}
	if running == 0 || running > 16 {
		t.Fatalf("%d processes ran under a pids limit of 16 (stdout %q)", running, r.stdout)
	}
}

// TestCgroupLimitsApplied reads the limits back from the container's own
// cgroup files on the host.
func TestCgroupLimitsApplied(t *testing.T) {
	e := newEnv(t, "sleep", "30")
	mem, shares, quota, period, pids := int64(48<<20), uint64(512), int64(50000), uint64(100000), int64(42)
	e.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
	e.spec.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period}
	e.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	e.spec.Linux.CgroupsPath = "/berth-test/" + e.id("limits")
	e.saveSpec()
	id := e.id("limits")
	e.must("run", "--detach", "--bundle", e.bundle, id)
	base := "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(base, "memory")); err != nil {
		t.Skip("cgroup v1 hierarchy not mounted at /sys/fs/cgroup/memory")
	}
	want := map[string]string{
		"memory/memory.limit_in_bytes": "50331648",
		"cpu/cpu.shares":               "512",
		"cpu/cpu.cfs_quota_us":         "50000",
		"pids/pids.max":                "42",
	}
	for file, v := range want {
		dir, name := filepath.Split(file)
		data, err := os.ReadFile(filepath.Join(base, dir, e.spec.Linux.CgroupsPath, name))
		if err != nil || strings.TrimSpace(string(data)) != v {
			t.Errorf("%s = %q (%v), want %s", file, data, err, v)
		}
	}
	// update changes a live container's limit.
	e.must("update", "--memory", "67108864", id)
	data, _ := os.ReadFile(filepath.Join(base, "memory", e.spec.Linux.CgroupsPath, "memory.limit_in_bytes"))
	if strings.TrimSpace(string(data)) != "67108864" {
		t.Errorf("after update memory.limit_in_bytes = %q", data)
	}
	e.must("delete", "--force", id)
	if _, err := os.Stat(filepath.Join(base, "memory", e.spec.Linux.CgroupsPath)); !os.IsNotExist(err) {
		t.Errorf("cgroup left after delete: %v", err)
	}
	os.Remove(filepath.Join(base, "memory", "berth-test"))
	for _, c := range []string{"cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "pids", "systemd", "unified"} {
		os.Remove(filepath.Join(base, c, "berth-test"))
	}
}

func atoi(t *testing.T, s string) int {
	n := 0
	for _, c := range strings.TrimSpace(s) {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}
