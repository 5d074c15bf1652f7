// Package server is the control plane's API: versioned JSON over HTTP on a
// unix socket (ROOTRUN/serve.sock), served from the cluster store, and the
// Client the command line uses.
//
// The API writes only what a user asks of a service — its spec, labels and
// generation, and the rollback request — never tasks, revisions or the
// status the controllers keep (see docs/services.md):
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
