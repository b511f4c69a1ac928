package respond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// revokeSessionsPolicy is the inline policy AWS's console adds to "revoke
// active sessions": it denies everything to sessions issued before a time.
// Temporary credentials cannot be deleted; this makes them useless.
const revokeSessionsPolicy = "AWSRevokeOlderSessions"

// maxSessionLimit is the longest a role session can last (IAM's upper
// bound on a role's MaxSessionDuration, 12 hours): used when the role's own
// limit cannot be read.
const maxSessionLimit = 12 * time.Hour

// revokeSessions handles a live temporary key: for a role session it denies
// the role's sessions issued before now, unless a deny already covers the
// token; anything else is reported.
func (r *Responder) revokeSessions(ctx context.Context, keyID string, vd verify.Verdict) Result {
	now := r.opts.Now()
	res := Result{KeyID: keyID, At: now}
	role := parseARN(vd.ARN).role
	if role == "" {
		res.Action, res.Reason = ActionSkipped, "temporary credentials of "+vd.ARN+" are not a role session: they expire on their own; revoke their source by hand"
		return res
	}
	a := r.auditor(keyID, vd.Account, "role/"+role)
	c := r.iam(vd.Account)

	// keyburn's own revocation, still in force, covers the token.
	if rev, ok, err := r.opts.Store.GetRevocation(ctx, keyID); err != nil {
		return *a.failed("read earlier revocations: "+err.Error(), err)
	} else if ok && now.Before(rev.ExpiresAt) {
		res.Action, res.At, res.Until = ActionRevoked, rev.RevokedAt, rev.ExpiresAt
		res.Reason = "already revoked at " + rev.RevokedAt.UTC().Format(time.RFC3339) + ": not revoked again"
		return res
	}
	longest := maxSessionLimit
	if out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)}); err == nil && out.Role != nil && out.Role.MaxSessionDuration != nil {
		longest = time.Duration(*out.Role.MaxSessionDuration) * time.Second
	}
	// An existing deny covers the token when it denies sessions issued
	// after keyburn first checked this key (the token existed then).
	if deniedBefore, ok := r.existingDeny(ctx, c, role); ok {
		first, err := r.opts.Store.FirstChecked(ctx, keyID)
		if err != nil {
			return *a.failed(err.Error(), err)
		}
		if !first.IsZero() && !deniedBefore.Before(first) {
			res.Action, res.At, res.Until = ActionRevoked, deniedBefore, deniedBefore.Add(longest)
			res.Reason = "an existing deny on role " + role + " (sessions issued before " + deniedBefore.UTC().Format(time.RFC3339) +
				") already covers this token, first seen at " + first.UTC().Format(time.RFC3339) + ": not revoked again"
			if r.opts.DryRun {
				return res
			}
			res.Err = errors.Join(
				a.write(ctx, store.AuditRecord{Action: stepRevoke, Outcome: outSkipped, Detail: res.Reason}),
				r.opts.Store.PutRevocation(ctx, store.Revocation{KeyID: keyID, Account: vd.Account, Role: role, RevokedAt: deniedBefore, ExpiresAt: res.Until}))
			return res
		}
	}
	stamp := now.UTC().Format(time.RFC3339)
	if r.opts.DryRun {
		res.Action, res.Reason = ActionDryRun, "would revoke role "+role+"'s sessions issued before "+stamp
		res.Err = a.write(ctx, store.AuditRecord{Action: stepRevoke, Outcome: outDryRun, Detail: res.Reason})
		return res
	}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],`+
		`"Condition":{"DateLessThan":{"aws:TokenIssueTime":"%s"}}}]}`, stamp)
	err := a.mutate(ctx, nil, stepRevoke, "", "", func() (string, error) {
		out, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role),
			PolicyName: aws.String(revokeSessionsPolicy), PolicyDocument: aws.String(policy)})
		if err != nil {
			return "", err
		}
		return requestIDOf(out.ResultMetadata), nil
	})
	var done *doneErr
	if err != nil && !errors.As(err, &done) {
		return *a.failed(err.Error(), err)
	}
	res.Action, res.Until, res.Err, res.revokedNow = ActionRevoked, now.Add(longest), err, true
	res.Reason = "denied role " + role + "'s sessions issued before " + stamp
	if perr := r.opts.Store.PutRevocation(ctx, store.Revocation{KeyID: keyID, Account: vd.Account, Role: role, RevokedAt: now, ExpiresAt: res.Until}); perr != nil {
		res.Err = errors.Join(res.Err, perr)
	}
	return res
}

// existingDeny reads the role's AWSRevokeOlderSessions policy and returns
// the time before which it denies sessions.
func (r *Responder) existingDeny(ctx context.Context, c IAMAPI, role string) (time.Time, bool) {
	out, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(revokeSessionsPolicy)})
	if err != nil {
		return time.Time{}, false
	}
	return DeniedBefore(aws.ToString(out.PolicyDocument))
}

// DeniedBefore reads a revoke-sessions policy document (as IAM returns it,
// URL-encoded, or plain JSON) and returns the latest time before which it
// denies every action to sessions:
//
//	{"Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],
//	  "Condition":{"DateLessThan":{"aws:TokenIssueTime":"2024-03-01T10:00:00Z"}}}]}
//
// Statement may be one object or a list; Action and Resource "*" or ["*"].
func DeniedBefore(doc string) (time.Time, bool) {
	if un, err := url.QueryUnescape(doc); err == nil && !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		doc = un
	}
	var p struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(doc), &p) != nil {
		return time.Time{}, false
	}
	type statement struct {
		Effect    string
		Action    json.RawMessage
		Resource  json.RawMessage
		Condition map[string]map[string]json.RawMessage
	}
	var stmts []statement
	if json.Unmarshal(p.Statement, &stmts) != nil {
		var one statement
		if json.Unmarshal(p.Statement, &one) != nil {
			return time.Time{}, false
		}
		stmts = []statement{one}
	}
	var latest time.Time
	for _, s := range stmts {
		if s.Effect != "Deny" || !isStar(s.Action) || !isStar(s.Resource) {
			continue
		}
		var at string
		if json.Unmarshal(s.Condition["DateLessThan"]["aws:TokenIssueTime"], &at) != nil {
			continue
		}
		t, err := time.Parse(time.RFC3339, at)
		if err == nil && t.After(latest) {
			latest = t
		}
	}
	return latest, !latest.IsZero()
}

// isStar reports whether a policy's Action or Resource is "*" or ["*"].
func isStar(raw json.RawMessage) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == "*"
	}
	var list []string
	return json.Unmarshal(raw, &list) == nil && slices.Contains(list, "*")
}
