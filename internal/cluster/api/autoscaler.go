package api

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Autoscaler sets a service's replicas from its load: Kubernetes'
// HorizontalPodAutoscaler (CPU and memory utilization) and KEDA's
// ScaledObject (schedules and events, scale to zero) in one object, one per
// service, named after it.
type Autoscaler struct {
	// Service is the name of the service it scales.
	Service   string           `json:"service"`
	Spec      AutoscalerSpec   `json:"spec"`
	Status    AutoscalerStatus `json:"status"`
	CreatedAt time.Time        `json:"createdAt"`
	UpdatedAt time.Time        `json:"updatedAt"`
}

// AutoscalerSpec is what a user asks of an autoscaler. Zero durations
// take the defaults SetDefaults writes.
type AutoscalerSpec struct {
	// MinReplicas may be 0 only with a trigger that can wake the service
	// (cron, redis-list, http-rps, metrics-api).
	MinReplicas int `json:"minReplicas"`
	MaxReplicas int `json:"maxReplicas"`
	// CPUPercent and MemoryPercent are target average utilizations, in
	// percent of each replica's reservation (or, without one, its limit).
	CPUPercent    int       `json:"cpuPercent,omitempty"`
	MemoryPercent int       `json:"memoryPercent,omitempty"`
	Triggers      []Trigger `json:"triggers,omitempty"`
	// PollingInterval is how often metrics are read and triggers asked
	// (default 1s; KEDA's is 30s).
	PollingInterval Duration `json:"pollingInterval,omitempty"`
	// Cooldown is how long the triggers must be inactive before a
	// service at MinReplicas 0 goes to zero (default 300s, KEDA's).
	Cooldown Duration `json:"cooldownPeriod,omitempty"`
	// ScaleUpStabilization and ScaleDownStabilization are the HPA's
	// stabilization windows (defaults 0s and 300s): the count follows the
	// lowest (up) or highest (down) recommendation of the window.
	ScaleUpStabilization   *Duration `json:"scaleUpStabilization,omitempty"`
	ScaleDownStabilization *Duration `json:"scaleDownStabilization,omitempty"`
}

// Trigger is one of KEDA's scalers: Type says which, Metadata its
// settings (KEDA's names where KEDA has the scaler).
//
//	cron         start=CRON end=CRON replicas=K [timezone=Area/City]
//	redis-list   address=HOST:PORT list=NAME target=T [password=P] [database=N] [activation=A]
//	http-rps     target=T [activation=A]
//	metrics-api  url=URL path=JSONPATH target=T [activation=A]
type Trigger struct {
	Type     string            `json:"type"`
	Metadata map[string]string `json:"metadata"`
}

// Trigger types.
const (
	TriggerCron       = "cron"
	TriggerRedisList  = "redis-list"
	TriggerHTTPRPS    = "http-rps"
	TriggerMetricsAPI = "metrics-api"
)

// triggerKeys are each trigger type's metadata keys: required ones first,
// then optional ones after "|".
var triggerKeys = map[string][2][]string{
	TriggerCron:       {{"start", "end", "replicas"}, {"timezone"}},
	TriggerRedisList:  {{"address", "list", "target"}, {"password", "database", "activation"}},
	TriggerHTTPRPS:    {{"target"}, {"activation"}},
	TriggerMetricsAPI: {{"url", "path", "target"}, {"activation"}},
}

// TriggerTypes lists the trigger types, sorted.
func TriggerTypes() []string {
	out := make([]string, 0, len(triggerKeys))
	for k := range triggerKeys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// AutoscalerStatus is what the autoscaler last saw and did.
type AutoscalerStatus struct {
	// CurrentReplicas and DesiredReplicas are the service's replicas when
	// it last looked, and what it wants them to be.
	CurrentReplicas int `json:"currentReplicas"`
	DesiredReplicas int `json:"desiredReplicas"`
	// Metrics are the last readings, one per metric and trigger.
	Metrics []MetricStatus `json:"metrics,omitempty"`
	// LastActive is when a trigger was last active (for Cooldown).
	LastActive time.Time `json:"lastActive,omitzero"`
	// Decisions are the last changes of the replicas, oldest first.
	Decisions []ScaleDecision `json:"decisions,omitempty"`
	// Observed is when the metrics were read.
	Observed time.Time `json:"observed,omitzero"`
}

// MaxDecisions is how many decisions a status keeps.
const MaxDecisions = 10

// MetricStatus is one metric's or trigger's last reading.
type MetricStatus struct {
	// Name is "cpu", "memory" or the trigger's type and index ("cron/0").
	Name string `json:"name"`
	// Current and Target say, in the metric's unit, where it stands
	// ("182%", "50%"; "12 items", "5 per replica").
	Current string `json:"current,omitempty"`
	Target  string `json:"target,omitempty"`
	// Desired is the replicas this metric alone asks for (-1: none, as an
	// inactive schedule).
	Desired int  `json:"desired"`
	Active  bool `json:"active,omitempty"`
	// Error says why the metric could not be read; the count is then held.
	Error string `json:"error,omitempty"`
}

// ScaleDecision is one change of a service's replicas.
type ScaleDecision struct {
	Time   time.Time `json:"time"`
	From   int       `json:"from"`
	To     int       `json:"to"`
	Reason string    `json:"reason"`
}

// String reads "2 → 5: cpu 182% of 50% target".
func (d ScaleDecision) String() string { return fmt.Sprintf("%d → %d: %s", d.From, d.To, d.Reason) }

// Defaults of an AutoscalerSpec.
const (
	DefaultPollingInterval        = time.Second
	DefaultCooldown               = 300 * time.Second
	DefaultScaleUpStabilization   = 0
	DefaultScaleDownStabilization = 300 * time.Second
)

// SetDefaults fills in the zero fields that have defaults.
func (s *AutoscalerSpec) SetDefaults() {
	if s.PollingInterval == 0 {
		s.PollingInterval = Duration(DefaultPollingInterval)
	}
	if s.Cooldown == 0 {
		s.Cooldown = Duration(DefaultCooldown)
	}
	if s.ScaleUpStabilization == nil {
		s.ScaleUpStabilization = ptr(Duration(DefaultScaleUpStabilization))
	}
	if s.ScaleDownStabilization == nil {
		s.ScaleDownStabilization = ptr(Duration(DefaultScaleDownStabilization))
	}
}

// Validate checks the autoscaler's own fields; what needs the service (a
// reservation for CPU) or the world (a cron expression's parse, a Redis
// server that answers) is checked where those are known.
func (a Autoscaler) Validate() error {
	if err := ValidateName(a.Service); err != nil {
		return err
	}
	return a.Spec.Validate()
}

// Validate checks a spec; zero durations stand for their defaults.
func (s AutoscalerSpec) Validate() error {
	switch {
	case s.MinReplicas < 0:
		return invalid("minReplicas", "%d: must be 0 or more", s.MinReplicas)
	case s.MaxReplicas < 1:
		return invalid("maxReplicas", "%d: must be 1 or more", s.MaxReplicas)
	case s.MinReplicas > s.MaxReplicas:
		return invalid("minReplicas", "%d is above maxReplicas %d", s.MinReplicas, s.MaxReplicas)
	case s.CPUPercent < 0:
		return invalid("cpuPercent", "%d: must be above 0", s.CPUPercent)
	case s.MemoryPercent < 0:
		return invalid("memoryPercent", "%d: must be above 0", s.MemoryPercent)
	case s.CPUPercent == 0 && s.MemoryPercent == 0 && len(s.Triggers) == 0:
		return invalid("autoscaler", "nothing to scale on: give a CPU or memory target or a trigger")
	case s.MinReplicas == 0 && len(s.Triggers) == 0:
		return invalid("minReplicas", "0 needs a trigger that can wake the service (%s)", strings.Join(TriggerTypes(), ", "))
	}
	d := map[string]Duration{"pollingInterval": s.PollingInterval, "cooldownPeriod": s.Cooldown}
	if s.ScaleUpStabilization != nil {
		d["scaleUpStabilization"] = *s.ScaleUpStabilization
	}
	if s.ScaleDownStabilization != nil {
		d["scaleDownStabilization"] = *s.ScaleDownStabilization
	}
	if err := checkDurations(d); err != nil {
		return err
	}
	if s.PollingInterval != 0 && s.PollingInterval.Std() < 100*time.Millisecond {
		return invalid("pollingInterval", "%s: must be 100ms or more", s.PollingInterval)
	}
	for i, t := range s.Triggers {
		if err := t.Validate(); err != nil {
			return fmt.Errorf("triggers[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate checks a trigger's type, keys and numbers; the values'
// meaning (a cron expression, a time zone, an address) is checked by the
// autoscaler that uses them.
func (t Trigger) Validate() error {
	keys, ok := triggerKeys[t.Type]
	if !ok {
		return invalid("type", "%q: unknown trigger; use one of %s", t.Type, strings.Join(TriggerTypes(), ", "))
	}
	for _, k := range keys[0] {
		if t.Metadata[k] == "" {
			return invalid(t.Type, "%s is missing", k)
		}
	}
	for k := range t.Metadata {
		if !slices.Contains(keys[0], k) && !slices.Contains(keys[1], k) {
			return invalid(t.Type, "unknown key %q; use %s", k, strings.Join(append(slices.Clone(keys[0]), keys[1]...), ", "))
		}
	}
	for _, k := range []string{"target", "activation"} {
		v, ok := t.Metadata[k]
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || (k == "target" && f == 0) {
			return invalid(t.Type, "%s=%s: must be a number above 0", k, v)
		}
	}
	if v, ok := t.Metadata["replicas"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			return invalid(t.Type, "replicas=%s: must be a whole number, 0 or more", v)
		}
	}
	if v, ok := t.Metadata["database"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			return invalid(t.Type, "database=%s: must be a whole number, 0 or more", v)
		}
	}
	return nil
}

// AutoscalersPrefix + service name → Autoscaler.
const AutoscalersPrefix = "/autoscalers/"

// AutoscalerKey is the key of the autoscaler of the service called name.
func AutoscalerKey(name string) string { return AutoscalersPrefix + name }
