// Package check is the stage after the engine: it verifies each finding with
// STS, has the responder act on the live ones, and records the verdicts
// those actions change. It does not scan and does not report; every caller
// (the CLI, the receiver's workers, organisation scans) runs it on the
// engine's findings.
package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/internal/verify"
)

// workers bounds the verifications and responses in flight: network work,
// kept apart from the CPU-bound scanning pool and small, since every call
// shows up in a key owner's CloudTrail.
const workers = 8

// Run verifies each finding (its secret, then its alternates) and, with a
// responder, acts on the live ones. It sets Verification and Response on
// the findings. A finding with no secret is only checked against the canary
// accounts. The error joins every failure of keyburn's own state (the
// verdict cache, the audit log): the findings are complete regardless.
func Run(ctx context.Context, fs []*finding.Finding, v *verify.Verifier, r *respond.Responder) error {
	return RunWith(ctx, fs, v, r, Hooks{})
}

// Hooks are told of what check finds as it goes.
type Hooks struct {
	// Live, when set, is told of each key proved live (or vouched for by
	// AWS), once its reach and
	// severity are known and before anything is done to it: news written
	// then is not lost if the run dies during the action. It may be
	// called concurrently; its error joins Run's.
	Live func(ctx context.Context, f *finding.Finding) error
}

// Stage is what follows every scan, in the CLI and in the receiver's
// workers alike: each key verified, the live ones acted on, and their news
// handed to the outbox, both before anything is done to a key (a run that
// dies during the action loses no news) and after, with what was done.
type Stage struct {
	Verifier  *verify.Verifier   // nil: nothing verified, nothing acted on
	Responder *respond.Responder // nil: nothing acted on
	// News, when set, stores news of the findings' live keys (the outbox
	// drops what it holds already).
	News func(ctx context.Context, fs []*finding.Finding) error
}

// Run runs the stage on fs; a failure to record (the state, the outbox)
// is returned, the findings are complete regardless.
func (s Stage) Run(ctx context.Context, fs []*finding.Finding) error {
	var err error
	if s.Verifier != nil || s.Responder != nil {
		var h Hooks
		if s.News != nil {
			h.Live = func(ctx context.Context, f *finding.Finding) error { return s.News(ctx, []*finding.Finding{f}) }
		}
		err = RunWith(ctx, fs, s.Verifier, s.Responder, h)
	}
	if s.News != nil {
		err = errors.Join(err, s.News(ctx, fs))
	}
	return err
}

// RunWith is Run with hooks.
func RunWith(ctx context.Context, fs []*finding.Finding, v *verify.Verifier, r *respond.Responder, h Hooks) error {
	p := pool.New().WithMaxGoroutines(workers)
	var mu sync.Mutex
	var errs []error
	for _, f := range fs {
		p.Go(func() {
			if err := one(ctx, f, v, r, h); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", f.KeyID, err))
				mu.Unlock()
			}
		})
	}
	p.Wait()
	return errors.Join(errs...)
}

func one(ctx context.Context, f *finding.Finding, v *verify.Verifier, r *respond.Responder, h Hooks) error {
	if f.KeyID == "" {
		return nil // a secret without its key ID signs nothing on its own
	}
	if f.Vouched != nil {
		return vouched(ctx, f, r, h)
	}
	if v == nil {
		return nil // nothing verified: nothing is known to act on
	}
	if f.AccountID == "" {
		// Not encoded in the key ID: ask AWS, with keyburn's own
		// credentials (never the leaked key's).
		if acct, err := v.AccountOf(ctx, f.KeyID); err == nil {
			f.AccountID = acct
		}
	}
	if !f.Paired() && len(f.Alternates) == 0 {
		if v.IsCanary(f.AccountID) {
			f.Verification = &finding.Verification{Status: string(verify.Canary), Account: f.AccountID}
		}
		return nil
	}
	var errs []error
	key := respond.Key{ID: f.KeyID, Account: f.AccountID, LeakedAt: leakedAt(f)}
	if r != nil {
		// Before verification: our STS call would update "last used".
		_, err := r.RecordLastUsed(ctx, key)
		errs = append(errs, err)
	}
	secrets := f.Alternates
	if f.Paired() {
		secrets = append([]secret.Secret{f.Secret}, f.Alternates...)
	}
	vd := v.Verify(ctx, f.KeyID, f.AccountID, secrets, f.SessionToken)
	errs = append(errs, vd.StoreErr)
	if !f.Paired() && vd.Status != verify.Live {
		// The secrets found without a key ID elsewhere are not this
		// key's (or could not be tried): it stays unpaired, unverified.
		if v.IsCanary(f.AccountID) {
			f.Verification = &finding.Verification{Status: string(verify.Canary), Account: f.AccountID}
		}
		return errors.Join(errs...)
	}
	if r != nil && vd.Status == verify.Live && vd.Cached {
		// Act only on a key proven live now.
		vd = v.Fresh(ctx, f.KeyID, f.AccountID, vd.Secret, f.SessionToken)
		errs = append(errs, vd.StoreErr)
	}
	if vd.Status == verify.Live && vd.Secret.Reveal() != f.Secret.Reveal() {
		f.Secret = vd.Secret // an alternate was the key's own
	}
	if f.AccountID == "" {
		f.AccountID = vd.Account
	}
	f.Verification = &finding.Verification{Status: string(vd.Status), ARN: vd.ARN, Account: vd.Account,
		UserID: vd.UserID, Error: vd.ErrorText()}
	if vd.Status == verify.Live && respond.IsRootARN(vd.ARN) {
		f.Verification.Root, f.Severity = true, finding.SeverityCritical
	}
	errs = append(errs, act(ctx, f, key, vd, v, r, h))
	return errors.Join(errs...)
}

// vouched takes a key on the word of the notice that vouches for it (AWS's
// own exposure notice): nothing to verify, no secret to try; the responder
// finds the key's owner and acts on it like a live key, every rail held.
// Without a responder the finding says only what the notice said.
func vouched(ctx context.Context, f *finding.Finding, r *respond.Responder, h Hooks) error {
	f.Verification = &finding.Verification{Status: string(verify.Exposed), Account: f.Vouched.Account}
	if r == nil {
		if h.Live != nil {
			return h.Live(ctx, f)
		}
		return nil
	}
	key := respond.Key{ID: f.KeyID, Account: f.AccountID, LeakedAt: leakedAt(f)}
	vs := r.Vouch(ctx, key, *f.Vouched)
	vd := vs.Verdict
	f.Verification = &finding.Verification{Status: string(vd.Status), ARN: vd.ARN, Account: vd.Account,
		Error: vd.ErrorText(), Quarantine: vs.Quarantine}
	if vd.Status == verify.Exposed && respond.IsRootARN(vd.ARN) {
		f.Verification.Root, f.Severity = true, finding.SeverityCritical
	}
	return errors.Join(vs.Err, act(ctx, f, key, vd, nil, r, h))
}

// act is what follows a verdict on a key: for a live one (or one AWS
// vouches for), its reach and severity, the news, then the responder's
// action and the verdict it changes.
func act(ctx context.Context, f *finding.Finding, key respond.Key, vd verify.Verdict, v *verify.Verifier, r *respond.Responder, h Hooks) error {
	var errs []error
	if r != nil && vd.Status.Actionable() {
		// What it could do decides its severity, and may decide whether
		// it is acted on.
		var err error
		f.Verification.Reach, err = r.Reach(ctx, key, vd)
		errs = append(errs, err)
		if f.Verification.Reach != nil {
			f.Severity = f.Verification.Reach.Severity()
		}
		key.Severity = f.Severity
	}
	if h.Live != nil && vd.Status.Actionable() {
		errs = append(errs, h.Live(ctx, f))
	}
	if r == nil {
		return errors.Join(errs...)
	}
	res := r.Respond(ctx, key, vd)
	errs = append(errs, res.Err)
	if v != nil && !vd.Secret.IsZero() {
		switch {
		case res.Action.Acted():
			// An inactive or deleted key no longer signs: STS answers
			// InvalidClientTokenId for it.
			errs = append(errs, v.Record(ctx, f.KeyID, vd.Secret, verify.Verdict{Status: verify.Invalid, Account: vd.Account}))
		case res.Action == respond.ActionRevoked:
			errs = append(errs, v.Record(ctx, f.KeyID, vd.Secret, verify.Verdict{Status: verify.Revoked, ARN: vd.ARN,
				Account: vd.Account, UserID: vd.UserID, Until: res.Until}))
		}
	}
	if res.Action != respond.ActionNone {
		f.Response = response(res)
	}
	return errors.Join(errs...)
}

// Unsettled says why the check stage could not finish with f: its
// verification could not reach an answer (AWS unreachable, throttled), or
// the action on it failed; "" when it finished, or when nothing was asked
// of it. What remembers its progress (a repository's scan, a notice on a
// queue) must not remember a finding that is not settled: the next run
// must meet it again.
func Unsettled(f *finding.Finding) string {
	switch {
	case f.Verification != nil && f.Verification.Status == string(verify.Error):
		return cmp.Or(f.Verification.Error, "its verification did not finish")
	case f.Response != nil && (f.Response.Error != "" || respond.Action(f.Response.Action) == respond.ActionFailed):
		return cmp.Or(f.Response.Error, f.Response.Reason, "its action failed")
	}
	return ""
}

// UnsettledOrUnchecked is Unsettled for what must have been checked (a
// notice's keys): one the stage did not look at is not settled either.
func UnsettledOrUnchecked(f *finding.Finding) string {
	if f.Verification == nil {
		return "not looked at"
	}
	return Unsettled(f)
}

// leakedAt is when the key was first seen: the earliest date of its
// locations (a commit's), zero when none has one (files on disk).
func leakedAt(f *finding.Finding) time.Time {
	var first time.Time
	for _, l := range f.Locations {
		t, err := time.Parse(time.RFC3339, l.Date)
		if err == nil && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first
}

// response is a Result as the findings carry it.
func response(res respond.Result) *finding.Response {
	out := &finding.Response{Action: string(res.Action), At: stamp(res.At), DueAt: stamp(res.DueAt), Reason: res.Reason, Evidence: res.Evidence,
		Replacement: res.Replacement}
	if res.Action == respond.ActionFailed || res.Err != nil {
		out.Error = res.Reason
		if res.Err != nil && out.Error == "" {
			out.Error = res.Err.Error()
		}
	}
	return out
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
