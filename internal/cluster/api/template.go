package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// TaskTemplate is what every replica of a revision runs.
type TaskTemplate struct {
	Image string `json:"image"`
	// PullPolicy is always, missing (default) or never.
	PullPolicy PullPolicy `json:"pullPolicy,omitempty"`
	// Command replaces the image's entrypoint, Args its command.
	Command   []string             `json:"command,omitempty"`
	Args      []string             `json:"args,omitempty"`
	Env       []string             `json:"env,omitempty"` // KEY=VALUE
	Mounts    []Mount              `json:"mounts,omitempty"`
	Networks  []string             `json:"networks,omitempty"`
	Labels    map[string]string    `json:"labels,omitempty"`
	User      string               `json:"user,omitempty"`
	WorkDir   string               `json:"workDir,omitempty"`
	Resources ResourceRequirements `json:"resources"`
	// StopSignal is sent to stop a replica (default: the image's, else
	// SIGTERM), StopGracePeriod later SIGKILL (default 10s).
	StopSignal      string   `json:"stopSignal,omitempty"`
	StopGracePeriod Duration `json:"stopGracePeriod,omitempty"`
	LivenessProbe   *Probe   `json:"livenessProbe,omitempty"`
	ReadinessProbe  *Probe   `json:"readinessProbe,omitempty"`
	StartupProbe    *Probe   `json:"startupProbe,omitempty"`
}

// DefaultStopGracePeriod is the time between the stop signal and SIGKILL.
const DefaultStopGracePeriod = 10 * time.Second

// SetDefaults fills every zero field that has a default.
func (t *TaskTemplate) SetDefaults() {
	if t.PullPolicy == "" {
		t.PullPolicy = PullMissing
	}
	if t.StopGracePeriod == 0 {
		t.StopGracePeriod = Duration(DefaultStopGracePeriod)
	}
	for _, p := range []*Probe{t.LivenessProbe, t.ReadinessProbe, t.StartupProbe} {
		if p != nil {
			p.setDefaults()
		}
	}
}

// Hash returns a digest ("sha256:…") of the template with its defaults, so
// that two templates that run the same replicas hash the same: an update
// that changes nothing is seen as such.
func (t TaskTemplate) Hash() string {
	t = t.clone()
	t.SetDefaults()
	b, err := json.Marshal(t) // maps are written in key order
	if err != nil {
		panic("api: template hash: " + err.Error()) // every field is plain data
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// clone copies t deeply enough that SetDefaults on the copy leaves t as it
// was (the probes are the only pointers it writes through).
func (t TaskTemplate) clone() TaskTemplate {
	for _, p := range []**Probe{&t.LivenessProbe, &t.ReadinessProbe, &t.StartupProbe} {
		if *p != nil {
			c := **p
			*p = &c
		}
	}
	return t
}

// PullPolicy is when an image is pulled before a replica starts.
type PullPolicy string

// Pull policies.
const (
	PullAlways  PullPolicy = "always"
	PullMissing PullPolicy = "missing"
	PullNever   PullPolicy = "never"
)

// Mount is a file system mounted into each replica.
type Mount struct {
	// Type is bind, volume or tmpfs.
	Type MountType `json:"type"`
	// Source is a host path (bind) or a volume name (volume; empty for an
	// anonymous volume); tmpfs has none.
	Source   string `json:"source,omitempty"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// MountType is a kind of mount.
type MountType string

// Mount types.
const (
	MountBind   MountType = "bind"
	MountVolume MountType = "volume"
	MountTmpfs  MountType = "tmpfs"
)

// Resources is an amount of CPU and memory.
type Resources struct {
	NanoCPUs    int64 `json:"nanoCPUs,omitempty"` // 1e9 is one CPU
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
}

// Add returns r plus o.
func (r Resources) Add(o Resources) Resources {
	return Resources{r.NanoCPUs + o.NanoCPUs, r.MemoryBytes + o.MemoryBytes}
}

// Sub returns r minus o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{r.NanoCPUs - o.NanoCPUs, r.MemoryBytes - o.MemoryBytes}
}

// ResourceRequirements are a replica's limits (enforced by cgroups) and
// reservations (what the scheduler sets aside on a node for it).
type ResourceRequirements struct {
	Limits       Resources `json:"limits"`
	Reservations Resources `json:"reservations"`
}

// Probe checks a replica: exactly one of Exec, HTTPGet and TCPSocket says
// how, the rest when and how often (Kubernetes' fields and defaults).
type Probe struct {
	Exec      []string   `json:"exec,omitempty"`
	HTTPGet   *HTTPGet   `json:"httpGet,omitempty"`
	TCPSocket *TCPSocket `json:"tcpSocket,omitempty"`
	// InitialDelay is the wait after start before the first check.
	InitialDelay Duration `json:"initialDelay,omitempty"`
	// Period is the time between checks (default 10s).
	Period Duration `json:"period,omitempty"`
	// Timeout bounds one check (default 1s).
	Timeout Duration `json:"timeout,omitempty"`
	// SuccessThreshold is how many successes in a row count as passing
	// after a failure (default 1; must be 1 for liveness and startup).
	SuccessThreshold int `json:"successThreshold,omitempty"`
	// FailureThreshold is how many failures in a row count as failing
	// (default 3).
	FailureThreshold int `json:"failureThreshold,omitempty"`
}

// Probe defaults (Kubernetes').
const (
	DefaultProbePeriod           = 10 * time.Second
	DefaultProbeTimeout          = time.Second
	DefaultProbeSuccessThreshold = 1
	DefaultProbeFailureThreshold = 3
)

func (p *Probe) setDefaults() {
	if p.Period == 0 {
		p.Period = Duration(DefaultProbePeriod)
	}
	if p.Timeout == 0 {
		p.Timeout = Duration(DefaultProbeTimeout)
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = DefaultProbeSuccessThreshold
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = DefaultProbeFailureThreshold
	}
	if p.HTTPGet != nil {
		h := *p.HTTPGet
		if h.Path == "" {
			h.Path = "/"
		}
		if h.Scheme == "" {
			h.Scheme = SchemeHTTP
		}
		p.HTTPGet = &h
	}
}

// HTTPGet probes by an HTTP GET to the replica's own address; a status
// from 200 to 399 passes.
type HTTPGet struct {
	Path    string            `json:"path,omitempty"` // default "/"
	Port    int               `json:"port"`
	Scheme  Scheme            `json:"scheme,omitempty"` // HTTP (default) or HTTPS
	Headers map[string]string `json:"headers,omitempty"`
}

// Scheme is HTTP or HTTPS.
type Scheme string

// Schemes.
const (
	SchemeHTTP  Scheme = "HTTP"
	SchemeHTTPS Scheme = "HTTPS"
)

// TCPSocket probes by opening a TCP connection to the replica's port.
type TCPSocket struct {
	Port int `json:"port"`
}

// Revision is one version of a service's template, kept for rollouts and
// rollbacks. Revisions of a service are numbered from 1.
type Revision struct {
	ServiceID string       `json:"serviceID"`
	Number    int64        `json:"number"`
	Template  TaskTemplate `json:"template"`
	// Hash is Template.Hash(): a new template with the hash of an existing
	// revision is that revision again.
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"createdAt"`
}
