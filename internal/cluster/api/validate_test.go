package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func validService() Service {
	return Service{Name: "web", Spec: ServiceSpec{Template: TaskTemplate{Image: "nginx:1.25"}}}
}

func TestServiceValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Service)
		want   string // "" for valid; else a part of the error
	}{
		{"minimal", func(*Service) {}, ""},
		{"full", func(s *Service) {
			s.Spec.SetDefaults()
			s.Spec.Update.MaxSurge = "25%"
			s.Spec.Template.ReadinessProbe = &Probe{HTTPGet: &HTTPGet{Port: 80}, SuccessThreshold: 2}
			s.Spec.Ports = []PortConfig{{TargetPort: 80, PublishedPort: 8080}, {TargetPort: 53, PublishedPort: 8080, Protocol: ProtocolUDP}}
		}, ""},
		{"zero replicas", func(s *Service) { s.Spec.Replicas = ptr(0) }, ""},
		{"negative replicas", func(s *Service) { s.Spec.Replicas = ptr(-1) }, "replicas: -1: must be 0 or more"},
		{"uppercase name", func(s *Service) { s.Name = "Web" }, `service name "Web"`},
		{"dotted name", func(s *Service) { s.Name = "a.b" }, `service name "a.b"`},
		{"leading digit", func(s *Service) { s.Name = "1web" }, `service name "1web"`},
		{"trailing dash", func(s *Service) { s.Name = "web-" }, `service name "web-"`},
		{"long name", func(s *Service) { s.Name = strings.Repeat("a", 64) }, "at most 63"},
		{"empty name", func(s *Service) { s.Name = "" }, `service name ""`},
		{"image missing", func(s *Service) { s.Spec.Template.Image = "" }, "image: missing"},
		{"image with space", func(s *Service) { s.Spec.Template.Image = "ngi nx" }, "must not contain spaces"},
		{"negative delay", func(s *Service) { s.Spec.Update.Delay = Duration(-1) }, "update.delay: -1ns: must not be negative"},
		{"negative grace", func(s *Service) { s.Spec.Template.StopGracePeriod = -Duration(1e9) }, "stopGracePeriod: -1s"},
		{"negative backoff", func(s *Service) { s.Spec.Restart.Backoff.Max = -1 }, "restart.backoff.max"},
		{"client affinity", func(s *Service) { s.Spec.SessionAffinity = AffinityClientIP }, ""},
		{"unknown affinity", func(s *Service) { s.Spec.SessionAffinity = "cookie" }, `sessionAffinity: "cookie": must be None or ClientIP`},
		{"backoff max below initial", func(s *Service) {
			s.Spec.Restart.Backoff = Backoff{Initial: Duration(2e9), Max: Duration(1e9)}
		}, "must not be below"},
		{"unknown order", func(s *Service) { s.Spec.Update.Order = "sideways" }, `update.order: "sideways": must be start-first or stop-first`},
		{"unknown failure action", func(s *Service) { s.Spec.Rollback.FailureAction = "panic" }, "rollback.failureAction"},
		{"unknown restart condition", func(s *Service) { s.Spec.Restart.Condition = "always" }, "restart.condition"},
		{"unknown pull policy", func(s *Service) { s.Spec.Template.PullPolicy = "sometimes" }, "pullPolicy"},
		{"failure ratio", func(s *Service) { s.Spec.Update.MaxFailureRatio = 1.5 }, "maxFailureRatio: 1.5"},
		{"bad surge", func(s *Service) { s.Spec.Update.MaxSurge = "lots" }, "update.maxSurge"},
		{"surge above 100%", func(s *Service) { s.Spec.Update.MaxUnavailable = "150%" }, "update.maxUnavailable"},
		{"history", func(s *Service) { s.Spec.RevisionHistoryLimit = ptr(-2) }, "revisionHistoryLimit"},
		{"env", func(s *Service) { s.Spec.Template.Env = []string{"NOEQUALS"} }, `env: "NOEQUALS"`},
		{"port range", func(s *Service) { s.Spec.Ports = []PortConfig{{TargetPort: 70000}} }, "ports[0].targetPort"},
		{"port twice", func(s *Service) {
			s.Spec.Ports = []PortConfig{{TargetPort: 80, PublishedPort: 80}, {TargetPort: 81, PublishedPort: 80, Protocol: ProtocolTCP}}
		}, "80/tcp is published twice"},
		{"mount relative target", func(s *Service) {
			s.Spec.Template.Mounts = []Mount{{Type: MountVolume, Source: "data", Target: "data"}}
		}, "mounts[0].target"},
		{"bind relative source", func(s *Service) {
			s.Spec.Template.Mounts = []Mount{{Type: MountBind, Source: "data", Target: "/data"}}
		}, "mounts[0].source"},
		{"mount type", func(s *Service) { s.Spec.Template.Mounts = []Mount{{Target: "/x"}} }, "mounts[0].type: missing"},
		{"reservation above limit", func(s *Service) {
			s.Spec.Template.Resources = ResourceRequirements{Limits: Resources{NanoCPUs: 1e9}, Reservations: Resources{NanoCPUs: 2e9}}
		}, "must not exceed the limit"},
		{"negative memory", func(s *Service) { s.Spec.Template.Resources.Limits.MemoryBytes = -1 }, "resources.limits.memoryBytes"},
		{"probe without handler", func(s *Service) { s.Spec.Template.LivenessProbe = &Probe{} }, "livenessProbe: needs exactly one"},
		{"probe with two handlers", func(s *Service) {
			s.Spec.Template.LivenessProbe = &Probe{Exec: []string{"true"}, TCPSocket: &TCPSocket{Port: 80}}
		}, "(has 2)"},
		{"liveness success threshold", func(s *Service) {
			s.Spec.Template.LivenessProbe = &Probe{Exec: []string{"true"}, SuccessThreshold: 2}
		}, "livenessProbe.successThreshold"},
		{"probe negative period", func(s *Service) {
			s.Spec.Template.StartupProbe = &Probe{TCPSocket: &TCPSocket{Port: 80}, Period: -1}
		}, "startupProbe.period"},
		{"probe http path", func(s *Service) {
			s.Spec.Template.ReadinessProbe = &Probe{HTTPGet: &HTTPGet{Port: 80, Path: "healthz"}}
		}, "readinessProbe.httpGet.path"},
		{"label key", func(s *Service) { s.Labels = map[string]string{"": "x"} }, "labels: key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validService()
			tt.change(&s)
			err := s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want an error with %q", tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Validate: %q, want one line with %q wrapping ErrInvalidArgument", err, tt.want)
			}
		})
	}
}

func TestTaskAndNodeValidate(t *testing.T) {
	task := Task{ID: "t1", ServiceID: "s1", Slot: 1, Revision: 1, DesiredState: TaskRunning,
		Template: TaskTemplate{Image: "busybox"}}
	if err := task.Validate(); err != nil {
		t.Fatalf("valid task: %v", err)
	}
	bad := task
	bad.DesiredState = "dancing"
	if err := bad.Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unknown desired state: %v", err)
	}
	bad = task
	bad.Slot = 0
	if err := bad.Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("slot 0: %v", err)
	}
	node := Node{ID: "n1", Name: "host", State: NodeReady, Capacity: Resources{NanoCPUs: 2e9, MemoryBytes: 1 << 30}}
	if err := node.Validate(); err != nil {
		t.Fatalf("valid node: %v", err)
	}
	node.State = "sleepy"
	if err := node.Validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unknown node state: %v", err)
	}
}
