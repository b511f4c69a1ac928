package respond

import (
	"context"
	"errors"
	"time"

	"github.com/keyburn/keyburn/internal/store"
)

// DeleteDue carries out the deletions whose soak window has passed. Each key
// is read again first: one that is gone is done; one that is Active again
// (its owner re-activated it) is left alone and its deletion cancelled; only
// one still Inactive is deleted. Under DryRun nothing is changed and the
// schedule is kept.
//
// Only a delete policy deletes: a deactivate run leaves the deletions an
// earlier delete run scheduled to the next delete run.
func (r *Responder) DeleteDue(ctx context.Context) ([]Result, error) {
	if !r.opts.Policy.Deletes() {
		return nil, nil
	}
	// A dry run only reads the schedule. A real one claims what is due,
	// so that processes sharing one state each delete a key once; what
	// it could not finish is released for the next run at once.
	var due []store.Deletion
	var err error
	if r.opts.DryRun {
		due, err = r.opts.Store.DueDeletions(ctx, r.opts.Now())
	} else {
		due, err = r.opts.Store.ClaimDueDeletions(ctx, r.opts.Now(), deletionLease)
	}
	if err != nil {
		return nil, err
	}
	var out []Result
	for i, d := range due {
		if ctx.Err() != nil {
			r.release(due[i:])
			return out, ctx.Err()
		}
		out = append(out, r.deleteDue(ctx, d))
		r.release(due[i : i+1])
	}
	return out, nil
}

// deletionLease bounds how long a process holds due deletions it claimed:
// one that dies holding them leaves them to another after it.
const deletionLease = 10 * time.Minute

// release gives claimed deletions still on the schedule back to the next
// run (a deletion done or cancelled is off the schedule already).
func (r *Responder) release(ds []store.Deletion) {
	if r.opts.DryRun {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, d := range ds {
		_ = r.opts.Store.ReleaseDeletion(ctx, d.KeyID) // a lost release costs one lease of waiting
	}
}

func (r *Responder) deleteDue(ctx context.Context, d store.Deletion) Result {
	res := Result{KeyID: d.KeyID, At: r.opts.Now(), DueAt: d.DueAt}
	a := r.auditor(d.KeyID, d.Account, d.UserName)
	if why := r.refuse(d.KeyID, principal{account: d.Account, user: d.UserName}, d.Account); why != "" {
		res.Action, res.Reason = ActionCancelled, "refused: "+why
		if r.opts.DryRun {
			res.Action, res.Reason = ActionDryRun, "would cancel the deletion: "+why
			return res
		}
		if err := a.write(ctx, store.AuditRecord{Action: stepDelete, Outcome: outCancelled, Detail: why}); err != nil {
			res.Err = err
			return res
		}
		res.Err = r.opts.Store.Unschedule(ctx, d.KeyID)
		return res
	}
	c := r.iam(d.Account)
	status, fail := a.ownerCheck(ctx, c)
	switch {
	case fail != nil:
		fail.DueAt = d.DueAt
		return *fail // kept on the schedule: tried again next time
	case status == statusGone:
		res.Action, res.Reason = ActionDeleted, "already gone"
		if r.opts.DryRun {
			return res
		}
		res.Err = errors.Join(a.write(ctx, store.AuditRecord{Action: stepDelete, Outcome: outOK, Before: statusGone, After: statusGone,
			Detail: "already gone"}), r.opts.Store.Unschedule(ctx, d.KeyID))
		return res
	case status == statusActive && !r.deactivatedSince(ctx, d):
		// The run that stored the intent was stopped before it
		// deactivated the key: finish what it started.
		if r.opts.DryRun {
			res.Action, res.Reason = ActionDryRun, "would deactivate and delete (an earlier run stopped before deactivating it)"
			return res
		}
		if f := a.deactivate(ctx, c); f != nil {
			f.DueAt = d.DueAt
			return *f
		}
		status = statusInactive
	case status == statusActive:
		why := "the key is Active again (re-activated since keyburn deactivated it): left alone, deletion cancelled"
		if r.opts.DryRun {
			res.Action, res.Reason = ActionDryRun, "would cancel the deletion: the key is Active again"
			return res
		}
		res.Action, res.Reason = ActionCancelled, why
		if err := a.write(ctx, store.AuditRecord{Action: stepDelete, Outcome: outCancelled, Before: statusActive, After: statusActive,
			Detail: why}); err != nil {
			res.Err = err
			return res
		}
		res.Err = r.opts.Store.Unschedule(ctx, d.KeyID)
		return res
	}
	if r.opts.DryRun {
		res.Action, res.Reason = ActionDryRun, "would delete (due at "+d.DueAt.UTC().Format(time.RFC3339)+")"
		res.Err = a.write(ctx, store.AuditRecord{Action: stepDelete, Outcome: outDryRun, Before: status, After: status,
			Detail: "would delete: soak window passed at " + d.DueAt.UTC().Format(time.RFC3339)})
		return res
	}
	res = a.deleteInactive(ctx, c, res)
	if res.Action == ActionDeleted {
		rctx, cancel := recording(ctx)
		defer cancel()
		res.Err = errors.Join(res.Err, r.opts.Store.Unschedule(rctx, d.KeyID))
	}
	return res
}

// deactivatedSince reports whether keyburn deactivated the key after its
// deletion was scheduled (the audit log says so; a minute's slack covers
// schedules written just after the deactivation, as before the intent came
// first); when it cannot tell, it answers yes, and an Active key is left
// alone.
func (r *Responder) deactivatedSince(ctx context.Context, d store.Deletion) bool {
	log, err := r.opts.Store.AuditLog(ctx, d.KeyID)
	if err != nil {
		return true
	}
	for _, rec := range log {
		if rec.Action == stepDeactivate && rec.Outcome == outOK && !rec.At.Before(d.CreatedAt.Truncate(time.Second).Add(-time.Minute)) {
			return true
		}
	}
	return false
}
