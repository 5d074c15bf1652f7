package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/api"
)

// rollout replaces the tasks of other revisions by tasks of the target
// one, within the bounds of the update (or rollback) config, and judges the
// rollout: completed, or failed and then paused, continued or rolled back.
// A paused one that is complete after all (its last new replica became
// available after it paused) is completed too.
func (p *pass) rollout(ctx context.Context) error {
	st := &p.v.svc.Status
	rollingBack := st.Update == api.UpdateRollbackStarted || st.Update == api.UpdateRollbackPaused
	if st.Update == api.UpdateUpdating || st.Update == api.UpdateRollbackStarted || p.paused() {
		if p.complete() {
			// An automatic rollback keeps why the update failed.
			why, _, auto := strings.Cut(st.Message, rollingBackTo)
			st.Update, st.Message, st.UpdateEnd = api.UpdateCompleted, "update completed", p.now
			if rollingBack {
				st.Update, st.Message = api.UpdateRollbackCompleted, "rollback completed"
				if auto {
					st.Message += ": " + why
				}
			}
			return p.c.commit(ctx, p.v, nil)
		}
	}
	if p.paused() {
		return nil
	}
	cfg := p.v.spec.Update
	if rollingBack {
		cfg = p.v.spec.Rollback
	}
	if st.Update == api.UpdateUpdating || rollingBack {
		if msg := p.judge(cfg); msg != "" && cfg.FailureAction != api.FailureContinue {
			return p.fail(ctx, cfg, msg)
		}
	}
	return p.replace(ctx, cfg)
}

// current reports whether t runs the target revision's template.
func (p *pass) current(t *taskKV) bool { return t.Template.Hash() == p.target.Hash }

// complete reports whether every wanted replica runs the target revision
// and is available.
func (p *pass) complete() bool {
	n := 0
	for _, t := range p.v.active() {
		if !p.current(t) || !p.available(t) {
			return false
		}
		n++
	}
	return n == p.v.spec.DesiredReplicas()
}

// judge returns why the rollout failed, or "": more new replicas failed
// within their Monitor than MaxFailureRatio allows, or none became
// available within the progress deadline.
func (p *pass) judge(cfg api.UpdateConfig) string {
	st := p.v.svc.Status
	failures, reason := 0, ""
	progress := st.UpdateStart
	for _, t := range p.v.tasks {
		if !p.current(t) || t.CreatedAt.Before(st.UpdateStart) {
			continue
		}
		s := t.Status
		if (s.State == api.TaskFailed || s.State == api.TaskRejected) &&
			(s.StartedAt.IsZero() || s.FinishedAt.Sub(s.StartedAt) < cfg.Monitor.Std()) {
			failures++
			reason = s.Message
		}
		if t.DesiredState == api.TaskRunning && p.available(t) {
			if at := s.Timestamp.Add(p.v.spec.MinReady.Std()); at.After(progress) {
				progress = at
			}
		}
	}
	if failures > 0 && float64(failures) > cfg.MaxFailureRatio*float64(p.v.spec.DesiredReplicas()) {
		return fmt.Sprintf("%d new replicas failed (%s)", failures, reason)
	}
	deadline := p.v.spec.ProgressDeadline.Std()
	if left := progress.Add(deadline).Sub(p.now); left > 0 {
		p.wake(left)
		return ""
	}
	return fmt.Sprintf("no new replica became ready within the progress deadline (%s)", deadline)
}

// rollingBackTo ends the message of an automatic rollback, before the
// number of the revision it goes to.
const rollingBackTo = "; rolling back to revision "

// fail applies the failure action: pause, or roll back by writing the
// previous revision's template as the spec (as `service rollback` does).
// A rollback that fails pauses.
func (p *pass) fail(ctx context.Context, cfg api.UpdateConfig, msg string) error {
	svc := &p.v.svc
	st := &svc.Status
	if cfg.FailureAction == api.FailureRollback && st.Update == api.UpdateUpdating {
		if prev, ok := p.previous(); ok {
			svc.Spec.Template = prev.Template
			svc.Generation++
			st.Update, st.UpdateStart, st.UpdateEnd = api.UpdateRollbackStarted, p.now, time.Time{}
			st.Message = fmt.Sprintf("update to revision %d failed: %s%s%d", st.Revision, msg, rollingBackTo, prev.Number)
			return p.c.commit(ctx, p.v, nil)
		}
	}
	if st.Update == api.UpdateRollbackStarted {
		st.Update, st.Message = api.UpdateRollbackPaused, "rollback paused: "+msg
	} else {
		st.Update, st.Message = api.UpdatePaused, "update paused: "+msg
	}
	return p.c.commit(ctx, p.v, nil)
}

// previous returns the latest revision before the target with another
// template.
func (p *pass) previous() (revisionKV, bool) {
	for i := len(p.v.revs) - 1; i >= 0; i-- {
		if r := p.v.revs[i]; r.Number < p.target.Number && r.Hash != p.target.Hash {
			return r, true
		}
	}
	return revisionKV{}, false
}

// replace goes through the slots that still run another revision: in a
// slot whose new task is available the old one goes; otherwise a new task
// starts beside the old one while the surge allows, or the old one goes
// first while the unavailable bound allows. Tasks being stopped count as
// running until they are stopped.
func (p *pass) replace(ctx context.Context, cfg api.UpdateConfig) error {
	want := p.v.spec.DesiredReplicas()
	surge, unavailable := cfg.Step(want)
	live, avail := 0, 0
	for _, t := range p.v.tasks {
		if !t.Status.State.Terminal() {
			live++
		}
	}
	for _, t := range p.v.active() {
		if p.available(t) {
			avail++
		}
	}
	mayStart := p.batchDone(cfg)
	for _, s := range p.v.slotsOf() {
		var old, cur *taskKV
		for _, t := range s.active {
			if p.current(t) {
				cur = t
			} else {
				old = t
			}
		}
		if old == nil {
			continue
		}
		oldAvail := 0
		if p.available(old) {
			oldAvail = 1
		}
		canStop := avail-oldAvail >= want-unavailable
		switch {
		case cur != nil:
			if !p.available(cur) || !canStop {
				continue
			}
			if err := p.takeOut(ctx, old); err != nil {
				return err
			}
			live, avail = live-1, avail-oldAvail
			continue
		case !mayStart:
			continue
		case live < want+surge:
		case canStop:
			if err := p.takeOut(ctx, old); err != nil {
				return err
			}
			live, avail = live-1, avail-oldAvail
		default:
			continue
		}
		t := p.newTask(s.n, p.target, 0)
		p.place([]*taskKV{t})
		if err := p.c.commit(ctx, p.v, []*taskKV{t}); err != nil {
			return err
		}
		live++
	}
	return nil
}

// batchDone reports whether a new batch may start: with a Delay, only
// once every new task of the rollout is available and Delay has passed
// since the last became so.
func (p *pass) batchDone(cfg api.UpdateConfig) bool {
	if cfg.Delay == 0 {
		return true
	}
	var last time.Time
	for _, t := range p.v.active() {
		if !p.current(t) || t.CreatedAt.Before(p.v.svc.Status.UpdateStart) {
			continue
		}
		if !p.available(t) {
			return false
		}
		if at := t.Status.Timestamp.Add(p.v.spec.MinReady.Std()); at.After(last) {
			last = at
		}
	}
	if left := last.Add(cfg.Delay.Std()).Sub(p.now); !last.IsZero() && left > 0 {
		p.wake(left)
		return false
	}
	return true
}
