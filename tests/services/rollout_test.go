package services

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// readyArgs make a busybox replica that becomes ready a second after it
// starts (its readiness probe looks for /tmp/ready) and ignores SIGTERM,
// so a stop takes the 1 s grace period.
var readyArgs = []string{"--stop-grace-period", "1s", "--readiness-cmd", "test -f /tmp/ready", "--health-interval", "200ms"}

func readyCmd(image string) []string {
	return []string{image, "sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 3600"}
}

// TestRollingUpdateReadinessGated updates a 3-replica service whose
// replicas take a second to become ready: the old replicas go one at a
// time, each only once the new one before it is ready, so that never fewer
// than 2 are ready, and every replica ends on the new revision.
func TestRollingUpdateReadinessGated(t *testing.T) {
	e := newEnv(t)
	args := append([]string{"service", "create", "--name", "web", "--replicas", "3", "--update-parallelism", "1", "-e", "V=1"}, readyArgs...)
	e.ok(append(args, readyCmd(e.image)...)...)
	before := tasksBySlot(e.replicas("web"))
	if len(before) != 3 {
		t.Fatalf("after create: replicas %v, want 3 slots", before)
	}

	since := time.Now()
	w := e.watchReady("web")
	e.ok("service", "update", "--env-add", "V=2", "web")
	if low := w.stop(t); low < 2 {
		t.Errorf("%d replicas ready at one point of the rollout, want at least 3-1", low)
	}

	rs := e.replicas("web")
	if len(rs) != 3 {
		t.Fatalf("after the update: %d replicas run, want 3: %+v", len(rs), rs)
	}
	for _, r := range rs {
		if r.Revision != "2" || r.Task == before[r.Slot] {
			t.Errorf("replica %s: revision %s, task of slot %s before %s; want a new task of revision 2", r.Name, r.Revision, r.Slot, before[r.Slot])
		}
		if v := e.envOf(r, "V"); v != "2" {
			t.Errorf("replica %s: V=%q, want 2", r.Name, v)
		}
	}
	if st := e.service("web").Status; st.Revision != 2 || st.Update != api.UpdateCompleted {
		t.Errorf("service inspect: revision %d, update %q; want 2, completed", st.Revision, st.Update)
	}

	// One by one: each old replica dies, then its new one starts, before
	// the next old one dies.
	evs := e.events("web", since)
	var got []string
	for _, ev := range evs {
		old := before[ev.Slot] == ev.Task
		switch {
		case ev.Action == "die" && old, ev.Action == "start" && !old:
			got = append(got, ev.Action+" "+ev.Slot)
		default:
			t.Errorf("unexpected %s of task %s in slot %s", ev.Action, ev.Task, ev.Slot)
		}
	}
	if len(got) != 6 {
		t.Fatalf("events of the rollout: %q, want 3 times an old replica's die and its slot's start", got)
	}
	for i := 0; i < len(got); i += 2 {
		if s := strings.Fields(got[i]); s[0] != "die" || got[i+1] != "start "+s[1] {
			t.Errorf("events of the rollout: %q, want die N, start N three times", got)
			break
		}
	}
}

// TestRolloutNeverReadyRollsBack updates to a template whose replicas never
// become ready, with failure action rollback and a short progress
// deadline: the update fails with one line, the service rolls back by
// itself, and the replicas it did not reach keep serving throughout.
func TestRolloutNeverReadyRollsBack(t *testing.T) {
	e := newEnv(t)
	args := append([]string{"service", "create", "--name", "web", "--replicas", "3"}, readyArgs...)
	e.ok(append(args, readyCmd(e.image)...)...)
	before := tasksBySlot(e.replicas("web"))

	w := e.watchReady("web")
	msg := e.fails(1, "service", "update", "--readiness-cmd", "test -f /tmp/never",
		"--update-failure-action", "rollback", "--progress-deadline", "3s", "web")
	if !strings.Contains(msg, "rolled back") || !strings.Contains(msg, "progress deadline") {
		t.Errorf("service update says %q, want why it rolled back", msg)
	}
	svc := e.awaitUpdate("web", api.UpdateRollbackCompleted)
	if low := w.stop(t); low < 2 {
		t.Errorf("%d replicas ready at one point, want at least 3-1", low)
	}

	if p := svc.Spec.Template.ReadinessProbe; p == nil || !slices.Contains(p.Exec, "test -f /tmp/ready") {
		t.Errorf("after the rollback the readiness probe is %+v, want the first one back", p)
	}
	rs := e.replicas("web")
	kept := 0
	for _, r := range rs {
		if r.Revision == "2" {
			t.Errorf("replica %s still runs the failed revision", r.Name)
		}
		if r.Task == before[r.Slot] {
			kept++
		}
	}
	if len(rs) != 3 || kept < 2 {
		t.Errorf("after the rollback %d replicas run, %d of them from before; want 3 and at least 2: %+v", len(rs), kept, rs)
	}
}

// TestRolloutBrokenImageRollsBack updates to an image that does not exist,
// start-first with failure action rollback: the new replica is rejected,
// the update exits 2 with the reason, the service rolls back, and the old
// replicas never stop.
func TestRolloutBrokenImageRollsBack(t *testing.T) {
	e := newEnv(t)
	e.ok("service", "create", "--name", "web", "--replicas", "3", "--stop-grace-period", "1s", e.image, "sleep", "3600")
	before := e.replicas("web")

	w := e.watchReady("web")
	msg := e.fails(2, "service", "update", "--image", "localhost/nope", "--update-order", "start-first",
		"--update-failure-action", "rollback", "web")
	if !strings.Contains(msg, "rolled back") || !strings.Contains(msg, "localhost/nope") {
		t.Errorf("service update says %q, want that it rolled back and why", msg)
	}
	svc := e.awaitUpdate("web", api.UpdateRollbackCompleted)
	if low := w.stop(t); low < 3 {
		t.Errorf("%d replicas ready at one point, want 3 throughout (start-first)", low)
	}
	if svc.Spec.Template.Image != e.image {
		t.Errorf("after the rollback the image is %s, want %s", svc.Spec.Template.Image, e.image)
	}
	if after := e.replicas("web"); !slices.Equal(taskIDs(after), taskIDs(before)) {
		t.Errorf("replicas after the rollback %+v, want the same tasks as before %+v", after, before)
	}
	if ps := e.ok("service", "ps", "web"); !strings.Contains(ps, "Rejected") || !strings.Contains(ps, "localhost/nope") {
		t.Errorf("service ps does not show the rejected replica:\n%s", ps)
	}
}

func taskIDs(rs []replica) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.Task
	}
	slices.Sort(ids)
	return ids
}

// TestManualRollback rolls a service back to the revision before the
// current one and then to revision 1; a service with one revision has
// nothing to roll back to.
func TestManualRollback(t *testing.T) {
	e := newEnv(t)
	e.ok("service", "create", "--name", "web", "--replicas", "2", "--stop-grace-period", "1s", "-e", "V=1", e.image, "sleep", "3600")
	if msg := e.fails(2, "service", "rollback", "web"); !strings.Contains(msg, "no earlier revision") {
		t.Errorf("rollback of one revision says %q", msg)
	}
	e.ok("service", "update", "--env-add", "V=2", "web")
	e.ok("service", "update", "--env-add", "V=3", "web")

	check := func(want string) {
		t.Helper()
		svc := e.service("web")
		if !slices.Equal(svc.Spec.Template.Env, []string{"V=" + want}) || svc.Status.Update != api.UpdateRollbackCompleted {
			t.Errorf("service inspect: env %q, update %q; want V=%s, rollback_completed", svc.Spec.Template.Env, svc.Status.Update, want)
		}
		rs := e.replicas("web")
		if len(rs) != 2 {
			t.Fatalf("%d replicas run, want 2: %+v", len(rs), rs)
		}
		for _, r := range rs {
			if v := e.envOf(r, "V"); v != want {
				t.Errorf("replica %s: V=%q, want %s", r.Name, v, want)
			}
		}
	}
	e.ok("service", "rollback", "web")
	check("2")
	e.ok("service", "rollback", "--to-revision", "1", "web")
	check("1")
	if msg := e.fails(2, "service", "rollback", "--to-revision", "9", "web"); !strings.Contains(msg, "no revision 9") {
		t.Errorf("rollback to a revision that does not exist says %q", msg)
	}
}

// TestNoopUpdateAndStartFirst: an update that changes nothing makes no new
// revision and keeps the replicas; a start-first update starts each new
// replica before its old one stops.
func TestNoopUpdateAndStartFirst(t *testing.T) {
	e := newEnv(t)
	e.ok("service", "create", "--name", "web", "--replicas", "2", "--stop-grace-period", "1s", "-e", "A=1", "-e", "B=2", e.image, "sleep", "3600")
	before := e.replicas("web")
	gen := e.service("web").Generation
	for _, args := range [][]string{{}, {"--env-add", "A=1"}, {"--replicas", "2"}, {"--image", e.image}} {
		e.ok(append(append([]string{"service", "update"}, args...), "web")...)
		if svc := e.service("web"); svc.Generation != gen || svc.Status.Revision != 1 {
			t.Errorf("update %q: generation %d, revision %d; want %d and 1 (nothing changed)", args, svc.Generation, svc.Status.Revision, gen)
		}
	}
	if after := e.replicas("web"); !slices.Equal(taskIDs(after), taskIDs(before)) {
		t.Errorf("replicas after updates that changed nothing %+v, want %+v", after, before)
	}

	since := time.Now()
	w := e.watchReady("web")
	e.ok("service", "update", "--update-order", "start-first", "--env-add", "A=2", "web")
	if low := w.stop(t); low < 2 {
		t.Errorf("%d replicas ready at one point of a start-first rollout, want 2 throughout", low)
	}
	old := tasksBySlot(before)
	started := map[string]bool{} // slots whose new replica started
	for _, ev := range e.events("web", since) {
		switch {
		case ev.Action == "start" && ev.Task != old[ev.Slot]:
			started[ev.Slot] = true
		case ev.Action == "die" && ev.Task == old[ev.Slot] && !started[ev.Slot]:
			t.Errorf("the old replica of slot %s died before its new one started", ev.Slot)
		}
	}
	if len(started) != 2 {
		t.Errorf("new replicas started in slots %v, want 1 and 2", started)
	}
	for _, r := range e.replicas("web") {
		if r.Revision != "2" {
			t.Errorf("replica %s on revision %s, want 2", r.Name, r.Revision)
		}
	}
}
