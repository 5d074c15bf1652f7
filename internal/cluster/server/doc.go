// Package server is the control plane's API: versioned JSON over HTTP on a
// unix socket (ROOTRUN/serve.sock), served from the cluster store, and the
// Client the command line uses.
//
// The API writes only what a user asks of a service — its spec, labels and
// generation, the rollback request and its autoscaler's spec — never
// tasks, revisions or the status the controllers and the autoscaler keep
// (see docs/services.md). A service is answered with its autoscaler, if
// it has one, in Service.Autoscaler, which is stored apart
// (api.AutoscalerKey) and removed with the service:
//
//	GET    /v1/ping                          → Ping
//	GET    /v1/services                      → []ServiceSummary
//	POST   /v1/services                      Service → Service (201)
//	GET    /v1/services/{name}               → Service
//	PUT    /v1/services/{name}               Service (with the Generation read) → Service
//	DELETE /v1/services/{name}               → 204
//	POST   /v1/services/{name}/scale         ScaleRequest → Service
//	POST   /v1/services/{name}/rollback[?to=N] → Service
//	GET    /v1/services/{name}/tasks         → []Task
//	GET    /v1/services/{name}/revisions     → []Revision
//	GET    /v1/services/{name}/autoscaler    → Autoscaler
//	PUT    /v1/services/{name}/autoscaler    Autoscaler → Autoscaler (created or replaced)
//	DELETE /v1/services/{name}/autoscaler    → 204
//	GET    /v1/nodes                         → []Node
//
// Services travel as cluster/api's versioned JSON, decoded strictly (an
// unknown field or another apiVersion is refused). A failure is
// {"error": "one line", "class": "<errdefs class name>"} with the class's
// HTTP status (errdefs.HTTPStatus); the Client turns it back into an error
// of the same class, so that the command line exits as it would have in
// process.
//
// An update carries the Generation and UpdatedAt its sender read; if the
// service changed since (its spec or its labels), the update fails with
// errdefs.ErrConflict ("service web was changed by someone else; try
// again") and writes nothing. Writes to the store are compare-and-swap on
// the key's revision, so two servers on one etcd keep the same promise.
package server
