package worker

import (
	"context"
	"log/slog"
	"strings"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/verify"
)

// logFindings writes one line per finding of a delivery (where, which
// key, how sure, the verdict and the action), and one more per key acted
// on, with where the audit log has it. Secrets are never in them: a key
// is named by its ID and fingerprint.
func logFindings(log *slog.Logger, res Result) {
	for _, f := range res.Findings {
		attrs := []any{"repo", res.Repo, "key_id", f.KeyID, "fingerprint", f.Fingerprint(), "severity", f.Severity,
			"paired", f.Paired()}
		if len(f.Locations) > 0 {
			l := f.Locations[0]
			attrs = append(attrs, "commit", l.Commit, "path", l.File, "line", l.Line, "locations", len(f.Locations))
		}
		verdict := "not verified"
		if v := f.Verification; v != nil {
			verdict = v.Status
			if v.Error != "" {
				attrs = append(attrs, "verify_error", v.Error)
			}
			if v.ARN != "" {
				attrs = append(attrs, "owner", v.ARN)
			}
			if len(v.Quarantine) > 0 {
				attrs = append(attrs, "quarantine", strings.Join(v.Quarantine, ","))
			}
		}
		action := "none"
		if r := f.Response; r != nil {
			action = r.Action
		}
		attrs = append(attrs, "verdict", verdict, "action", action)
		level := slog.LevelWarn // a key in a push is worth attention
		if f.Verification != nil && f.Verification.Error != "" {
			level = slog.LevelError // not known to be dead
		}
		log.Log(context.Background(), level, "key found", attrs...)
		r := f.Response
		if r == nil {
			continue
		}
		a := respond.Action(r.Action)
		failed := r.Error != "" || a == respond.ActionFailed
		liveLeft := a == respond.ActionSkipped && verify.Status(verdict).Actionable() // live, or vouched for by AWS
		if !failed && !liveLeft && (a == respond.ActionNone || a == respond.ActionSkipped) {
			continue // nothing was done, nor was there anything to do: the line above says so
		}
		acted := []any{"repo", res.Repo, "key_id", f.KeyID, "fingerprint", f.Fingerprint(), "action", r.Action}
		if r.Reason != "" {
			acted = append(acted, "reason", r.Reason)
		}
		if r.DueAt != "" {
			acted = append(acted, "delete_due", r.DueAt)
		}
		if rp := r.Replacement; rp != nil {
			acted = append(acted, "replacement", rp.KeyID, "replacement_secret", rp.Secret)
		}
		if v := f.Verification; v != nil && len(v.Quarantine) > 0 {
			acted = append(acted, "quarantine", finding.QuarantineAdvice(v.Quarantine, a == respond.ActionDeleted))
		}
		acted = append(acted, "audit", "keyburn scan audit --key "+f.KeyID)
		switch {
		case failed:
			log.Error("KEY ACTION FAILED", append(acted, "err", r.Error)...)
		case liveLeft:
			log.Warn("live key left alone", acted...) // refused, below the severity floor, deleted already
		default:
			log.Warn("key acted on", acted...)
		}
	}
}

type reporter struct{ log *slog.Logger }

func (r reporter) Skipped(path, reason string) { r.log.Info("skipped", "path", path, "reason", reason) }

func (r reporter) Failed(err error) { r.log.Warn("scan", "err", err) }
