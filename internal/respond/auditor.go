package respond

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyburn/keyburn/internal/store"
)

// auditor writes one key's steps to the audit log and makes its IAM calls.
type auditor struct {
	r                    *Responder
	keyID, account, user string
	// secretSHA is the SHA-256 of the secret that verified the key live,
	// written on each record of an action (never the secret).
	secretSHA string
	// root: the key is the account's root user's, and the IAM calls are
	// made in a root session (AssumeRoot), where they name no user: IAM
	// takes the root user from the session.
	root bool
}

func (r *Responder) auditor(keyID, account, user string) auditor {
	return auditor{r: r, keyID: keyID, account: account, user: user}
}

// rootUser is how the audit log names a root user.
const rootUser = "(root)"

// userName is the UserName of the IAM calls: the user's, or none for the
// root user.
func (a auditor) userName() *string {
	if a.root {
		return nil
	}
	return aws.String(a.user)
}

// owner names the key's owner in messages.
func (a auditor) owner() string {
	if a.root {
		return "the root user"
	}
	return "user " + a.user
}

// write appends a record, filling in who and which key.
func (a auditor) write(ctx context.Context, rec store.AuditRecord) error {
	rec.Actor, rec.KeyID, rec.Account, rec.UserName = a.r.selfARN, a.keyID, a.account, a.user
	if rec.SecretSHA256 == "" {
		rec.SecretSHA256 = a.secretSHA
	}
	if rec.At.IsZero() {
		rec.At = a.r.opts.Now()
	}
	return a.r.opts.Store.Audit(ctx, rec)
}

// failed is the Result of a step that failed.
func (a auditor) failed(reason string, err error) *Result {
	return &Result{KeyID: a.keyID, Action: ActionFailed, At: a.r.opts.Now(), Reason: reason, Err: err}
}

// ownerCheck re-reads the key's state among its user's keys: Active,
// Inactive, or statusGone when the user has no such key.
func (a auditor) ownerCheck(ctx context.Context, c IAMAPI) (string, *Result) {
	status, rid, err := a.status(ctx, c)
	if err != nil {
		werr := a.write(ctx, store.AuditRecord{Action: stepOwnerCheck, Outcome: outFailed, RequestID: requestID(err), Detail: errText(err)})
		return "", a.failed("owner check: "+errText(err), werr)
	}
	rec := store.AuditRecord{Action: stepOwnerCheck, Outcome: outOK, RequestID: rid,
		Before: status, After: status, Detail: a.owner()}
	if status == statusGone {
		rec.Outcome, rec.Detail = outFailed, "the key is not among "+a.owner()+"'s keys"
	}
	if err := a.write(ctx, rec); err != nil {
		// The owner check is the first record of an action: without it,
		// no action.
		return "", a.failed("audit log: "+err.Error()+"; nothing done", err)
	}
	return status, nil
}

// reread is status for mutate: nil c (a step that changes no key's
// status) reads nothing.
func (a auditor) reread(ctx context.Context, c IAMAPI) (string, string, error) {
	if c == nil {
		return "", "", errors.New("nothing to read")
	}
	return a.status(ctx, c)
}

// status reads the key's state among its user's keys: Active, Inactive, or
// statusGone.
func (a auditor) status(ctx context.Context, c IAMAPI) (status, requestID string, err error) {
	keys, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: a.userName()})
	if err != nil {
		return "", "", err
	}
	status = statusGone
	for _, k := range keys.AccessKeyMetadata {
		if aws.ToString(k.AccessKeyId) == a.keyID {
			status = string(k.Status)
		}
	}
	return status, requestIDOf(keys.ResultMetadata), nil
}

// lastUsedAfter records the key's last use after verification, when it could
// not be recorded before: it may be keyburn's own STS call.
func (a auditor) lastUsedAfter(ctx context.Context, c IAMAPI) error {
	lu, err := c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(a.keyID)})
	if err != nil {
		return nil // nothing to record; the owner check says whether the key is there
	}
	return a.write(ctx, store.AuditRecord{Action: stepLastUsed, Outcome: outOK, RequestID: requestIDOf(lu.ResultMetadata),
		Detail: "after verification (this may be keyburn's own STS call): " + lastUsedText(lu.AccessKeyLastUsed)})
}

// recordTimeout bounds the writes that record an IAM change already made.
const recordTimeout = 10 * time.Second

// recording returns a context for recording what was done: it is not
// cancelled with ctx (an action half-recorded is worse than a shutdown a
// moment later), only after recordTimeout.
func recording(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}

// mutate makes one mutating call between a "started" record and its
// outcome. No "started" record, no call.
func (a auditor) mutate(ctx context.Context, c IAMAPI, step, before, after string, call func() (requestID string, err error)) error {
	if err := a.write(ctx, store.AuditRecord{Action: step, Outcome: outStarted, Before: before}); err != nil {
		return fmt.Errorf("audit log: %w; %s not attempted", err, step)
	}
	rid, err := call()
	// The call was made: its outcome is recorded even if the run is being
	// cancelled (a shutdown) by now.
	ctx, cancel := recording(ctx)
	defer cancel()
	if err != nil {
		// The call's error says what the caller saw, not what IAM did (a
		// connection closed after IAM applied the change): the key is read
		// again, and the record says what it is.
		if now, rrid, rerr := a.reread(ctx, c); rerr == nil && now == after {
			detail := "the call answered " + errText(err) + ", but a re-read shows the key " + now
			if werr := a.write(ctx, store.AuditRecord{Action: step, Outcome: outOK, RequestID: rrid, Before: before, After: after, Detail: detail}); werr != nil {
				return &doneErr{fmt.Errorf("%s done, but its audit record could not be written: %w", step, werr)}
			}
			return nil
		}
		werr := a.write(ctx, store.AuditRecord{Action: step, Outcome: outFailed, RequestID: requestID(err), Before: before, After: before, Detail: errText(err)})
		return errors.Join(&stepErr{step: step, err: err}, werr)
	}
	if werr := a.write(ctx, store.AuditRecord{Action: step, Outcome: outOK, RequestID: rid, Before: before, After: after}); werr != nil {
		return &doneErr{fmt.Errorf("%s done, but its audit record could not be written: %w", step, werr)}
	}
	return nil
}

// stepErr is a failed call of a step; it keeps AWS's error for isCode.
type stepErr struct {
	step string
	err  error
}

func (e *stepErr) Error() string { return e.step + ": " + errText(e.err) }
func (e *stepErr) Unwrap() error { return e.err }

// doneErr is an error after the call succeeded: only the record of it failed.
type doneErr struct{ error }

func (e *doneErr) Unwrap() error { return e.error }

// deactivate sets an Active key Inactive (an already inactive or deleted key
// is success).
func (a auditor) deactivate(ctx context.Context, c IAMAPI) *Result {
	err := a.mutate(ctx, c, stepDeactivate, statusActive, statusInactive, func() (string, error) {
		out, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{AccessKeyId: aws.String(a.keyID),
			UserName: a.userName(), Status: iamtypes.StatusTypeInactive})
		if isCode(err, "NoSuchEntity") {
			return requestID(err), nil
		}
		if err != nil {
			return "", err
		}
		return requestIDOf(out.ResultMetadata), nil
	})
	var done *doneErr
	if err != nil && !errors.As(err, &done) {
		return a.failed(err.Error(), err)
	}
	if done != nil {
		// Deactivated; report the audit failure, and do not go on to a
		// deletion that could not be recorded either.
		return &Result{KeyID: a.keyID, Action: ActionDeactivated, At: a.r.opts.Now(), Reason: err.Error(), Err: err}
	}
	return nil
}

// deleteInactive re-reads the key and deletes it only while it is Inactive;
// a root key is deleted Active too (root.go says why).
func (a auditor) deleteInactive(ctx context.Context, c IAMAPI, res Result) Result {
	status, fail := a.ownerCheck(ctx, c)
	switch {
	case fail != nil:
		return *fail
	case status == statusGone:
		res.Action, res.Reason = ActionDeleted, "already gone"
		return res
	case status != statusInactive && !a.root:
		res.Action, res.Reason = ActionSkipped, "the key is "+status+" again, not Inactive: not deleted"
		res.Err = a.write(ctx, store.AuditRecord{Action: stepDelete, Outcome: outCancelled, Before: status, After: status,
			Detail: "the key is " + status + " again: left alone"})
		return res
	}
	err := a.mutate(ctx, c, stepDelete, status, statusGone, func() (string, error) {
		out, err := c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(a.keyID), UserName: a.userName()})
		if isCode(err, "NoSuchEntity") {
			return requestID(err), nil // already gone
		}
		if err != nil {
			return "", err
		}
		return requestIDOf(out.ResultMetadata), nil
	})
	var done *doneErr
	switch {
	case err == nil:
		res.Action = ActionDeleted
	case errors.As(err, &done):
		res.Action, res.Reason, res.Err = ActionDeleted, err.Error(), err
	default:
		res.Action, res.Reason, res.Err = ActionFailed, err.Error(), err
	}
	res.At = a.r.opts.Now()
	return res
}
