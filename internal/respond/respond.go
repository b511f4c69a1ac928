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
//   - only "live" keys;
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
//     root.go); otherwise the audit and the result say who can delete it.
//
// Between the last re-read and the call itself there is an unavoidable
// window (IAM has no conditional delete); it is one round trip long.
//
// # Audit record
//
// One row per step: when, the responder's ARN, the step (last-used,
// owner-check, assume-root, deactivate, schedule-delete, delete,
// revoke-sessions, refuse, reach, evidence),
// the key ID, account and user, AWS's request ID, the key's status before and
// after, an outcome (started, ok, failed, dry-run, skipped, cancelled) and a
// detail. Secrets are never in it.
package respond

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

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
	r.clientMu.Lock()
	defer r.clientMu.Unlock()
	if c, ok := r.clients[account]; ok {
		return c
	}
	var c IAMAPI
	if r.opts.testOnlyIAM != nil {
		c = r.opts.testOnlyIAM(account)
	} else {
		c = r.iamWith(r.credsLocked(account))
	}
	r.clients[account] = c
	return c
}

// credsLocked returns the credentials that act in account: role_name's
// there, or the responder's own. The caller holds clientMu.
func (r *Responder) credsLocked(account string) aws.CredentialsProvider {
	if r.opts.RoleName == "" {
		return r.opts.Credentials
	}
	if c, ok := r.creds[account]; ok {
		return c
	}
	role := fmt.Sprintf("arn:aws:iam::%s:role/%s", account, r.opts.RoleName)
	c := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(r.sts(), role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "keyburn-responder"
	}))
	r.creds[account] = c
	return c
}

// credsIn returns credentials that act in account, and false when the
// responder has none there: no role_name, and not its own account.
func (r *Responder) credsIn(account string) (aws.CredentialsProvider, bool) {
	if account == "" || r.opts.RoleName == "" && account != r.self.account {
		return nil, false
	}
	r.clientMu.Lock()
	defer r.clientMu.Unlock()
	return r.credsLocked(account), true
}

// iamWith returns an IAM client acting with creds.
func (r *Responder) iamWith(creds aws.CredentialsProvider) IAMAPI { return r.iamClient(creds) }

func (r *Responder) iamClient(creds aws.CredentialsProvider) *iam.Client {
	o := iam.Options{Region: r.opts.Region, Credentials: creds, HTTPClient: r.opts.HTTPClient,
		APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue("keyburn", "respond")}}
	if r.opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(r.opts.Endpoint)
	}
	return iam.New(o)
}

// principal is who an ARN names.
type principal struct {
	account string
	user    string // an IAM user's name
	role    string // an assumed role's name
	root    bool
}

// parseARN reads arn:PARTITION:SERVICE::ACCOUNT:RESOURCE for the principals
// STS names: user/[path/]NAME, assumed-role/ROLE/SESSION, root.
func parseARN(arn string) principal {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") {
		return principal{}
	}
	p := principal{account: parts[4]}
	res := parts[5]
	switch {
	case parts[2] == "iam" && strings.HasPrefix(res, "user/"):
		p.user = res[strings.LastIndexByte(res, '/')+1:]
	case parts[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		p.role, _, _ = strings.Cut(strings.TrimPrefix(res, "assumed-role/"), "/")
	case parts[2] == "iam" && strings.HasPrefix(res, "role/"):
		p.role = res[strings.LastIndexByte(res, '/')+1:]
	case parts[2] == "iam" && res == "root":
		p.root = true
	}
	return p
}

// severities, least first.
var severities = []string{"low", "medium", "high", finding.SeverityCritical}

// ParseSeverity checks a severity name ("" is none).
func ParseSeverity(s string) (string, error) {
	if s == "" || slices.Contains(severities, s) {
		return s, nil
	}
	return "", fmt.Errorf("severity %q: want one of %s", s, strings.Join(severities, ", "))
}

// belowMinSeverity says why a key of severity sev is not acted on, or "".
func (r *Responder) belowMinSeverity(sev string) string {
	min := r.opts.MinSeverity
	if min == "" || sev == "" || slices.Index(severities, sev) >= slices.Index(severities, min) {
		return ""
	}
	return "severity " + sev + " is below respond_min_severity " + min + ": reported, not acted on"
}

// Reach reads what a live key could do, with the responder's credentials
// in the key's account (its own, or role_name's), never the key's: the
// policies of the user (or role) STS named; a root key reaches everything.
// IAM is read at most reachRate calls a second per account. The summary
// is written to the audit log.
func (r *Responder) Reach(ctx context.Context, k Key, vd verify.Verdict) (*finding.Reach, error) {
	p := parseARN(vd.ARN)
	if r.refuse(k.ID, p, k.Account, vd.Account) != "" {
		// The rails that keep keyburn from acting in an account (deny,
		// allow and canary lists) keep its reads out too.
		return nil, nil
	}
	var out *finding.Reach
	switch {
	case p.root:
		out = &finding.Reach{Level: finding.ReachAdmin, Why: []string{"admin: the root user of account " + p.account + " can do everything in it"}}
	case p.user == "" && p.role == "":
		return nil, nil
	default:
		c, why := r.reachIAM(vd.Account)
		switch {
		case c == nil:
			out = &finding.Reach{Level: finding.ReachUnknown, Unread: []string{why}}
		case p.role != "":
			out = reach.OfRole(ctx, c, p.role)
		default:
			out = reach.Of(ctx, c, p.user, vd.ARN)
		}
	}
	err := r.auditor(k.ID, vd.Account, ownerName(vd.ARN)).write(ctx, store.AuditRecord{Action: stepReach, Outcome: outOK, Detail: out.Summary()})
	return out, err
}

// reachRate bounds the IAM reads of Reach, per account: a key's reach is
// about 20 calls, read at once; more keys of one account wait.
const reachRate = 20

// reachIAM returns the IAM client Reach reads with, rate-limited, or why
// there is none.
func (r *Responder) reachIAM(account string) (reach.IAM, string) {
	if r.opts.testOnlyReach != nil {
		return r.opts.testOnlyReach(account), ""
	}
	creds, ok := r.credsIn(account)
	if !ok {
		return nil, "keyburn has no credentials in account " + account + " (set role_name)"
	}
	lim := r.iamLimits.get(account, "iam")
	base := r.opts.HTTPClient
	hc := &http.Client{Timeout: base.Timeout, Transport: limited{base: cmp.Or[http.RoundTripper](base.Transport, http.DefaultTransport), lim: lim}}
	o := iam.Options{Region: r.opts.Region, Credentials: creds, HTTPClient: hc,
		APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue("keyburn", "reach")}}
	if r.opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(r.opts.Endpoint)
	}
	return iam.New(o), ""
}

// limited waits for its limiter before each request.
type limited struct {
	base http.RoundTripper
	lim  *rate.Limiter
}

func (l limited) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := l.lim.Wait(req.Context()); err != nil {
		return nil, err
	}
	return l.base.RoundTrip(req)
}

// ownerName is how the audit log names who an ARN is: a user's name,
// role/NAME, or the root user.
func ownerName(arn string) string {
	switch p := parseARN(arn); {
	case p.root:
		return rootUser
	case p.role != "":
		return "role/" + p.role
	default:
		return p.user
	}
}

// IsRootARN reports whether arn names an account's root user, whose access
// keys grant everything in the account.
func IsRootARN(arn string) bool { return parseARN(arn).root }

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

// refuse applies the rails that do not need AWS: it returns why the
// responder must not act on keyID held by p, or "" when it may. accounts are
// every account the key was said to be in.
func (r *Responder) refuse(keyID string, p principal, accounts ...string) string {
	if keyID == r.selfKey {
		return "it is the responder's own key"
	}
	known := false
	for _, a := range accounts {
		if a == "" {
			continue
		}
		known = true
		switch {
		case verify.IsPublicCanary(a) || slices.Contains(r.opts.CanaryAccounts, a):
			return "account " + a + " is a canary (honeytoken) account"
		case slices.Contains(r.opts.DenyAccounts, a):
			return "account " + a + " is in the deny list"
		case len(r.opts.AllowAccounts) > 0 && !slices.Contains(r.opts.AllowAccounts, a):
			return "account " + a + " is not in the allow list"
		}
	}
	if !known && len(r.opts.AllowAccounts) > 0 {
		return "the key's account is unknown, and there is an allow list"
	}
	if p.account != "" && p.account == r.self.account {
		if p.root && r.self.root {
			return "it is a key of the responder's own root user (" + r.selfARN + ")"
		}
		if p.user != "" && p.user == r.self.user {
			return "it belongs to the responder's own user (" + r.selfARN + ")"
		}
		if p.role != "" && p.role == r.self.role {
			return "it is a session of the responder's own role " + p.role
		}
	}
	if p.role != "" && p.role == r.opts.RoleName {
		return "it is a session of role " + p.role + ", the role_name the responder acts through"
	}
	for _, g := range r.guarded {
		switch {
		case g.keyID != "" && keyID == g.keyID:
			return "it is " + g.why
		case g.p.account != "" && p.account == g.p.account && (g.p.user != "" && p.user == g.p.user || g.p.role != "" && p.role == g.p.role):
			return "it belongs to " + g.arn + ": " + g.why
		}
	}
	return ""
}

// RecordLastUsed records the key's last use in the audit log before it is
// verified: keyburn's own sts:GetCallerIdentity with the key updates "last
// used", and would hide an attacker's last use. It applies the account rails
// first and is read-only (DryRun too). It returns whether it was recorded.
func (r *Responder) RecordLastUsed(ctx context.Context, k Key) (bool, error) {
	if r.opts.Policy == Off || k.Account == "" || strings.HasPrefix(k.ID, "ASIA") {
		return false, nil
	}
	if why := r.refuse(k.ID, principal{}, k.Account); why != "" {
		return false, nil
	}
	if r.opts.RoleName == "" && k.Account != r.self.account {
		return false, nil // no credentials in that account
	}
	out, err := r.iam(k.Account).GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(k.ID)})
	if err != nil {
		return false, nil // not a key the responder can see: nothing to record
	}
	a := r.auditor(k.ID, k.Account, aws.ToString(out.UserName))
	if err := a.write(ctx, store.AuditRecord{Action: stepLastUsed, Outcome: outOK, RequestID: requestIDOf(out.ResultMetadata),
		Detail: "before verification (keyburn's STS call has not touched it): " + lastUsedText(out.AccessKeyLastUsed)}); err != nil {
		return false, err
	}
	r.lastUsedMu.Lock()
	r.lastUsed[k.ID] = true
	r.lastUsedMu.Unlock()
	return true, nil
}

func lastUsedText(lu *iamtypes.AccessKeyLastUsed) string {
	if lu == nil || lu.LastUsedDate == nil {
		return "never used"
	}
	return fmt.Sprintf("last used %s by %s in %s", lu.LastUsedDate.UTC().Format(time.RFC3339),
		aws.ToString(lu.ServiceName), aws.ToString(lu.Region))
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

// keyLockLease is how long a key's lock holds unrenewed; its holder renews
// it every third of that while it acts, so that the lock of a process that
// died is free again soon.
const keyLockLease = 15 * time.Second

// keyLockWait bounds the wait for a key another process is acting on.
const keyLockWait = 2 * time.Minute

// lockKey waits for keyID's lock (store.LockKey) and returns what gives
// it up.
func (r *Responder) lockKey(ctx context.Context, keyID string) (unlock func(), err error) {
	r.holderOnce.Do(func() {
		var b [12]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		r.holder = hex.EncodeToString(b[:])
	})
	wait := time.NewTimer(keyLockWait)
	defer wait.Stop()
	for {
		ok, err := r.opts.Store.LockKey(ctx, keyID, r.holder, time.Now(), keyLockLease)
		if err != nil {
			return nil, err
		}
		if ok {
			stop := make(chan struct{})
			renewed := make(chan struct{})
			go func() { // renewed while held: an action with its evidence can outlast one lease
				defer close(renewed)
				tick := time.NewTicker(keyLockLease / 3)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						_, _ = r.opts.Store.LockKey(context.WithoutCancel(ctx), keyID, r.holder, time.Now(), keyLockLease)
					}
				}
			}()
			return func() {
				close(stop)
				<-renewed
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				_ = r.opts.Store.UnlockKey(ctx, keyID, r.holder) // a lost unlock runs out with its lease
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wait.C:
			return nil, fmt.Errorf("key %s: another process sharing the state has been acting on it for over %v", keyID, keyLockWait)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// deletedBefore reports whether the audit log has keyID deleted (key IDs
// are never reused: a deleted key is gone for good), and when.
func (r *Responder) deletedBefore(ctx context.Context, keyID string) (time.Time, bool) {
	log, err := r.opts.Store.AuditLog(ctx, keyID)
	if err != nil {
		return time.Time{}, false // act as if not: IAM says what is true
	}
	for _, rec := range log {
		if rec.Action == stepDelete && rec.Outcome == outOK {
			return rec.At, true
		}
	}
	return time.Time{}, false
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

func (r *Responder) lastUsedFirst(keyID string) bool {
	r.lastUsedMu.Lock()
	defer r.lastUsedMu.Unlock()
	return r.lastUsed[keyID]
}

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

func requestIDOf(md middleware.Metadata) string {
	rid, _ := awsmiddleware.GetRequestIDMetadata(md)
	return rid
}
