// Package respond kills live leaked keys: it deactivates, then deletes, the
// IAM access key that verification proved live, with the responder's own
// credentials (or a role it assumes in the key's account), and records every
// step in the store's append-only audit log, before and after each call.
// It does not find or verify keys; it acts on a verdict it is given.
//
// # Rails
//
// Checked before anything is done, and again right before every mutating
// call (Respond and DeleteDue share them):
//
//   - only "live" keys, or keys AWS's own exposure notice vouches for
//     ("exposed": Vouch finds their account, which must be the notice's,
//     and their user, with the responder's own credentials);
//   - never the responder's own key, its own user, its own role, or the
//     configured role_name it acts through (a leaked session of either would
//     lock the responder out);
//   - never an account outside the allow list, inside the deny list, or a
//     canary (honeytoken) account — the account decoded offline and the
//     account STS named are both checked;
//   - the key must belong to the user the verification named: the responder
//     re-reads the user's keys (iam:ListAccessKeys, with its own credentials)
//     right before each call, and acts on the state it reads;
//   - a scheduled deletion deletes only a key that is still Inactive: a key
//     its owner re-activated is left alone and the schedule cancelled;
//   - the "started" audit record is written before a mutating call, or the
//     call is not made (fail closed);
//   - DryRun makes no mutating call at all, due deletions included: it
//     records what it would do;
//   - temporary (ASIA) keys cannot be deleted: the sessions of their role are
//     revoked once, and a revocation that already covers the token (keyburn's
//     own, or an existing deny on the role) is not written again;
//   - a root user's key is acted on only with RootAccess, through a root
//     session (sts:AssumeRoot) in its account, and deleted at once (see
//     root.go); otherwise the audit and the result say who can delete it;
//   - Rotate makes a replacement key only in a free slot, never under
//     DryRun, keeps its secret nowhere but Secrets Manager, and deletes it
//     again when it cannot be kept there (rotate.go).
//
// Between the last re-read and the call itself there is an unavoidable
// window (IAM has no conditional delete); it is one round trip long.
//
// # Audit record
//
// One row per step: when, the responder's ARN, the step (last-used,
// owner-check, assume-root, deactivate, schedule-delete, delete,
// revoke-sessions, refuse, reach, evidence, vouch, rotate-create,
// rotate-store, rotate-undo),
// the key ID, account and user, AWS's request ID, the key's status before and
// after, an outcome (started, ok, failed, dry-run, skipped, cancelled) and a
// detail. Secrets are never in it.
package respond

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/reach"
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
	// Rotate makes the user a replacement key, kept in Secrets Manager,
	// then deactivates and deletes the leaked one as Delete does.
	Rotate Policy = "rotate"
)

// ParsePolicy checks a policy name.
func ParsePolicy(s string) (Policy, error) {
	switch p := Policy(s); p {
	case Off, Deactivate, Delete, Rotate:
		return p, nil
	}
	return "", fmt.Errorf("policy %q: want off, deactivate, delete or rotate", s)
}

// Deletes reports whether the policy ends in the leaked key's deletion.
func (p Policy) Deletes() bool { return p == Delete || p == Rotate }

// Action is what was done with a key.
type Action string

// The actions.
const (
	ActionNone        Action = "none"
	ActionDeactivated Action = "deactivated"
	ActionDeleted     Action = "deleted"
	ActionScheduled   Action = "deactivated, deletion scheduled"
	ActionCancelled   Action = "deletion cancelled"
	ActionRevoked     Action = "sessions revoked"
	ActionDryRun      Action = "dry-run"
	ActionSkipped     Action = "skipped"
	ActionFailed      Action = "failed"
)

// Acted reports whether the action left the key unable to sign: STS answers
// InvalidClientTokenId for an inactive or deleted key.
func (a Action) Acted() bool {
	return a == ActionDeleted || a == ActionDeactivated || a == ActionScheduled
}

// Steps of the audit log.
const (
	stepLastUsed   = "last-used"
	stepOwnerCheck = "owner-check"
	stepDeactivate = "deactivate"
	stepSchedule   = "schedule-delete"
	stepDelete     = "delete"
	stepRevoke     = "revoke-sessions"
	stepRefuse     = "refuse"
	stepReach      = "reach"
)

// Outcomes of a step.
const (
	outStarted   = "started"
	outOK        = "ok"
	outFailed    = "failed"
	outDryRun    = "dry-run"
	outSkipped   = "skipped"
	outCancelled = "cancelled"
)

// Key statuses as the audit log writes them.
const (
	statusActive   = string(iamtypes.StatusTypeActive)
	statusInactive = string(iamtypes.StatusTypeInactive)
	statusGone     = "deleted"
)

// Result is what was done with one key.
type Result struct {
	KeyID  string
	Action Action
	At     time.Time
	DueAt  time.Time // ActionScheduled: when the deletion is due
	Until  time.Time // ActionRevoked: no revoked session outlives this
	Reason string    // why nothing was done, what failed, or what is odd
	// Err is a failure of keyburn's own state (the audit log, the
	// schedule) that the caller must report: the action, if any, is
	// described by Action.
	Err error
	// Evidence is what CloudTrail holds of the key's calls, read after
	// it was acted on (nil when nothing was done now).
	Evidence *finding.Evidence
	// Replacement is the new key Rotate made for the key's user, and
	// where it is kept (nil when none was made: Reason says why).
	Replacement *finding.Replacement

	revokedNow bool // ActionRevoked: revoked by this call, not before
}

// IAMAPI is the IAM calls the responder makes.
type IAMAPI interface {
	ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opts ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error)
	GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, opts ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
	CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, opts ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error)
	UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, opts ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error)
	DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, opts ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error)
	GetRole(ctx context.Context, in *iam.GetRoleInput, opts ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, opts ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, opts ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
}

// Options configures a Responder.
type Options struct {
	Policy Policy
	DryRun bool
	// Soak is how long a deactivated key waits before deletion; zero
	// deletes at once. Due deletions are kept in the store.
	Soak time.Duration

	// For Rotate: the Secrets Manager name of each user's replacement key
	// (default DefaultRotateSecretName), the KMS key that encrypts it
	// (default Secrets Manager's own), and the region it is kept in
	// (default Region).
	RotateSecretName string
	RotateKMSKey     string
	RotateRegion     string

	// Credentials are the responder's own (the SDK's default chain).
	Credentials aws.CredentialsProvider
	// ChainCredentials are the other identities behind Credentials: a role
	// profile's source profile (and its source, …). Their keys, and every
	// key of their principals, are keyburn's own too: deleting one locks
	// keyburn out.
	ChainCredentials []aws.CredentialsProvider
	Endpoint         string // IAM and STS endpoint URL; empty: AWS's
	Region           string
	HTTPClient       *http.Client
	// RoleName, when set, is assumed in the key's account
	// (arn:aws:iam::{account}:role/{RoleName}) to act there.
	RoleName string
	// RootAccess deletes live root keys through AWS Organizations'
	// centralized root access: sts:AssumeRoot, with the responder's own
	// credentials (the management or delegated administrator account),
	// into the key's account. Off, a root key is reported with who can
	// delete it.
	RootAccess bool
	// EvidenceRegions are the regions whose CloudTrail event history is
	// read after acting (default us-east-1, which also holds IAM's and
	// the global STS endpoint's events).
	EvidenceRegions []string

	// MinSeverity, when set, leaves keys of a lower severity alone
	// (reported only): "critical" acts only on root, administrator and
	// IAM-manager keys.
	MinSeverity string

	AllowAccounts  []string // when not empty, only these accounts
	DenyAccounts   []string // never these
	CanaryAccounts []string // never these either (besides the public canary list)

	Store *store.Store // the audit log and due deletions (required)

	// Now is the clock (default time.Now).
	Now func() time.Time

	testOnlyIAM         func(account string) IAMAPI
	testOnlyAccountOf   func(keyID string) (string, error)   // in place of sts:GetAccessKeyInfo
	testOnlyRootSession func(account string) (IAMAPI, error) // in place of sts:AssumeRoot
	testOnlyCloudTrail  func(account, region string) CloudTrailAPI
	testOnlyReach       func(account string) reach.IAM
	testOnlySecrets     func(account string) SecretsAPI
}

// ErrNoCredentials is returned by New when keyburn's own AWS credentials,
// which the responder acts with, cannot be found.
var ErrNoCredentials = errors.New("respond: no AWS credentials of keyburn's own to act with")

// Responder acts on live keys. It is safe for concurrent use.
type Responder struct {
	opts    Options
	selfKey string    // the responder's own access key ID
	selfARN string    // and ARN
	self    principal // parsed from selfARN
	// guarded are the other identities keyburn must never act on: those
	// in its credential chain, and the principals that may assume the role
	// it acts as.
	guarded []ownIdentity
	// unguarded says what could not be read to fill guarded ("" when all).
	unguarded string

	clientMu sync.Mutex
	clients  map[string]IAMAPI
	creds    map[string]aws.CredentialsProvider // by account: role_name's there

	limits    limiters // CloudTrail's rate, per account and region
	iamLimits limiters // Reach's IAM reads, per account

	lastUsedMu sync.Mutex
	lastUsed   map[string]bool // key IDs whose last use was recorded before verification

	// holder names this responder in the keys' locks (store.LockKey).
	holderOnce sync.Once
	holder     string
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Responder{opts: opts, clients: map[string]IAMAPI{}, creds: map[string]aws.CredentialsProvider{}, lastUsed: map[string]bool{},
		iamLimits: limiters{every: reachRate, burst: reachRate}}
	if opts.Policy == Off {
		return r, nil
	}
	if opts.Credentials == nil {
		return nil, errors.New("respond: no credentials for the responder")
	}
	creds, err := opts.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoCredentials, err)
	}
	out, err := r.sts().GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("respond: who is the responder (sts:GetCallerIdentity with its own credentials): %w", err)
	}
	r.setSelf(creds.AccessKeyID, aws.ToString(out.Arn))
	r.guardChain(ctx)
	return r, nil
}

func (r *Responder) setSelf(keyID, arn string) {
	r.selfKey, r.selfARN, r.self = keyID, arn, parseARN(arn)
}

// Self returns the responder's own access key ID and ARN.
func (r *Responder) Self() (keyID, arn string) { return r.selfKey, r.selfARN }

// DryRun reports whether the responder changes nothing: then neither may
// anything acting on its results (an alert's resolution).
func (r *Responder) DryRun() bool { return r != nil && r.opts.DryRun }

// Describe says in one line what the responder will do, for a start-up log.
func (r *Responder) Describe() string {
	o := r.opts
	if o.Policy == Off {
		return "respond=off: live keys are reported, never deactivated or deleted"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "respond=%s", o.Policy)
	if o.Policy == Rotate {
		fmt.Fprintf(&b, " (a replacement key for the user first, kept in Secrets Manager as %s)", cmp.Or(o.RotateSecretName, DefaultRotateSecretName))
	}
	if o.Policy.Deletes() && o.Soak > 0 {
		fmt.Fprintf(&b, " (deactivate, then delete after a soak of %s)", o.Soak)
	}
	if o.DryRun {
		b.WriteString(" DRY RUN: nothing is changed, what would be done is recorded")
	}
	fmt.Fprintf(&b, "; acting as %s", r.selfARN)
	for _, g := range r.guarded {
		if g.arn != "" {
			fmt.Fprintf(&b, "; never %s (%s)", g.arn, g.why)
		} else {
			fmt.Fprintf(&b, "; never key %s (%s)", g.keyID, g.why)
		}
	}
	if r.unguarded != "" {
		fmt.Fprintf(&b, "; NOT READ, so not guarded by name: %s", r.unguarded)
	}
	if o.RoleName != "" {
		fmt.Fprintf(&b, " through role %s in each key's account", o.RoleName)
	}
	b.WriteString(r.rootAdvice())
	if o.MinSeverity != "" {
		fmt.Fprintf(&b, "; only on keys of severity %s or more (by what they reach)", o.MinSeverity)
	}
	if len(o.AllowAccounts) > 0 {
		fmt.Fprintf(&b, "; only in accounts %s", strings.Join(o.AllowAccounts, ","))
	}
	if len(o.DenyAccounts) > 0 {
		fmt.Fprintf(&b, "; never in accounts %s", strings.Join(o.DenyAccounts, ","))
	}
	return b.String()
}

// Key names a key to act on.
type Key struct {
	ID      string
	Account string // decoded offline from the key ID, "" if it does not encode one
	// LeakedAt is when the key was first seen (its commit's date); zero
	// when unknown. Evidence is read from then.
	LeakedAt time.Time
	// Severity is the finding's, from its reach: below MinSeverity, a
	// key is reported, not acted on.
	Severity string
}

// Respond acts on key according to the policy, given its verdict; after
// an action, it reads what CloudTrail holds of the key's calls since it
// leaked (Result.Evidence, and the audit log).
func (r *Responder) Respond(ctx context.Context, k Key, vd verify.Verdict) Result {
	if !r.opts.DryRun && r.opts.Policy != Off && vd.Status.Actionable() {
		// One process at a time acts on a key, whichever of those that
		// share the state found it; the next finds what the first did.
		unlock, err := r.lockKey(ctx, k.ID)
		if err != nil {
			return Result{KeyID: k.ID, At: r.opts.Now(), Action: ActionFailed, Reason: err.Error() + "; nothing done", Err: err}
		}
		defer unlock()
		if at, ok := r.deletedBefore(ctx, k.ID); ok {
			return Result{KeyID: k.ID, At: r.opts.Now(), Action: ActionSkipped,
				Reason: "deleted already at " + at.UTC().Format(time.RFC3339) + " (the audit log has it, by this or another process sharing the state): nothing more done"}
		}
	}
	res := r.respond(ctx, k, vd)
	if r.opts.DryRun || !res.Action.Acted() && !res.revokedNow {
		return res
	}
	a := r.auditor(k.ID, vd.Account, ownerName(vd.ARN))
	ev, err := r.evidence(ctx, a, k.LeakedAt)
	res.Evidence, res.Err = ev, errors.Join(res.Err, err)
	return res
}

func (r *Responder) respond(ctx context.Context, k Key, vd verify.Verdict) Result {
	now := r.opts.Now()
	res := Result{KeyID: k.ID, At: now}
	skip := func(reason string) Result { res.Action, res.Reason = ActionSkipped, reason; return res }
	if r.opts.Policy == Off {
		res.Action = ActionNone
		return res
	}
	if !vd.Status.Actionable() {
		return skip("not live (" + string(vd.Status) + ")")
	}
	p := parseARN(vd.ARN)
	if why := r.refuse(k.ID, p, k.Account, vd.Account); why != "" {
		// The audit says why a live key was left alone.
		res.Err = r.auditor(k.ID, vd.Account, "").write(ctx, store.AuditRecord{Action: stepRefuse, Outcome: outSkipped, Detail: why})
		return skip("refused: " + why)
	}
	if why := r.belowMinSeverity(k.Severity); why != "" {
		res.Err = r.auditor(k.ID, vd.Account, ownerName(vd.ARN)).write(ctx, store.AuditRecord{Action: stepRefuse, Outcome: outSkipped, Detail: why})
		return skip(why)
	}
	if strings.HasPrefix(k.ID, "ASIA") && vd.Status == verify.Exposed {
		return skip("a temporary key AWS found exposed: its role cannot be told from the key ID alone; revoke the sessions of the role that issued it by hand")
	}
	if strings.HasPrefix(k.ID, "ASIA") {
		return r.revokeSessions(ctx, k.ID, vd)
	}
	if p.root {
		// A root key grants everything in its account; an IAM principal
		// cannot delete it.
		return r.respondRoot(ctx, k, vd, p.account)
	}
	if p.user == "" {
		return skip("the key does not belong to an IAM user (" + vd.ARN + "): act by hand")
	}
	a := r.auditor(k.ID, vd.Account, p.user)
	if !vd.Secret.IsZero() {
		a.secretSHA = vd.Secret.SHA256()
	}
	c := r.iam(vd.Account)
	if !r.lastUsedFirst(k.ID) {
		if err := a.lastUsedAfter(ctx, c); err != nil {
			return *a.failed("audit log: "+err.Error()+"; nothing done", err)
		}
	}
	status, fail := a.ownerCheck(ctx, c)
	if fail != nil {
		return *fail
	}
	if status == statusGone {
		res.Action, res.Reason = ActionFailed, "owner check: the key is not among user "+p.user+"'s keys; nothing done"
		return res
	}
	var repl *finding.Replacement
	var rotateWhy string
	var rotateErr error
	if r.opts.Policy == Rotate {
		// Before the leaked key stops working: its owners get the new
		// one first. Whatever comes of it, the leaked key goes on below.
		repl, rotateWhy, rotateErr = r.rotate(ctx, a, c)
	}
	out := r.actOn(ctx, k, vd, p, a, c, status, res)
	out.Replacement, out.Err = repl, errors.Join(out.Err, rotateErr)
	if rotateWhy != "" {
		out.Reason = strings.TrimPrefix(out.Reason+"; "+rotateWhy, "; ")
	}
	return out
}

// actOn deactivates, and deletes or schedules the deletion of, the key a
// names, owned by p, whose status the owner check read, as the policy
// says (under DryRun, records what it would do).
func (r *Responder) actOn(ctx context.Context, k Key, vd verify.Verdict, p principal, a auditor, c IAMAPI, status string, res Result) Result {
	now := res.At
	if r.opts.DryRun {
		res.Action, res.Reason = ActionDryRun, "would "+string(r.opts.Policy)
		err := a.write(ctx, store.AuditRecord{Action: stepDeactivate, Outcome: outDryRun, Before: status, After: status, Detail: "would set Inactive"})
		if err == nil && r.opts.Policy.Deletes() {
			detail := "would delete at once"
			if r.opts.Soak > 0 {
				detail = "would delete after a soak of " + r.opts.Soak.String()
			}
			err = a.write(ctx, store.AuditRecord{Action: stepDelete, Outcome: outDryRun, Before: status, After: status, Detail: detail})
		}
		res.Err = err
		return res
	}
	var due time.Time
	if r.opts.Policy.Deletes() {
		// The intent first, before the first change: a run killed between
		// deactivate and delete leaves a due deletion that the next run
		// (any run, whatever its findings) carries out. Without it stored,
		// nothing is done.
		var err error
		if due, err = r.opts.Store.ScheduleDeletion(ctx, store.Deletion{KeyID: k.ID, Account: vd.Account, UserName: p.user,
			DueAt: now.Add(r.opts.Soak), CreatedAt: now}); err != nil {
			return *a.failed("the deletion could not be stored before acting: "+err.Error()+"; nothing done", err)
		}
	}
	if status == statusActive {
		if f := a.deactivate(ctx, c); f != nil {
			return *f
		}
	}
	res.At = r.opts.Now()
	if r.opts.Policy == Deactivate {
		res.Action = ActionDeactivated
		return res
	}
	rctx, cancel := recording(ctx)
	defer cancel()
	if r.opts.Soak > 0 {
		res.Action, res.DueAt = ActionScheduled, due
		res.Err = a.write(rctx, store.AuditRecord{Action: stepSchedule, Outcome: outOK, Before: statusInactive, After: statusInactive,
			Detail: "deletion due at " + due.UTC().Format(time.RFC3339)})
		return res
	}
	res = a.deleteInactive(ctx, c, res)
	if res.Action == ActionDeleted {
		res.Err = errors.Join(res.Err, r.opts.Store.Unschedule(rctx, k.ID))
	}
	return res
}
