package api

import (
	"strconv"
	"strings"
	"time"
)

// Service is a named set of identical replicas that berth keeps running.
type Service struct {
	// ID is assigned by the control plane and never changes.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Labels are the service's own labels (its containers get
	// Spec.Template.Labels).
	Labels map[string]string `json:"labels,omitempty"`
	Spec   ServiceSpec       `json:"spec"`
	// Generation is bumped on each change of Spec.
	Generation int64         `json:"generation"`
	Status     ServiceStatus `json:"status"`
	CreatedAt  time.Time     `json:"createdAt"`
	UpdatedAt  time.Time     `json:"updatedAt"`
	// Autoscaler is the service's autoscaler, if it has one: filled in
	// when the API answers with a service, never stored with it.
	Autoscaler *Autoscaler `json:"autoscaler,omitempty"`
}

// ServiceStatus is what the controllers last made of a service.
type ServiceStatus struct {
	// ObservedGeneration is the Generation the controllers acted on last.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Revision is the number of the revision the replicas run or roll to.
	Revision int64 `json:"revision,omitempty"`
	// Update is the state of the latest rollout or rollback.
	Update      UpdateState `json:"update,omitempty"`
	Message     string      `json:"message,omitempty"`
	UpdateStart time.Time   `json:"updateStart,omitzero"`
	UpdateEnd   time.Time   `json:"updateEnd,omitzero"`
	// VirtualIPs are the service's addresses on its networks, which its
	// name resolves to and its nodes balance over Endpoints.
	VirtualIPs []VirtualIP `json:"virtualIPs,omitempty"`
	// Endpoints are the IDs of the tasks that take traffic now.
	Endpoints []string `json:"endpoints,omitempty"`
}

// UpdateState is where a rollout or a rollback stands (Swarm's names).
type UpdateState string

// Update states.
const (
	UpdateUpdating          UpdateState = "updating"
	UpdatePaused            UpdateState = "paused"
	UpdateCompleted         UpdateState = "completed"
	UpdateRollbackStarted   UpdateState = "rollback_started"
	UpdateRollbackPaused    UpdateState = "rollback_paused"
	UpdateRollbackCompleted UpdateState = "rollback_completed"
)

// ServiceSpec is what a user asks of a service. Zero fields take the
// defaults SetDefaults writes.
type ServiceSpec struct {
	// Replicas is the number of replicas wanted (default 1; 0 is allowed).
	Replicas *int          `json:"replicas,omitempty"`
	Template TaskTemplate  `json:"template"`
	Update   UpdateConfig  `json:"update"`
	Rollback UpdateConfig  `json:"rollback"`
	Restart  RestartPolicy `json:"restart"`
	// RevisionHistoryLimit is how many old revisions are kept for
	// rollback (default 10).
	RevisionHistoryLimit *int `json:"revisionHistoryLimit,omitempty"`
	// MinReady is how long a new replica must stay ready before it counts
	// as available (default 0).
	MinReady Duration `json:"minReady,omitempty"`
	// ProgressDeadline is how long a rollout may go without a new replica
	// becoming available before it fails (default 10m, as Kubernetes').
	ProgressDeadline Duration     `json:"progressDeadline,omitempty"`
	Ports            []PortConfig `json:"ports,omitempty"`
	// DrainDelay is how long a replica about to go is out of load
	// balancing and DNS before it gets its stop signal, so that the
	// connections it serves finish (default 1s; 0 for none).
	DrainDelay *Duration `json:"drainDelay,omitempty"`
	// SessionAffinity is None (the default: each connection goes to a
	// ready replica picked at random) or ClientIP (a client's connections
	// go to one replica while the replicas stay the same), Kubernetes'
	// names.
	SessionAffinity SessionAffinity `json:"sessionAffinity,omitempty"`
}

// SessionAffinity says how a service's connections pick a replica.
type SessionAffinity string

// The session affinities.
const (
	AffinityNone     SessionAffinity = "None"
	AffinityClientIP SessionAffinity = "ClientIP"
)

// Defaults of a ServiceSpec.
const (
	DefaultReplicas             = 1
	DefaultRevisionHistoryLimit = 10
	DefaultProgressDeadline     = 10 * time.Minute
	DefaultDrainDelay           = time.Second
	DefaultUpdateMonitor        = 5 * time.Second
	DefaultBackoffInitial       = 10 * time.Second
	DefaultBackoffMax           = 5 * time.Minute
	DefaultBackoffReset         = 10 * time.Minute
)

// DesiredReplicas returns the number of replicas wanted, with its default.
func (s ServiceSpec) DesiredReplicas() int {
	if s.Replicas == nil {
		return DefaultReplicas
	}
	return *s.Replicas
}

// SetDefaults fills every zero field that has a default, the template's
// included.
func (s *ServiceSpec) SetDefaults() {
	if s.Replicas == nil {
		s.Replicas = ptr(DefaultReplicas)
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = ptr(DefaultRevisionHistoryLimit)
	}
	if s.ProgressDeadline == 0 {
		s.ProgressDeadline = Duration(DefaultProgressDeadline)
	}
	if s.DrainDelay == nil {
		s.DrainDelay = ptr(Duration(DefaultDrainDelay))
	}
	s.Update.setDefaults()
	s.Rollback.setDefaults()
	s.Restart.setDefaults()
	for i := range s.Ports {
		if s.Ports[i].Protocol == "" {
			s.Ports[i].Protocol = ProtocolTCP
		}
	}
	s.Template.SetDefaults()
}

func ptr[T any](v T) *T { return &v }

// UpdateConfig says how replicas are replaced by a rollout (Spec.Update)
// or a rollback (Spec.Rollback). Either Parallelism with Order (Swarm) or
// MaxSurge with MaxUnavailable (Kubernetes) sets the pace; see Step.
type UpdateConfig struct {
	// Parallelism is how many replicas are replaced at once (default 1).
	Parallelism int `json:"parallelism,omitempty"`
	// Delay is the pause between two batches.
	Delay Duration `json:"delay,omitempty"`
	// Order is start-first or stop-first (default).
	Order UpdateOrder `json:"order,omitempty"`
	// FailureAction is what a failed rollout does: pause (default),
	// rollback or continue.
	FailureAction FailureAction `json:"failureAction,omitempty"`
	// Monitor is how long a new replica is watched for failure after it
	// started (default 5s).
	Monitor Duration `json:"monitor,omitempty"`
	// MaxFailureRatio is the share of replicas that may fail during a
	// rollout before it counts as failed (0 to 1, default 0).
	MaxFailureRatio float64 `json:"maxFailureRatio,omitempty"`
	// MaxSurge and MaxUnavailable, when either is set, replace
	// Parallelism and Order: "2" or "25%" of the desired replicas.
	MaxSurge       IntOrPercent `json:"maxSurge,omitempty"`
	MaxUnavailable IntOrPercent `json:"maxUnavailable,omitempty"`
}

// UpdateOrder is whether a new replica starts before or after its old one
// stops.
type UpdateOrder string

// Update orders.
const (
	OrderStartFirst UpdateOrder = "start-first"
	OrderStopFirst  UpdateOrder = "stop-first"
)

// FailureAction is what a rollout does when it fails.
type FailureAction string

// Failure actions.
const (
	FailurePause    FailureAction = "pause"
	FailureRollback FailureAction = "rollback"
	FailureContinue FailureAction = "continue"
)

func (u *UpdateConfig) setDefaults() {
	if u.Parallelism == 0 {
		u.Parallelism = 1
	}
	if u.Order == "" {
		u.Order = OrderStopFirst
	}
	if u.FailureAction == "" {
		u.FailureAction = FailurePause
	}
	if u.Monitor == 0 {
		u.Monitor = Duration(DefaultUpdateMonitor)
	}
}

// Step returns how many replicas a rollout of a service with replicas
// desired may run above that number (surge) and below it (unavailable) at
// any moment. With MaxSurge or MaxUnavailable set, an unset one counts as 0,
// a percentage of surge rounds up and one of unavailable down, and both 0
// becomes unavailable 1 (Kubernetes' rule); otherwise start-first gives
// (Parallelism, 0) and stop-first (0, Parallelism).
func (u UpdateConfig) Step(replicas int) (surge, unavailable int) {
	if u.MaxSurge != "" || u.MaxUnavailable != "" {
		surge = u.MaxSurge.Resolve(replicas, true)
		unavailable = u.MaxUnavailable.Resolve(replicas, false)
		if surge == 0 && unavailable == 0 {
			unavailable = 1
		}
		return surge, unavailable
	}
	p := max(u.Parallelism, 1)
	if u.Order == OrderStartFirst {
		return p, 0
	}
	return 0, p
}

// IntOrPercent is a count ("2") or a share of a total ("25%"); "" is unset.
type IntOrPercent string

// parse returns the number and whether it is a percentage.
func (v IntOrPercent) parse() (n int, percent bool, err error) {
	s, percent := strings.CutSuffix(string(v), "%")
	n, err = strconv.Atoi(s)
	return n, percent, err
}

// Resolve returns the count v stands for out of total, rounding a
// percentage up or down; unset or malformed values give 0.
func (v IntOrPercent) Resolve(total int, roundUp bool) int {
	n, percent, err := v.parse()
	if err != nil || n < 0 {
		return 0
	}
	if !percent {
		return n
	}
	if roundUp {
		return (n*total + 99) / 100
	}
	return n * total / 100
}

// RestartPolicy says when and how fast a replica that ended is replaced.
// The first replacement comes after Delay (default 0: at once); each
// further one of the same slot waits Backoff.Initial, doubling up to
// Backoff.Max, until a replica has run for Backoff.Reset.
type RestartPolicy struct {
	// Condition is none, on-failure or any (default).
	Condition RestartCondition `json:"condition,omitempty"`
	Delay     Duration         `json:"delay,omitempty"`
	// MaxAttempts bounds the replacements within Window (0: no bound).
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// Window is the span MaxAttempts counts over (0: the service's life).
	Window  Duration `json:"window,omitempty"`
	Backoff Backoff  `json:"backoff"`
}

// Backoff is an exponential backoff: Initial doubling to Max, forgotten
// after Reset of good running (defaults 10s, 5m and 10m, as Kubernetes').
type Backoff struct {
	Initial Duration `json:"initial,omitempty"`
	Max     Duration `json:"max,omitempty"`
	Reset   Duration `json:"reset,omitempty"`
}

// RestartCondition is which endings of a replica lead to a new one.
type RestartCondition string

// Restart conditions.
const (
	RestartNone      RestartCondition = "none"
	RestartOnFailure RestartCondition = "on-failure"
	RestartAny       RestartCondition = "any"
)

func (p *RestartPolicy) setDefaults() {
	if p.Condition == "" {
		p.Condition = RestartAny
	}
	if p.Backoff.Initial == 0 {
		p.Backoff.Initial = Duration(DefaultBackoffInitial)
	}
	if p.Backoff.Max == 0 {
		p.Backoff.Max = Duration(DefaultBackoffMax)
	}
	if p.Backoff.Reset == 0 {
		p.Backoff.Reset = Duration(DefaultBackoffReset)
	}
}

// NextDelay returns how long to wait before replacing a replica whose slot
// has already been restarted restarts times since its backoff was last
// reset: Delay for the first, then Backoff.Initial doubling to Backoff.Max.
// Zero backoff fields count as their defaults.
func (p RestartPolicy) NextDelay(restarts int) time.Duration {
	if restarts <= 0 {
		return p.Delay.Std()
	}
	p.setDefaults()
	d, limit := p.Backoff.Initial.Std(), p.Backoff.Max.Std()
	for i := 1; i < restarts && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// PortConfig publishes a replica port on the host.
type PortConfig struct {
	Name string `json:"name,omitempty"`
	// Protocol is tcp (default) or udp.
	Protocol Protocol `json:"protocol,omitempty"`
	// TargetPort is the port inside the replicas.
	TargetPort int `json:"targetPort"`
	// PublishedPort is the host port; 0 lets the control plane pick one.
	PublishedPort int `json:"publishedPort,omitempty"`
}

// Protocol is a transport protocol.
type Protocol string

// Protocols.
const (
	ProtocolTCP Protocol = "tcp"
	ProtocolUDP Protocol = "udp"
)
