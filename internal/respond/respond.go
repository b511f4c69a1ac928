// Package respond kills live leaked keys: it deactivates, then deletes, the
// IAM access key that verification proved live, with the responder's own
// credentials (or a role it assumes in the key's account), and records every
// step in the store's append-only audit log, before and after each call.
//
// Rails, checked before anything is done: only "live" keys; never the
// responder's own key; never an account outside the allow list or inside the
// deny list; never acting with the leaked key itself (AWS's quarantine policy
// denies it iam:UpdateAccessKey anyway); and the key must belong to the user
// the verification named (ListAccessKeys), or nothing is touched.
package respond

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// Policy is what to do with a live key.
type Policy string

// The policies.
const (
	Off        Policy = "off"
	Deactivate Policy = "deactivate"
	Delete     Policy = "delete" // deactivate first, then delete
)

// ParsePolicy checks a policy name.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Off, Deactivate, Delete:
		return p, nil
	}
	return "", fmt.Errorf("policy %q: want off, deactivate or delete", s)
}

// Actions reported.
const (
	ActionNone        = "none"
	ActionDeactivated = "deactivated"
	ActionDeleted     = "deleted"
	ActionScheduled   = "deactivated, deletion scheduled"
	ActionDryRun      = "dry-run"
	ActionSkipped     = "skipped"
	ActionFailed      = "failed"
)

// Result is what was done with one key.
type Result struct {
	Action string
	At     time.Time
	Reason string // why nothing was done, or what failed
}

// IAMAPI is the IAM calls the responder makes.
type IAMAPI interface {
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opts ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, opts ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
	UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, opts ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error)
	DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, opts ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
	PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, opts ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
}

// Options configures a Responder.
type Options struct {
	Policy Policy
	DryRun bool
	// Soak is how long a deactivated key waits before deletion; zero
	// deletes at once. Due deletions are kept in the store.
	Soak time.Duration

	// Credentials are the responder's own (the SDK's default chain).
	Credentials aws.CredentialsProvider
	Endpoint    string // IAM and STS endpoint URL; empty: AWS's
	Region      string
	HTTPClient  *http.Client
	// RoleName, when set, is assumed in the key's account
	// (arn:aws:iam::{account}:role/{RoleName}) to act there.
	RoleName string

	AllowAccounts []string // when not empty, only these accounts
	DenyAccounts  []string // never these

	Store *store.Store // the audit log and due deletions (required)

	testOnlyIAM func(account string) IAMAPI
}

// Responder acts on live keys. It is safe for concurrent use.
type Responder struct {
	opts     Options
	selfKey  string // the responder's own access key ID
	selfARN  string
	clients  map[string]IAMAPI
	clientMu chan struct{}
}

// New returns a Responder, after learning who it is (its own key and ARN,
// which it must never touch).
func New(ctx context.Context, opts Options) (*Responder, error) {
	if opts.Store == nil {
		return nil, errors.New("respond: a state store is required for the audit log")
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.HTTPClient == nil {
		// A nil *http.Client in the SDK's options would be a non-nil
		// interface holding nil: give it a real one.
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	r := &Responder{opts: opts, clients: map[string]IAMAPI{}, clientMu: make(chan struct{}, 1)}
	if opts.Policy == Off {
		return r, nil
	}
	if opts.Credentials == nil {
		return nil, errors.New("respond: no credentials for the responder")
	}
	creds, err := opts.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("respond: the responder's credentials: %w", err)
	}
	r.selfKey = creds.AccessKeyID
	out, err := r.sts().GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("respond: who is the responder (sts:GetCallerIdentity with its own credentials): %w", err)
	}
	r.selfARN = aws.ToString(out.Arn)
	return r, nil
}

// AccountOf names the account a key ID belongs to with sts:GetAccessKeyInfo,
// signed with the responder's own credentials: for key IDs of the old format
// (AKIAI…, AKIAJ…) that do not encode it, and keys found without a secret.
func (r *Responder) AccountOf(ctx context.Context, keyID string) (string, error) {
	if r.opts.Credentials == nil {
		return "", errors.New("no responder credentials")
	}
	out, err := r.sts().GetAccessKeyInfo(ctx, &sts.GetAccessKeyInfoInput{AccessKeyId: aws.String(keyID)})
	if err != nil {
		return "", fmt.Errorf("sts:GetAccessKeyInfo %s: %w", keyID, err)
	}
	return aws.ToString(out.Account), nil
}

// Self returns the responder's own access key ID and ARN.
func (r *Responder) Self() (keyID, arn string) { return r.selfKey, r.selfARN }

func (r *Responder) sts() *sts.Client {
	o := sts.Options{Region: r.opts.Region, Credentials: r.opts.Credentials, HTTPClient: r.opts.HTTPClient,
		APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue("keyburn", "respond")}}
	if r.opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(r.opts.Endpoint)
	}
	return sts.New(o)
}

// iam returns the IAM client for an account: the responder's own, or the
// assumed role's.
func (r *Responder) iam(account string) IAMAPI {
	r.clientMu <- struct{}{}
	defer func() { <-r.clientMu }()
	if c, ok := r.clients[account]; ok {
		return c
	}
	var c IAMAPI
	if r.opts.testOnlyIAM != nil {
		c = r.opts.testOnlyIAM(account)
	} else {
		creds := r.opts.Credentials
		if r.opts.RoleName != "" {
			role := fmt.Sprintf("arn:aws:iam::%s:role/%s", account, r.opts.RoleName)
			creds = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(r.sts(), role, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "keyburn-responder"
			}))
		}
		o := iam.Options{Region: r.opts.Region, Credentials: creds, HTTPClient: r.opts.HTTPClient,
			APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue("keyburn", "respond")}}
		if r.opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(r.opts.Endpoint)
		}
		c = iam.New(o)
	}
	r.clients[account] = c
	return c
}

// Respond acts on keyID according to the policy, given its verdict.
func (r *Responder) Respond(ctx context.Context, keyID string, vd verify.Verdict) Result {
	now := time.Now()
	skip := func(reason string) Result { return Result{Action: ActionSkipped, At: now, Reason: reason} }
	switch {
	case r.opts.Policy == Off:
		return Result{Action: ActionNone, At: now}
	case vd.Status != verify.Live:
		return skip("not live (" + string(vd.Status) + ")")
	case keyID == r.selfKey:
		return skip("the responder's own key")
	}
	account := vd.Account
	if len(r.opts.AllowAccounts) > 0 && !slices.Contains(r.opts.AllowAccounts, account) {
		return skip("account " + account + " is not in the allow list")
	}
	if slices.Contains(r.opts.DenyAccounts, account) {
		return skip("account " + account + " is in the deny list")
	}
	if strings.HasPrefix(keyID, "ASIA") {
		return r.revokeSessions(ctx, keyID, account, vd, now)
	}
	user, ok := userOf(vd.ARN)
	if !ok {
		return skip("the key does not belong to an IAM user (" + vd.ARN + "): act by hand")
	}
	a := auditor{r: r, ctx: ctx, keyID: keyID, account: account, user: user}
	c := r.iam(account)

	// Owner check: the key must be the named user's.
	a.step("owner-check", "started", "", "", "", "")
	keys, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		a.step("owner-check", "failed", requestID(err), "", "", errText(err))
		return Result{Action: ActionFailed, At: now, Reason: "owner check: " + errText(err)}
	}
	status := ""
	for _, k := range keys.AccessKeyMetadata {
		if aws.ToString(k.AccessKeyId) == keyID {
			status = string(k.Status)
		}
	}
	rid, _ := awsmiddleware.GetRequestIDMetadata(keys.ResultMetadata)
	if status == "" {
		a.step("owner-check", "failed", rid, "", "", "the key is not among user "+user+"'s keys")
		return Result{Action: ActionFailed, At: now, Reason: "owner check: the key is not user " + user + "'s; nothing done"}
	}
	a.step("owner-check", "ok", rid, status, status, "user "+user)
	if lu, err := c.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(keyID)}); err == nil && lu.AccessKeyLastUsed != nil {
		rid, _ := awsmiddleware.GetRequestIDMetadata(lu.ResultMetadata)
		detail := "never used"
		if t := lu.AccessKeyLastUsed.LastUsedDate; t != nil {
			detail = fmt.Sprintf("last used %s by %s in %s", t.UTC().Format(time.RFC3339),
				aws.ToString(lu.AccessKeyLastUsed.ServiceName), aws.ToString(lu.AccessKeyLastUsed.Region))
		}
		a.step("last-used", "ok", rid, status, status, detail)
	}
	if r.opts.DryRun {
		a.step("deactivate", "dry-run", "", status, status, "would set Inactive")
		if r.opts.Policy == Delete {
			a.step("delete", "dry-run", "", status, status, "would delete")
		}
		return Result{Action: ActionDryRun, At: now, Reason: "would " + string(r.opts.Policy)}
	}

	// Deactivate (already inactive is success).
	if status != string(iamtypes.StatusTypeInactive) {
		a.step("deactivate", "started", "", status, "", "")
		out, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{AccessKeyId: aws.String(keyID),
			UserName: aws.String(user), Status: iamtypes.StatusTypeInactive})
		if err != nil && !isCode(err, "NoSuchEntity") {
			a.step("deactivate", "failed", requestID(err), status, status, errText(err))
			return Result{Action: ActionFailed, At: now, Reason: "deactivate: " + errText(err)}
		}
		if err == nil {
			rid, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
			a.step("deactivate", "ok", rid, status, "Inactive", "")
		}
	}
	if r.opts.Policy == Deactivate {
		return Result{Action: ActionDeactivated, At: time.Now()}
	}
	if r.opts.Soak > 0 {
		due := time.Now().Add(r.opts.Soak)
		if err := r.opts.Store.ScheduleDeletion(ctx, store.Deletion{KeyID: keyID, Account: account, UserName: user, DueAt: due}); err != nil {
			return Result{Action: ActionFailed, At: now, Reason: err.Error()}
		}
		a.step("schedule-delete", "ok", "", "Inactive", "Inactive", "due "+due.UTC().Format(time.RFC3339))
		return Result{Action: ActionScheduled, At: time.Now()}
	}
	if res := r.delete(ctx, a, c); res.Action == ActionFailed {
		return res
	}
	return Result{Action: ActionDeleted, At: time.Now()}
}

func (r *Responder) delete(ctx context.Context, a auditor, c IAMAPI) Result {
	a.step("delete", "started", "", "Inactive", "", "")
	out, err := c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(a.keyID), UserName: aws.String(a.user)})
	switch {
	case err != nil && isCode(err, "NoSuchEntity"):
		a.step("delete", "ok", requestID(err), "Inactive", "deleted", "already gone")
	case err != nil:
		a.step("delete", "failed", requestID(err), "Inactive", "Inactive", errText(err))
		return Result{Action: ActionFailed, At: time.Now(), Reason: "delete: " + errText(err)}
	default:
		rid, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		a.step("delete", "ok", rid, "Inactive", "deleted", "")
	}
	return Result{Action: ActionDeleted, At: time.Now()}
}

// ActionRevoked is the action on temporary credentials.
const ActionRevoked = "sessions revoked"

// revokeSessionsPolicy is the inline policy AWS's console adds to "revoke
// active sessions": it denies everything to sessions issued before now.
// Temporary credentials cannot be deleted; this makes them useless.
const revokeSessionsPolicy = "AWSRevokeOlderSessions"

// revokeSessions handles a live temporary key: for a role session it denies
// the role's sessions issued before now; anything else is reported.
func (r *Responder) revokeSessions(ctx context.Context, keyID, account string, vd verify.Verdict, now time.Time) Result {
	role, ok := roleOf(vd.ARN)
	if !ok {
		return Result{Action: ActionSkipped, At: now, Reason: "temporary credentials of " + vd.ARN + " are not a role session: they expire on their own; revoke their source by hand"}
	}
	a := auditor{r: r, ctx: ctx, keyID: keyID, account: account, user: "role/" + role}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],`+
		`"Condition":{"DateLessThan":{"aws:TokenIssueTime":"%s"}}}]}`, now.UTC().Format(time.RFC3339))
	if r.opts.DryRun {
		a.step("revoke-sessions", "dry-run", "", "", "", "would deny role "+role+"'s sessions issued before "+now.UTC().Format(time.RFC3339))
		return Result{Action: ActionDryRun, At: now, Reason: "would revoke role " + role + "'s sessions"}
	}
	a.step("revoke-sessions", "started", "", "", "", "role "+role)
	out, err := r.iam(account).PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role),
		PolicyName: aws.String(revokeSessionsPolicy), PolicyDocument: aws.String(policy)})
	if err != nil {
		a.step("revoke-sessions", "failed", requestID(err), "", "", errText(err))
		return Result{Action: ActionFailed, At: now, Reason: "revoke sessions: " + errText(err)}
	}
	rid, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	a.step("revoke-sessions", "ok", rid, "", "", "denied sessions issued before "+now.UTC().Format(time.RFC3339))
	return Result{Action: ActionRevoked, At: time.Now()}
}

// roleOf returns the role name of an assumed-role session ARN
// (arn:aws:sts::123456789012:assumed-role/NAME/SESSION).
func roleOf(arn string) (string, bool) {
	_, rest, ok := strings.Cut(arn, ":assumed-role/")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name, name != ""
}

// DeleteDue deletes the keys whose soak window has passed.
func (r *Responder) DeleteDue(ctx context.Context) ([]string, error) {
	due, err := r.opts.Store.DueDeletions(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	var done []string
	for _, d := range due {
		a := auditor{r: r, ctx: ctx, keyID: d.KeyID, account: d.Account, user: d.UserName}
		if res := r.delete(ctx, a, r.iam(d.Account)); res.Action == ActionDeleted {
			done = append(done, d.KeyID)
			_ = r.opts.Store.DeletionDone(ctx, d.KeyID)
		}
	}
	return done, nil
}

// auditor writes one key's steps to the audit log.
type auditor struct {
	r                    *Responder
	ctx                  context.Context
	keyID, account, user string
}

func (a auditor) step(action, outcome, requestID, before, after, detail string) {
	_ = a.r.opts.Store.Audit(a.ctx, store.AuditRecord{Actor: a.r.selfARN, Action: action, KeyID: a.keyID,
		Account: a.account, UserName: a.user, RequestID: requestID, Before: before, After: after,
		Outcome: outcome, Detail: detail})
}

// userOf returns the user name of an IAM user ARN
// (arn:aws:iam::123456789012:user/path/name).
func userOf(arn string) (string, bool) {
	_, res, ok := strings.Cut(arn, ":user/")
	if !ok || !strings.HasPrefix(arn, "arn:aws") {
		return "", false
	}
	if i := strings.LastIndexByte(res, '/'); i >= 0 {
		res = res[i+1:]
	}
	return res, res != ""
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

func errText(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}

func requestID(err error) string {
	var re interface{ ServiceRequestID() string }
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	return ""
}
