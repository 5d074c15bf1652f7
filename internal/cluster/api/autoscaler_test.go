package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestAutoscalerValidate(t *testing.T) {
	cron := Trigger{Type: TriggerCron, Metadata: map[string]string{"start": "0 8 * * 1-5", "end": "0 18 * * 1-5", "replicas": "5"}}
	redis := Trigger{Type: TriggerRedisList, Metadata: map[string]string{"address": "127.0.0.1:6379", "list": "jobs", "target": "5"}}
	tests := []struct {
		name string
		spec AutoscalerSpec
		want string // "" for valid
	}{
		{"cpu", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 5, CPUPercent: 50}, ""},
		{"memory and cron", AutoscalerSpec{MinReplicas: 2, MaxReplicas: 5, MemoryPercent: 80, Triggers: []Trigger{cron}}, ""},
		{"zero with redis", AutoscalerSpec{MaxReplicas: 3, Triggers: []Trigger{redis}}, ""},
		{"min above max", AutoscalerSpec{MinReplicas: 5, MaxReplicas: 2, CPUPercent: 50}, "minReplicas: 5 is above maxReplicas 2"},
		{"max zero", AutoscalerSpec{MaxReplicas: 0, CPUPercent: 50}, "maxReplicas: 0"},
		{"negative cpu", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2, CPUPercent: -5}, "cpuPercent: -5"},
		{"nothing", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2}, "nothing to scale on"},
		{"zero with cpu only", AutoscalerSpec{MaxReplicas: 2, CPUPercent: 50}, "minReplicas: 0 needs a trigger"},
		{"unknown trigger", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2, Triggers: []Trigger{{Type: "kafka", Metadata: map[string]string{}}}}, `"kafka": unknown trigger`},
		{"unknown key", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2, Triggers: []Trigger{{Type: TriggerHTTPRPS, Metadata: map[string]string{"target": "5", "bogus": "1"}}}}, `unknown key "bogus"`},
		{"missing key", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2, Triggers: []Trigger{{Type: TriggerRedisList, Metadata: map[string]string{"address": "a:1", "target": "1"}}}}, "list is missing"},
		{"zero target", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2, Triggers: []Trigger{{Type: TriggerHTTPRPS, Metadata: map[string]string{"target": "0"}}}}, "target=0: must be a number above 0"},
		{"negative target", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2, Triggers: []Trigger{{Type: TriggerHTTPRPS, Metadata: map[string]string{"target": "-1"}}}}, "target=-1"},
		{"NaN target", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2, Triggers: []Trigger{{Type: TriggerHTTPRPS, Metadata: map[string]string{"target": "NaN"}}}}, "target=NaN"},
		{"cron replicas", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2, Triggers: []Trigger{{Type: TriggerCron, Metadata: map[string]string{"start": "x", "end": "y", "replicas": "two"}}}}, "replicas=two"},
		{"fast polling", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2, CPUPercent: 50, PollingInterval: Duration(1)}, "pollingInterval"},
		{"negative window", AutoscalerSpec{MinReplicas: 1, MaxReplicas: 2, CPUPercent: 50, ScaleDownStabilization: ptr(Duration(-1))}, "scaleDownStabilization"},
	}
	for _, c := range tests {
		err := Autoscaler{Service: "web", Spec: c.spec}.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, errdefs.ErrInvalidArgument)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestAutoscalerJSON(t *testing.T) {
	a := Autoscaler{Service: "web", Spec: AutoscalerSpec{MinReplicas: 1, MaxReplicas: 4, CPUPercent: 50}}
	a.Spec.SetDefaults()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"kind":"Autoscaler"`) || !strings.Contains(string(b), `"scaleDownStabilization":"5m0s"`) {
		t.Errorf("encoded: %s", b)
	}
	var back Autoscaler
	if err := json.Unmarshal(b, &back); err != nil || back.Spec.MaxReplicas != 4 || back.Spec.ScaleDownStabilization.Std().Seconds() != 300 {
		t.Errorf("decoded: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(strings.Replace(string(b), `"Autoscaler"`, `"Service"`, 1)), &back); err == nil {
		t.Error("a Service decoded as an Autoscaler")
	}
}
