package runtime

import (
	"errors"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // device rules for v1 and v2
	devcfg "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/cgroups/manager"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroup is a container's cgroup, managed by opencontainers/cgroups (v1 or
// v2, whichever the host runs).
type cgroup struct {
	mgr cgroups.Manager
}

// defaultCgroupParent holds containers whose spec gives no cgroupsPath.
const defaultCgroupParent = "/berth"

func cgroupConfig(id string, spec *specs.Spec) (*cgroups.Cgroup, error) {
	c := &cgroups.Cgroup{Resources: &cgroups.Resources{}}
	if spec.Linux != nil && spec.Linux.CgroupsPath != "" {
		c.Path = spec.Linux.CgroupsPath
	} else {
		c.Path = defaultCgroupParent + "/" + id
	}
	var res *specs.LinuxResources
	if spec.Linux != nil {
		res = spec.Linux.Resources
	}
	r, err := translateResources(res, spec)
	if err != nil {
		return nil, err
	}
	c.Resources = r
	return c, nil
}

func newCgroup(cfg *cgroups.Cgroup) (*cgroup, error) {
	m, err := manager.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", cfg.Path, err)
	}
	return &cgroup{mgr: m}, nil
}

// loadCgroup reopens a container's cgroup from the paths in its record.
func loadCgroup(rec *record) (*cgroup, error) {
	if rec.cg != nil {
		return rec.cg, nil
	}
	cfg, err := cgroupConfig(rec.ID, rec.Spec)
	if err != nil {
		return nil, err
	}
	m, err := manager.NewWithPaths(cfg, rec.CgroupPaths)
	if err != nil {
		return nil, fmt.Errorf("cgroup of %q: %w", rec.ID, err)
	}
	rec.cg = &cgroup{mgr: m}
	return rec.cg, nil
}

func (c *cgroup) paths() map[string]string { return c.mgr.GetPaths() }

// apply moves pid into the cgroup and sets the limits.
func (c *cgroup) apply(pid int) error {
	if err := c.mgr.Apply(pid); err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	cfg, _ := c.mgr.GetCgroups()
	writeDeviceRules(c.mgr.Path("devices"), cfg.Resources)
	if err := c.mgr.Set(cfg.Resources); err != nil {
		return fmt.Errorf("cgroup limits: %w", err)
	}
	return nil
}

// writeDeviceRules writes a new v1 cgroup's device rules in the order they
// are listed, as the runtime spec requires (devices.list keeps that order).
// The library's Set, which would write them sorted, then finds the cgroup
// already as asked and has nothing to write. Errors are left to Set.
func writeDeviceRules(path string, r *cgroups.Resources) {
	if path == "" || r.SkipDevices || cgroups.IsCgroup2UnifiedMode() {
		return
	}
	for _, rule := range r.Devices {
		file := "devices.deny"
		if rule.Allow {
			file = "devices.allow"
		}
		if cgroups.WriteFile(path, file, rule.CgroupString()) != nil {
			return
		}
	}
}

func (c *cgroup) destroy() error { return c.mgr.Destroy() }

// update applies new limits to a running container.
func (c *cgroup) update(res *specs.LinuxResources) error {
	r, err := translateResources(res, nil)
	if err != nil {
		return err
	}
	r.SkipDevices = res.Devices == nil
	if err := c.mgr.Set(r); err != nil {
		return fmt.Errorf("cgroup limits: %w", err)
	}
	return nil
}

// translateResources converts the runtime spec's resources into the cgroup
// library's. Writing this mapping by hand is unavoidable: the library's own
// converter lives in runc's libcontainer/specconv, which is not importable
// without all of runc.
func translateResources(res *specs.LinuxResources, spec *specs.Spec) (*cgroups.Resources, error) {
	r := &cgroups.Resources{}
	if spec != nil {
		r.Devices = defaultDeviceRules(spec)
	}
	if res == nil {
		return r, nil
	}
	for i, d := range res.Devices {
		rule, err := deviceRule(d)
		if err != nil {
			return nil, fmt.Errorf("config.json: field linux.resources.devices[%d]: %w", i, err)
		}
		// The spec's rules come before berth's allowances for the
		// container's own devices, as with runc; later rules win.
		r.Devices = append(r.Devices, rule)
	}
	if spec != nil {
		r.Devices = append(r.Devices, allowedDevices(spec)...)
	}
	if m := res.Memory; m != nil {
		if m.Limit != nil {
			r.Memory = *m.Limit
		}
		if m.Reservation != nil {
			r.MemoryReservation = *m.Reservation
		}
		if m.Swap != nil {
			r.MemorySwap = *m.Swap
		}
		if m.Swappiness != nil {
			if *m.Swappiness > 100 {
				return nil, fmt.Errorf("config.json: field linux.resources.memory.swappiness: %d is above 100: %w", *m.Swappiness, errdefs.ErrInvalidArgument)
			}
			r.MemorySwappiness = m.Swappiness
		}
		if m.DisableOOMKiller != nil {
			r.OomKillDisable = *m.DisableOOMKiller
		}
		if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
			return nil, fmt.Errorf("config.json: field linux.resources.memory.swap: %d is below the memory limit %d: %w", r.MemorySwap, r.Memory, errdefs.ErrInvalidArgument)
		}
	}
	if c := res.CPU; c != nil {
		if c.Shares != nil {
			r.CpuShares = *c.Shares
			// v2 has cpu.weight instead; the v1 manager ignores this.
			r.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*c.Shares)
		}
		if c.Quota != nil {
			r.CpuQuota = *c.Quota
		}
		if c.Period != nil {
			r.CpuPeriod = *c.Period
		}
		if c.RealtimeRuntime != nil {
			r.CpuRtRuntime = *c.RealtimeRuntime
		}
		if c.RealtimePeriod != nil {
			r.CpuRtPeriod = *c.RealtimePeriod
		}
		r.CpusetCpus = c.Cpus
		r.CpusetMems = c.Mems
		r.CpuBurst = c.Burst
		r.CPUIdle = c.Idle
	}
	if p := res.Pids; p != nil {
		if p.Limit != nil {
			limit := *p.Limit
			if limit <= 0 {
				limit = -1
			}
			r.PidsLimit = &limit
		}
	}
	if b := res.BlockIO; b != nil {
		if b.Weight != nil {
			r.BlkioWeight = *b.Weight
		}
		if b.LeafWeight != nil {
			r.BlkioLeafWeight = *b.LeafWeight
		}
		for _, d := range b.WeightDevice {
			var w, lw uint16
			if d.Weight != nil {
				w = *d.Weight
			}
			if d.LeafWeight != nil {
				lw = *d.LeafWeight
			}
			r.BlkioWeightDevice = append(r.BlkioWeightDevice, cgroups.NewWeightDevice(d.Major, d.Minor, w, lw))
		}
		thr := func(in []specs.LinuxThrottleDevice) []*cgroups.ThrottleDevice {
			var out []*cgroups.ThrottleDevice
			for _, d := range in {
				out = append(out, cgroups.NewThrottleDevice(d.Major, d.Minor, d.Rate))
			}
			return out
		}
		r.BlkioThrottleReadBpsDevice = thr(b.ThrottleReadBpsDevice)
		r.BlkioThrottleWriteBpsDevice = thr(b.ThrottleWriteBpsDevice)
		r.BlkioThrottleReadIOPSDevice = thr(b.ThrottleReadIOPSDevice)
		r.BlkioThrottleWriteIOPSDevice = thr(b.ThrottleWriteIOPSDevice)
	}
	for _, h := range res.HugepageLimits {
		r.HugetlbLimit = append(r.HugetlbLimit, &cgroups.HugepageLimit{Pagesize: h.Pagesize, Limit: h.Limit})
	}
	if n := res.Network; n != nil {
		if n.ClassID != nil {
			r.NetClsClassid = *n.ClassID
		}
		for _, p := range n.Priorities {
			r.NetPrioIfpriomap = append(r.NetPrioIfpriomap, &cgroups.IfPrioMap{Interface: p.Name, Priority: int64(p.Priority)})
		}
	}
	if len(res.Unified) > 0 {
		r.Unified = res.Unified
	}
	return r, nil
}

func deviceRule(d specs.LinuxDeviceCgroup) (*devcfg.Rule, error) {
	t := devcfg.WildcardDevice
	switch d.Type {
	case "", "a":
	case "c":
		t = devcfg.CharDevice
	case "b":
		t = devcfg.BlockDevice
	default:
		return nil, fmt.Errorf("device type %q is not one of a, c, b: %w", d.Type, errdefs.ErrInvalidArgument)
	}
	rule := &devcfg.Rule{Type: t, Major: devcfg.Wildcard, Minor: devcfg.Wildcard, Permissions: devcfg.Permissions(d.Access), Allow: d.Allow}
	if d.Major != nil {
		rule.Major = *d.Major
	}
	if d.Minor != nil {
		rule.Minor = *d.Minor
	}
	if rule.Permissions == "" {
		rule.Permissions = "rwm"
	}
	if !rule.Permissions.IsValid() {
		return nil, fmt.Errorf("device access %q is not made of r, w, m: %w", d.Access, errdefs.ErrInvalidArgument)
	}
	return rule, nil
}

// defaultDeviceRules starts from deny-all, as runc does.
func defaultDeviceRules(*specs.Spec) []*devcfg.Rule {
	return []*devcfg.Rule{{Type: devcfg.WildcardDevice, Major: devcfg.Wildcard, Minor: devcfg.Wildcard, Permissions: "rwm", Allow: false}}
}

// allowedDevices lets the container use the default devices, the
// terminals, and mknod of any device node (which gives no access to it), as
// runc's specconv.AllowedDevices does. The devices of linux.devices get no
// rule of their own: the spec's linux.resources.devices decide, so that a
// deny rule there holds for a device the container is given a node of.
func allowedDevices(*specs.Spec) []*devcfg.Rule {
	rules := []*devcfg.Rule{
		{Type: devcfg.CharDevice, Major: devcfg.Wildcard, Minor: devcfg.Wildcard, Permissions: "m", Allow: true},
		{Type: devcfg.BlockDevice, Major: devcfg.Wildcard, Minor: devcfg.Wildcard, Permissions: "m", Allow: true},
	}
	for _, d := range defaultDevices {
		rules = append(rules, &devcfg.Rule{Type: devcfg.CharDevice, Major: d.Major, Minor: d.Minor, Permissions: "rwm", Allow: true})
	}
	// /dev/pts/* and /dev/ptmx.
	return append(rules,
		&devcfg.Rule{Type: devcfg.CharDevice, Major: 136, Minor: devcfg.Wildcard, Permissions: "rwm", Allow: true},
		&devcfg.Rule{Type: devcfg.CharDevice, Major: 5, Minor: 2, Permissions: "rwm", Allow: true},
	)
}

// cgroupGone reports whether err means the cgroup no longer exists.
func cgroupGone(err error) bool { return errors.Is(err, os.ErrNotExist) }
