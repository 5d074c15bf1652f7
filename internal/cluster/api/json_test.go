package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestJSONRoundTrip(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	svc := validService()
	svc.ID = "s1"
	svc.Spec.SetDefaults()
	svc.Spec.Template.LivenessProbe = &Probe{HTTPGet: &HTTPGet{Port: 80, Headers: map[string]string{"X": "y"}}, InitialDelay: Duration(1500 * time.Millisecond)}
	svc.CreatedAt = now
	objects := []any{
		&svc,
		&Revision{ServiceID: "s1", Number: 3, Template: svc.Spec.Template, Hash: svc.Spec.Template.Hash(), CreatedAt: now},
		&Task{ID: "t1", ServiceID: "s1", ServiceName: "web", Slot: 2, Revision: 3, NodeID: "n1", DesiredState: TaskRunning,
			Template: svc.Spec.Template, Status: TaskStatus{TaskID: "t1", State: TaskLeaving, ExitCode: 137, Timestamp: now, StartedAt: now}},
		&Node{ID: "n1", Name: "host", Capacity: Resources{NanoCPUs: 2e9, MemoryBytes: 1 << 30}, State: NodeReady, Heartbeat: now},
	}
	for _, obj := range objects {
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		kind := reflect.TypeOf(obj).Elem().Name()
		if !strings.HasPrefix(string(b), `{"apiVersion":"berth/v1","kind":"`+kind+`"`) {
			t.Errorf("%s encodes without its header: %s", kind, b)
		}
		got := reflect.New(reflect.TypeOf(obj).Elem()).Interface()
		if err := json.Unmarshal(b, got); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if !reflect.DeepEqual(got, obj) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", kind, got, obj)
		}
	}
	b, _ := json.Marshal(svc)
	if !strings.Contains(string(b), `"initialDelay":"1.5s"`) || !strings.Contains(string(b), `"progressDeadline":"10m0s"`) {
		t.Errorf("durations are not duration strings: %s", b)
	}
}

func TestJSONRefusal(t *testing.T) {
	good, _ := json.Marshal(validService())
	tests := []struct {
		name, json, want string
	}{
		{"unknown field", strings.Replace(string(good), `"name"`, `"colour":"red","name"`, 1), `unknown field "colour"`},
		{"unknown nested field", strings.Replace(string(good), `"image"`, `"imag":"x","image"`, 1), `unknown field "imag"`},
		{"other version", strings.Replace(string(good), Version, "berth/v0", 1), `apiVersion "berth/v0": want "berth/v1"`},
		{"no version", `{"kind":"Service","name":"web"}`, `apiVersion ""`},
		{"other kind", strings.Replace(string(good), `"kind":"Service"`, `"kind":"Task"`, 1), `kind "Task"`},
		{"numeric duration", strings.Replace(string(good), `"spec":{`, `"spec":{"minReady":5,`, 1), "want a string"},
		{"bad duration", strings.Replace(string(good), `"spec":{`, `"spec":{"minReady":"5 parsecs",`, 1), `duration "5 parsecs"`},
	}
	for _, tt := range tests {
		var s Service
		err := json.Unmarshal([]byte(tt.json), &s)
		if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an invalid-argument error with %q", tt.name, err, tt.want)
		}
	}
}
