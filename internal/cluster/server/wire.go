package server

import "github.com/berth-dev/berth/internal/cluster/api"

// Ping is the answer of GET /v1/ping.
type Ping struct {
	APIVersion string `json:"apiVersion"`
	// PID is the control plane's process.
	PID int `json:"pid"`
}

// ServiceSummary is one service of GET /v1/services, with what its tasks
// say (`service ls`).
type ServiceSummary struct {
	Service api.Service `json:"service"`
	// Ready counts the tasks that are wanted and ready, of any revision;
	// Running those that are wanted and have a live process.
	Ready   int `json:"ready"`
	Running int `json:"running"`
}

// ScaleRequest is the body of POST /v1/services/{name}/scale.
type ScaleRequest struct {
	Replicas int `json:"replicas"`
}

// errorBody is a failed request's answer.
type errorBody struct {
	Error string `json:"error"`
	Class string `json:"class,omitempty"`
}
