// Package controller holds the reconcilers of services: they turn what the
// store says a service should be (its Spec) into tasks on nodes, and keep
// the store's picture of those tasks true.
//
// The loop is level-triggered. A change of a service or of one of its tasks
// in the store (watched from the revision it was listed at, relisted on
// store.ErrCompacted), an event of a node's Runner, a periodic resync, or a
// deadline the last pass asked for (a restart backoff, a rollout delay)
// queues the service's name. One worker at a time takes a name and
// reconciles it from scratch: it reads the service, its revisions and its
// tasks, compares them with what the Runners last reported, and writes
// what differs. Nothing is remembered between passes but the Runners'
// latest reports, so a pass may run twice, and a controller killed at any
// line and started again picks up from the store (and publishes every
// service again: what was handed to the Runners is remembered only to
// spare them calls).
//
// One pass, in order:
//
//  1. observe: the Runners' reports go into the tasks' statuses; a task
//     whose container exited, vanished or failed liveness ends (failed or
//     complete, with the reason);
//  2. publish: the tasks wanted and ready are handed to every Runner
//     (Runner.Publish) when they changed, which balance the service's
//     virtual IPs and published ports over them, and the virtual IPs go
//     into the status;
//  3. revision: a new Generation whose template hashes differently from the
//     current revision gets revision N+1 and starts a rollout;
//  4. removals in flight go on (leaving → stopping → Runner.Stop →
//     shutdown); a task taken out leaves the balancers first and, if it
//     took traffic, stops only after the service's drain delay;
//  5. slots: too many are removed (not-ready first, then the highest), a
//     slot whose task ended is refilled per the restart policy with its
//     backoff, missing slots are filled;
//  6. rollout: old tasks are replaced within the surge and unavailable
//     bounds of UpdateConfig.Step, gated on readiness, and the rollout is
//     judged (failures, progress deadline) and completed;
//  7. placement and Ensure of tasks not yet running, then history trimming.
//
// Decisions (creating a task, taking one out, a status) are written in one
// store transaction together with a compare-and-swap on the service's key,
// so that two controllers working on one service cannot both decide: the
// loser gets a conflict and its next pass sees the winner's tasks. A task is
// written to the store before Runner.Ensure runs it, and a container whose
// task is not in the store is stopped, so no kill -9 leaves a duplicate or
// an orphan.
package controller
