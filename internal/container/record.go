package container

import (
	"time"

	"github.com/berth-dev/berth/internal/network"
	digest "github.com/opencontainers/go-digest"
)

// Container is the record of one container, kept in its directory as
// container.json. It says what to run; State says how it is doing.
type Container struct {
	ID      string        `json:"id"`
	Name    string        `json:"name"`
	Created time.Time     `json:"created"`
	Image   string        `json:"image"` // as the user named it
	ImageID digest.Digest `json:"imageID"`
	// ChainID is the snapshot key of the image's top layer, the overlay's
	// upper lower directory.
	ChainID digest.Digest `json:"chainID,omitempty"`
	Config  Config        `json:"config"`
	Host    HostConfig    `json:"hostConfig"`
}

// Config is what runs in the container: the image's config merged with
// the flags, as Docker merges them.
type Config struct {
	Hostname     string            `json:"hostname,omitempty"`
	Domainname   string            `json:"domainname,omitempty"`
	User         string            `json:"user,omitempty"`
	Env          []string          `json:"env,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	StopSignal   string            `json:"stopSignal,omitempty"`
	StopTimeout  *int              `json:"stopTimeout,omitempty"` // seconds
	Tty          bool              `json:"tty,omitempty"`
	OpenStdin    bool              `json:"openStdin,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"` // "80/tcp"
	Volumes      []string          `json:"volumes,omitempty"`      // the image's anonymous volume paths
	Healthcheck  *Healthcheck      `json:"healthcheck,omitempty"`
}

// Healthcheck is Docker's health check: Test is ["NONE"], ["CMD", args…]
// or ["CMD-SHELL", command]. It and Health keep Docker's JSON names, as
// inspect shows them.
type Healthcheck struct {
	Test        []string      `json:"Test,omitempty"`
	Interval    time.Duration `json:"Interval,omitempty"`
	Timeout     time.Duration `json:"Timeout,omitempty"`
	StartPeriod time.Duration `json:"StartPeriod,omitempty"`
	Retries     int           `json:"Retries,omitempty"`
}

// HostConfig is how the container is placed on the host.
type HostConfig struct {
	Mounts        []Mount           `json:"mounts,omitempty"`
	Ports         []PortBinding     `json:"ports,omitempty"`
	PublishAll    bool              `json:"publishAll,omitempty"`
	NetworkMode   string            `json:"networkMode,omitempty"`   // bridge, none, host or a network name
	ExtraNetworks []string          `json:"extraNetworks,omitempty"` // joined with network connect
	DNS           []string          `json:"dns,omitempty"`
	ExtraHosts    []string          `json:"extraHosts,omitempty"` // "name:ip"
	Resources     Resources         `json:"resources"`
	RestartPolicy RestartPolicy     `json:"restartPolicy"`
	AutoRemove    bool              `json:"autoRemove,omitempty"`
	CapAdd        []string          `json:"capAdd,omitempty"`
	CapDrop       []string          `json:"capDrop,omitempty"`
	Privileged    bool              `json:"privileged,omitempty"`
	NoNewPrivs    bool              `json:"noNewPrivileges,omitempty"`
	Seccomp       string            `json:"seccomp,omitempty"` // "" default, "unconfined" or a profile's JSON
	Devices       []Device          `json:"devices,omitempty"`
	ReadOnly      bool              `json:"readOnly,omitempty"`
	Ulimits       []Ulimit          `json:"ulimits,omitempty"`
	Init          bool              `json:"init,omitempty"`
	LogOpts       map[string]string `json:"logOpts,omitempty"`
	Runtime       string            `json:"runtime,omitempty"` // path of a runc-compatible runtime; "" is berth's own
}

// Mount is a bind mount, a named volume or a tmpfs.
type Mount struct {
	Type        string   `json:"type"`             // "bind", "volume" or "tmpfs"
	Source      string   `json:"source,omitempty"` // host path or volume name; empty for an anonymous volume until created
	Destination string   `json:"destination"`
	ReadOnly    bool     `json:"readOnly,omitempty"`
	Options     []string `json:"options,omitempty"` // tmpfs size=, mode=
	Anonymous   bool     `json:"anonymous,omitempty"`
}

// PortBinding publishes a container port on the host.
type PortBinding struct {
	HostIP        string `json:"hostIP,omitempty"`
	HostPort      uint16 `json:"hostPort"` // 0: any free port
	ContainerPort uint16 `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp or udp
}

// Resources are the container's cgroup limits.
type Resources struct {
	Memory      int64  `json:"memory,omitempty"`     // bytes
	MemorySwap  int64  `json:"memorySwap,omitempty"` // bytes of memory+swap; -1 unlimited
	NanoCPUs    int64  `json:"nanoCPUs,omitempty"`
	CPUShares   uint64 `json:"cpuShares,omitempty"`
	CpusetCpus  string `json:"cpusetCpus,omitempty"`
	PidsLimit   int64  `json:"pidsLimit,omitempty"`
	BlkioWeight uint16 `json:"blkioWeight,omitempty"`
	OomScoreAdj *int   `json:"oomScoreAdj,omitempty"`
	ShmSize     int64  `json:"shmSize,omitempty"`
}

// RestartPolicy is Docker's: no, on-failure[:N], always, unless-stopped.
type RestartPolicy struct {
	Name       string `json:"name,omitempty"`
	MaxRetries int    `json:"maxRetries,omitempty"`
}

// Device is a host device made available in the container.
type Device struct {
	PathOnHost        string `json:"pathOnHost"`
	PathInContainer   string `json:"pathInContainer"`
	CgroupPermissions string `json:"cgroupPermissions"`
}

// Ulimit is one resource limit, as --ulimit NAME=SOFT[:HARD].
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// Status values, as Docker names them.
const (
	Created    = "created"
	Running    = "running"
	Paused     = "paused"
	Restarting = "restarting"
	Exited     = "exited"
	Removing   = "removing"
)

// State is how a container is doing, kept as state.json beside its record
// and written by whoever changes it: the command that starts or stops the
// container, and its monitor.
type State struct {
	Status       string             `json:"status"`
	Pid          int                `json:"pid,omitempty"`
	ExitCode     int                `json:"exitCode"`
	OOMKilled    bool               `json:"oomKilled,omitempty"`
	Error        string             `json:"error,omitempty"`
	StartedAt    time.Time          `json:"startedAt,omitzero"`
	FinishedAt   time.Time          `json:"finishedAt,omitzero"`
	RestartCount int                `json:"restartCount,omitempty"`
	ManualStop   bool               `json:"manualStop,omitempty"` // stopped by the user: the restart policy does not apply
	Monitor      Process            `json:"monitor,omitzero"`
	Health       *Health            `json:"health,omitempty"`
	Endpoints    []network.Endpoint `json:"endpoints,omitempty"`
	Warnings     []string           `json:"warnings,omitempty"`
}

// Process identifies a process across pid reuse and reboots.
type Process struct {
	Pid       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"startTime,omitempty"` // clock ticks after boot (/proc/PID/stat field 22)
	BootID    string `json:"bootID,omitempty"`
}

// Health is the result of the health checks so far.
type Health struct {
	Status        string      `json:"Status"` // starting, healthy, unhealthy
	FailingStreak int         `json:"FailingStreak"`
	Log           []HealthLog `json:"Log,omitempty"`
}

// HealthLog is one health check run.
type HealthLog struct {
	Start    time.Time `json:"Start"`
	End      time.Time `json:"End"`
	ExitCode int       `json:"ExitCode"`
	Output   string    `json:"Output"`
}

// Running reports whether the container's process is alive or about to be
// again.
func (s *State) Running() bool {
	return s.Status == Running || s.Status == Paused || s.Status == Restarting
}
