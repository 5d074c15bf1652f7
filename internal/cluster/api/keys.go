package api

import "strconv"

// Where objects live in the store. One service's revisions and tasks sit
// under its ID, so that listing or watching one prefix sees all of them.
const (
	ServicesPrefix  = "/services/"  // ServicesPrefix + name → Service
	RevisionsPrefix = "/revisions/" // RevisionsPrefix + serviceID + "/" + number → Revision
	TasksPrefix     = "/tasks/"     // TasksPrefix + serviceID + "/" + taskID → Task
	NodesPrefix     = "/nodes/"     // NodesPrefix + nodeID → Node
)

// ServiceKey is the key of the service called name.
func ServiceKey(name string) string { return ServicesPrefix + name }

// RevisionKey is the key of revision n of a service. Numbers are written
// with leading zeros so that keys list in revision order.
func RevisionKey(serviceID string, n int64) string {
	s := strconv.FormatInt(n, 10)
	for len(s) < 10 {
		s = "0" + s
	}
	return RevisionsPrefix + serviceID + "/" + s
}

// RevisionPrefix is the prefix of every revision of a service.
func RevisionPrefix(serviceID string) string { return RevisionsPrefix + serviceID + "/" }

// TaskKey is the key of one task of a service.
func TaskKey(serviceID, taskID string) string { return TasksPrefix + serviceID + "/" + taskID }

// TaskPrefix is the prefix of every task of a service.
func TaskPrefix(serviceID string) string { return TasksPrefix + serviceID + "/" }

// NodeKey is the key of a node.
func NodeKey(id string) string { return NodesPrefix + id }
