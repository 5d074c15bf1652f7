package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testResources() *specs.LinuxResources {
	mem, swap, quota := int64(64<<20), int64(128<<20), int64(50000)
	shares, period := uint64(1024), uint64(100000)
	pids := int64(42)
	weight := uint16(500)
	return &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: &mem, Swap: &swap},
		CPU:     &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period, Cpus: "0"},
		Pids:    &specs.LinuxPids{Limit: &pids},
		BlockIO: &specs.LinuxBlockIO{Weight: &weight},
	}
}

// TestTranslateResourcesV1 checks the spec → cgroup library mapping (which
// the v1 manager writes as is).
func TestTranslateResourcesV1(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Resources: testResources()}}
	r, err := translateResources(spec.Linux.Resources, spec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Memory != 64<<20 || r.MemorySwap != 128<<20 || r.CpuShares != 1024 || r.CpuQuota != 50000 ||
		r.CpuPeriod != 100000 || *r.PidsLimit != 42 || r.BlkioWeight != 500 || r.CpusetCpus != "0" {
		t.Errorf("translated: %+v", r)
	}
	if len(r.Devices) == 0 || r.Devices[0].Allow {
		t.Error("device rules do not start with deny-all")
	}
	zero := int64(0)
	if r, _ := translateResources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &zero}}, nil); *r.PidsLimit != -1 {
		t.Errorf("pids limit 0 means unlimited, got %d", *r.PidsLimit)
	}
	bad := int64(1 << 20)
	if _, err := translateResources(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &bad, Swap: new(int64)}}, nil); err != nil {
		t.Errorf("swap 0 (unset) rejected: %v", err)
	}
	small := int64(1)
	if _, err := translateResources(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &bad, Swap: &small}}, nil); err == nil || !strings.Contains(err.Error(), "linux.resources.memory.swap") {
		t.Errorf("swap below the limit: %v", err)
	}
}

// TestTranslateResourcesV2 drives the cgroup library's v2 manager against
// a fake cgroup directory and checks the files it writes: the v2 path works
// on a v1 host too.
func TestTranslateResourcesV2(t *testing.T) {
	cgroups.TestMode = true
	defer func() { cgroups.TestMode = false }()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpuset cpu io memory pids"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := translateResources(testResources(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.BlkioWeight = 0 // io.weight needs a real io controller file
	m, err := fs2.NewManager(&cgroups.Cgroup{Resources: r}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory.max":      "67108864",
		"memory.swap.max": "67108864", // v2 counts swap apart from memory
		"cpu.max":         "50000 100000",
		"cpu.weight":      "100", // v1 default shares map to the v2 default weight
		"pids.max":        "42",
		"cpuset.cpus":     "0",
	}
	for file, v := range want {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || strings.TrimSpace(string(data)) != v {
			t.Errorf("%s = %q (%v), want %q", file, data, err, v)
		}
	}
}
