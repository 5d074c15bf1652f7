package api

import (
	"cmp"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/berth-dev/berth/internal/errdefs"
)

// invalid returns a validation error: the field, what is wrong with it.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// dnsLabel is an RFC 1035 label, as Kubernetes service names are.
var dnsLabel = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// ValidateName checks that name can name a service: a DNS label, since
// services are found by name.
func ValidateName(name string) error {
	if !dnsLabel.MatchString(name) {
		return invalid(fmt.Sprintf("service name %q", name),
			"must be lowercase letters, digits and '-', start with a letter, end with a letter or digit, at most 63 characters")
	}
	return nil
}

// Validate checks what a user gives of a service: its name, labels and
// spec (not ID, Generation or Status, which berth writes).
func (s Service) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if err := validateLabels("labels", s.Labels); err != nil {
		return err
	}
	return s.Spec.Validate()
}

// Validate checks a service spec; zero fields stand for their defaults.
func (s ServiceSpec) Validate() error {
	if s.Replicas != nil && *s.Replicas < 0 {
		return invalid("replicas", "%d: must be 0 or more", *s.Replicas)
	}
	if s.RevisionHistoryLimit != nil && *s.RevisionHistoryLimit < 0 {
		return invalid("revisionHistoryLimit", "%d: must be 0 or more", *s.RevisionHistoryLimit)
	}
	if err := checkDurations(map[string]Duration{"minReady": s.MinReady, "progressDeadline": s.ProgressDeadline}); err != nil {
		return err
	}
	if s.DrainDelay != nil && *s.DrainDelay < 0 {
		return invalid("drainDelay", "%s: must not be negative", *s.DrainDelay)
	}
	switch s.SessionAffinity {
	case "", AffinityNone, AffinityClientIP:
	default:
		return invalid("sessionAffinity", "%q: must be None or ClientIP", s.SessionAffinity)
	}
	if err := s.Update.validate("update"); err != nil {
		return err
	}
	if err := s.Rollback.validate("rollback"); err != nil {
		return err
	}
	if err := s.Restart.validate(); err != nil {
		return err
	}
	if err := validatePorts(s.Ports); err != nil {
		return err
	}
	return s.Template.Validate()
}

// checkDurations refuses negative durations, naming the first in field
// order.
func checkDurations(d map[string]Duration) error {
	names := make([]string, 0, len(d))
	for n := range d {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if d[n] < 0 {
			return invalid(n, "%s: must not be negative", d[n])
		}
	}
	return nil
}

// oneOf checks that v is empty (the default) or one of allowed.
func oneOf[T ~string](field string, v T, allowed ...T) error {
	if v == "" || slices.Contains(allowed, v) {
		return nil
	}
	s := make([]string, len(allowed))
	for i, a := range allowed {
		s[i] = string(a)
	}
	return invalid(field, "%q: must be %s or %s", v, strings.Join(s[:len(s)-1], ", "), s[len(s)-1])
}

func (u UpdateConfig) validate(field string) error {
	if u.Parallelism < 0 {
		return invalid(field+".parallelism", "%d: must be 0 or more", u.Parallelism)
	}
	if err := checkDurations(map[string]Duration{field + ".delay": u.Delay, field + ".monitor": u.Monitor}); err != nil {
		return err
	}
	if err := oneOf(field+".order", u.Order, OrderStartFirst, OrderStopFirst); err != nil {
		return err
	}
	if err := oneOf(field+".failureAction", u.FailureAction, FailurePause, FailureRollback, FailureContinue); err != nil {
		return err
	}
	if u.MaxFailureRatio < 0 || u.MaxFailureRatio > 1 {
		return invalid(field+".maxFailureRatio", "%g: must be from 0 to 1", u.MaxFailureRatio)
	}
	if err := u.MaxSurge.validate(field + ".maxSurge"); err != nil {
		return err
	}
	return u.MaxUnavailable.validate(field + ".maxUnavailable")
}

func (v IntOrPercent) validate(field string) error {
	if v == "" {
		return nil
	}
	if n, percent, err := v.parse(); err != nil || n < 0 || percent && n > 100 {
		return invalid(field, "%q: must be a count such as 2 or a percentage such as 25%%", v)
	}
	return nil
}

func (p RestartPolicy) validate() error {
	if err := oneOf("restart.condition", p.Condition, RestartNone, RestartOnFailure, RestartAny); err != nil {
		return err
	}
	if p.MaxAttempts < 0 {
		return invalid("restart.maxAttempts", "%d: must be 0 or more", p.MaxAttempts)
	}
	if err := checkDurations(map[string]Duration{"restart.delay": p.Delay, "restart.window": p.Window,
		"restart.backoff.initial": p.Backoff.Initial, "restart.backoff.max": p.Backoff.Max,
		"restart.backoff.reset": p.Backoff.Reset}); err != nil {
		return err
	}
	if p.Backoff.Initial > 0 && p.Backoff.Max > 0 && p.Backoff.Max < p.Backoff.Initial {
		return invalid("restart.backoff.max", "%s: must not be below restart.backoff.initial (%s)", p.Backoff.Max, p.Backoff.Initial)
	}
	return nil
}

func validatePorts(ports []PortConfig) error {
	seen := map[string]bool{}
	for i, p := range ports {
		field := fmt.Sprintf("ports[%d]", i)
		if err := oneOf(field+".protocol", p.Protocol, ProtocolTCP, ProtocolUDP); err != nil {
			return err
		}
		if p.TargetPort < 1 || p.TargetPort > 65535 {
			return invalid(field+".targetPort", "%d: must be from 1 to 65535", p.TargetPort)
		}
		if p.PublishedPort < 0 || p.PublishedPort > 65535 {
			return invalid(field+".publishedPort", "%d: must be from 1 to 65535 (0 picks one)", p.PublishedPort)
		}
		proto := cmp.Or(p.Protocol, ProtocolTCP)
		key := fmt.Sprintf("%d/%s", p.PublishedPort, proto)
		if p.PublishedPort != 0 && seen[key] {
			return invalid(field+".publishedPort", "%s is published twice", key)
		}
		seen[key] = true
	}
	return nil
}

// Validate checks a task template; zero fields stand for their defaults.
func (t TaskTemplate) Validate() error {
	if t.Image == "" {
		return invalid("image", "missing: name the image the replicas run")
	}
	if strings.ContainsFunc(t.Image, unicode.IsSpace) {
		return invalid("image", "%q: must not contain spaces", t.Image)
	}
	if err := oneOf("pullPolicy", t.PullPolicy, PullAlways, PullMissing, PullNever); err != nil {
		return err
	}
	for _, e := range t.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return invalid("env", "%q: must be KEY=VALUE", e)
		}
	}
	for i, m := range t.Mounts {
		if err := m.validate(fmt.Sprintf("mounts[%d]", i)); err != nil {
			return err
		}
	}
	for _, n := range t.Networks {
		if n == "" {
			return invalid("networks", "empty network name")
		}
	}
	if err := validateLabels("template.labels", t.Labels); err != nil {
		return err
	}
	if err := t.Resources.validate(); err != nil {
		return err
	}
	if err := checkDurations(map[string]Duration{"stopGracePeriod": t.StopGracePeriod}); err != nil {
		return err
	}
	probes := []struct {
		name string
		p    *Probe
	}{{"livenessProbe", t.LivenessProbe}, {"readinessProbe", t.ReadinessProbe}, {"startupProbe", t.StartupProbe}}
	for _, pr := range probes {
		if pr.p == nil {
			continue
		}
		if err := pr.p.validate(pr.name); err != nil {
			return err
		}
	}
	return nil
}

func validateLabels(field string, labels map[string]string) error {
	for k := range labels {
		if k == "" || strings.ContainsFunc(k, unicode.IsSpace) {
			return invalid(field, "key %q: must be non-empty and without spaces", k)
		}
	}
	return nil
}

func (m Mount) validate(field string) error {
	if err := oneOf(field+".type", m.Type, MountBind, MountVolume, MountTmpfs); err != nil {
		return err
	}
	switch {
	case m.Type == "":
		return invalid(field+".type", "missing: must be bind, volume or tmpfs")
	case !path.IsAbs(m.Target):
		return invalid(field+".target", "%q: must be an absolute path", m.Target)
	case m.Type == MountBind && !path.IsAbs(m.Source):
		return invalid(field+".source", "%q: a bind mount's source must be an absolute host path", m.Source)
	case m.Type == MountTmpfs && m.Source != "":
		return invalid(field+".source", "%q: a tmpfs mount has no source", m.Source)
	}
	return nil
}

func (r ResourceRequirements) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"resources.limits.nanoCPUs", r.Limits.NanoCPUs}, {"resources.limits.memoryBytes", r.Limits.MemoryBytes},
		{"resources.reservations.nanoCPUs", r.Reservations.NanoCPUs}, {"resources.reservations.memoryBytes", r.Reservations.MemoryBytes},
	} {
		if f.v < 0 {
			return invalid(f.name, "%d: must be 0 or more", f.v)
		}
	}
	if l, res := r.Limits.NanoCPUs, r.Reservations.NanoCPUs; l > 0 && res > l {
		return invalid("resources.reservations.nanoCPUs", "%d: must not exceed the limit %d", res, l)
	}
	if l, res := r.Limits.MemoryBytes, r.Reservations.MemoryBytes; l > 0 && res > l {
		return invalid("resources.reservations.memoryBytes", "%d: must not exceed the limit %d", res, l)
	}
	return nil
}

func (p Probe) validate(field string) error {
	handlers := 0
	if len(p.Exec) > 0 {
		handlers++
	}
	if p.HTTPGet != nil {
		handlers++
		if p.HTTPGet.Port < 1 || p.HTTPGet.Port > 65535 {
			return invalid(field+".httpGet.port", "%d: must be from 1 to 65535", p.HTTPGet.Port)
		}
		if err := oneOf(field+".httpGet.scheme", p.HTTPGet.Scheme, SchemeHTTP, SchemeHTTPS); err != nil {
			return err
		}
		if p.HTTPGet.Path != "" && !strings.HasPrefix(p.HTTPGet.Path, "/") {
			return invalid(field+".httpGet.path", "%q: must start with /", p.HTTPGet.Path)
		}
	}
	if p.TCPSocket != nil {
		handlers++
		if p.TCPSocket.Port < 1 || p.TCPSocket.Port > 65535 {
			return invalid(field+".tcpSocket.port", "%d: must be from 1 to 65535", p.TCPSocket.Port)
		}
	}
	if handlers != 1 {
		return invalid(field, "needs exactly one of exec, httpGet and tcpSocket (has %d)", handlers)
	}
	if err := checkDurations(map[string]Duration{field + ".initialDelay": p.InitialDelay,
		field + ".period": p.Period, field + ".timeout": p.Timeout}); err != nil {
		return err
	}
	if p.SuccessThreshold < 0 || p.FailureThreshold < 0 {
		return invalid(field, "thresholds must be 1 or more")
	}
	if field != "readinessProbe" && p.SuccessThreshold > 1 {
		return invalid(field+".successThreshold", "%d: must be 1 for a %s", p.SuccessThreshold, field)
	}
	return nil
}

// Validate checks a task as the controllers write it.
func (t Task) Validate() error {
	switch {
	case t.ID == "":
		return invalid("task id", "missing")
	case t.ServiceID == "":
		return invalid("task serviceID", "missing")
	case t.Slot < 1:
		return invalid("task slot", "%d: must be 1 or more", t.Slot)
	case t.Revision < 1:
		return invalid("task revision", "%d: must be 1 or more", t.Revision)
	case !slices.Contains(taskStates, t.DesiredState):
		return invalid("task desiredState", "%q: unknown state", t.DesiredState)
	case t.Status.State != "" && !slices.Contains(taskStates, t.Status.State):
		return invalid("task status.state", "%q: unknown state", t.Status.State)
	}
	return t.Template.Validate()
}

// Validate checks a node as its agent registers it.
func (n Node) Validate() error {
	switch {
	case n.ID == "":
		return invalid("node id", "missing")
	case n.Name == "":
		return invalid("node name", "missing")
	case n.Capacity.NanoCPUs < 0 || n.Capacity.MemoryBytes < 0:
		return invalid("node capacity", "must not be negative")
	}
	if err := oneOf("node state", n.State, NodeUnknown, NodeReady, NodeDown); err != nil {
		return err
	}
	return validateLabels("node labels", n.Labels)
}
