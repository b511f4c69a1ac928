package engine

import (
	"context"
	"time"

	"github.com/sourcegraph/conc/pool"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/internal/verify"
)

// checkWorkers bounds the verifications and responses in flight: network
// work, kept apart from the CPU-bound scanning pool and small, since every
// call shows up in a key owner's CloudTrail.
const checkWorkers = 8

// Check verifies each finding (its secret, then its alternates) and, with a
// responder, acts on the live ones. It sets Verification and Response on the
// findings. A finding with no secret is only checked against the canary list.
func Check(ctx context.Context, fs []*finding.Finding, v *verify.Verifier, r *respond.Responder) {
	p := pool.New().WithMaxGoroutines(checkWorkers)
	for _, f := range fs {
		p.Go(func() {
			if f.AccountID == "" && r != nil {
				// Not encoded in the key ID: ask AWS, with the responder's
				// own credentials (never the leaked key's).
				if acct, err := r.AccountOf(ctx, f.KeyID); err == nil {
					f.AccountID = acct
				}
			}
			if !f.Paired() {
				if v.IsCanary(f.AccountID) {
					f.Verification = &finding.Verification{Status: string(verify.Canary), Account: f.AccountID}
				}
				return
			}
			secrets := append([]secret.Secret{f.Secret}, f.Alternates...)
			vd := v.Verify(ctx, f.KeyID, f.AccountID, secrets, f.SessionToken)
			if vd.Status == verify.Live && vd.Secret.Reveal() != f.Secret.Reveal() {
				f.Secret = vd.Secret // an alternate was the key's own
			}
			f.Verification = &finding.Verification{Status: string(vd.Status), ARN: vd.ARN, Account: vd.Account,
				UserID: vd.UserID, Error: vd.ErrorText()}
			if r == nil {
				return
			}
			if vd.Status == verify.Live && vd.Cached {
				// Act only on a key proven live now.
				vd = v.Fresh(ctx, f.KeyID, f.AccountID, vd.Secret, f.SessionToken)
				f.Verification = &finding.Verification{Status: string(vd.Status), ARN: vd.ARN, Account: vd.Account,
					UserID: vd.UserID, Error: vd.ErrorText()}
			}
			res := r.Respond(ctx, f.KeyID, vd)
			switch res.Action {
			case respond.ActionDeleted, respond.ActionDeactivated, respond.ActionScheduled:
				// An inactive or deleted key no longer signs: STS answers
				// InvalidClientTokenId for it.
				v.Record(ctx, f.KeyID, vd.Secret, verify.Verdict{Status: verify.Invalid, Account: vd.Account})
			}
			if res.Action == respond.ActionNone {
				return
			}
			f.Response = &finding.Response{Action: res.Action, At: res.At.UTC().Format(time.RFC3339), Error: res.Reason}
		})
	}
	p.Wait()
}
