// Package verify proves whether an AWS key pair is live by signing
// sts:GetCallerIdentity with it. That call needs no permission and works even
// under an explicit deny or AWS's quarantine policy, so it answers for any key.
//
// A verification shows up in the key owner's CloudTrail, so the verifier is
// careful: one call per unique (key ID, secret) pair (in-flight dedupe and a
// cache with a TTL), attempts for one key ID one at a time, a rate limit per
// account, a distinctive User-Agent, and never a call for a honeytoken
// (canary) account.
package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/internal/store"
)

// Status is the outcome of a verification.
type Status string

// The statuses (docs/architecture.md, Verification).
const (
	Live        Status = "live"         // the pair signs requests: the key works
	Invalid     Status = "invalid"      // no such key ID (InvalidClientTokenId)
	WrongSecret Status = "wrong-secret" // the key ID exists; this secret is not its own
	Expired     Status = "expired"      // temporary credentials past their expiry
	Error       Status = "error"        // unknown: network, throttling, 5xx — never "invalid"
	Canary      Status = "canary"       // a honeytoken account: never called, never revoked
	Skipped     Status = "skipped"      // not asked for, or nothing to verify with
	// Revoked is a temporary key whose role sessions the responder revoked.
	// STS still answers GetCallerIdentity for it (an explicit deny does not
	// stop that call), so it would look live again; the verdict holds until
	// the token has expired for certain.
	Revoked Status = "revoked"
	// Exposed is a key AWS's own exposure notice vouches for (AWS Health
	// AWS_RISK_CREDENTIALS_EXPOSED): keyburn did not verify it, having no
	// secret, and acts on it as on a live key.
	Exposed Status = "exposed"
)

// Actionable reports whether the responder may act on a key with this
// status: proved live, or vouched for by AWS.
func (s Status) Actionable() bool { return s == Live || s == Exposed }

// Verdict is a verification result.
type Verdict struct {
	Status    Status
	ARN       string
	Account   string
	UserID    string
	RequestID string
	Err       error         // for Error: what went wrong
	Secret    secret.Secret // the secret that gave this verdict
	Cached    bool          // from the cache, not from a call made now
	// Until, when set, is how long the verdict holds whatever the cache's
	// age limit (Revoked: until the token has expired).
	Until time.Time
	// StoreErr is set when the verdict could not be saved to the cache.
	StoreErr error
}

// STSAPI is the one STS call the verifier makes with a candidate pair.
type STSAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// ErrNoCredentials is AccountOf's error when the verifier has no credentials
// of its own to ask AWS with.
var ErrNoCredentials = errors.New("no AWS credentials of keyburn's own to name the account with (sts:GetAccessKeyInfo)")

// Options configures a Verifier. The zero value verifies against AWS.
type Options struct {
	Endpoint   string // STS endpoint URL; empty: AWS's
	Region     string // default us-east-1
	HTTPClient *http.Client
	UserAgent  string // added to the SDK's; default "keyburn"

	// CanaryAccounts are honeytoken accounts besides the public lists.
	CanaryAccounts []string
	// Credentials are keyburn's own (the SDK's default chain; nil: none).
	// They sign only sts:GetAccessKeyInfo, which names the account of a key
	// ID that does not encode it (AKIAI…, AKIAJ…), so that a canary is
	// recognised before its key is used. That call shows in the caller's
	// CloudTrail, not the key owner's.
	Credentials aws.CredentialsProvider
	// Cache remembers verdicts across runs (nil: in memory only) for
	// CacheTTL (default 1 hour).
	Cache    *store.Store
	CacheTTL time.Duration
	// PerAccountRate limits calls per account per second (default 5).
	PerAccountRate rate.Limit
	// Attempts is how many times a call that failed for a passing reason
	// (network, throttling, 5xx) is made in all (default 3), Backoff the
	// first wait between them (default 200ms, doubling).
	Attempts int
	Backoff  time.Duration

	// PartitionRegions are regions of the other AWS partitions, tried in
	// order when the main one says a key does not exist: a key of aws-cn or
	// aws-us-gov is unknown to the global STS. Default, against AWS itself:
	// cn-north-1 and us-gov-west-1; none with a custom Endpoint.
	PartitionRegions []string

	// testOnlyClient replaces the STS client.
	testOnlyClient func(region, keyID, secret, token string) STSAPI
	// testOnlyAccountOf replaces sts:GetAccessKeyInfo.
	testOnlyAccountOf func(keyID string) (string, error)
}

// Verifier verifies key pairs. It is safe for concurrent use.
type Verifier struct {
	opts    Options
	canary  map[string]bool
	flight  singleflight.Group
	mu      sync.Mutex
	keyMu   map[string]*sync.Mutex
	limits  map[string]*rate.Limiter
	memo    map[string]memoEntry
	owners  map[string]owner // key ID → its account, from sts:GetAccessKeyInfo, or why not
	calls   atomic.Int64
	httpCli *http.Client
}

// New returns a Verifier.
func New(opts Options) *Verifier {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "keyburn"
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = time.Hour
	}
	if opts.PerAccountRate <= 0 {
		opts.PerAccountRate = 5
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 200 * time.Millisecond
	}
	if opts.PartitionRegions == nil && opts.Endpoint == "" && opts.testOnlyClient == nil {
		opts.PartitionRegions = []string{"cn-north-1", "us-gov-west-1"}
	}
	v := &Verifier{opts: opts, canary: map[string]bool{}, keyMu: map[string]*sync.Mutex{},
		limits: map[string]*rate.Limiter{}, memo: map[string]memoEntry{}, owners: map[string]owner{}}
	for _, a := range publicCanaryAccounts {
		v.canary[a] = true
	}
	for _, a := range opts.CanaryAccounts {
		v.canary[a] = true
	}
	v.httpCli = opts.HTTPClient
	if v.httpCli == nil {
		v.httpCli = &http.Client{Timeout: 15 * time.Second}
	}
	return v
}

// Calls returns how many STS calls the verifier has made.
func (v *Verifier) Calls() int64 { return v.calls.Load() }

// IsCanary reports whether account is a honeytoken account.
func (v *Verifier) IsCanary(account string) bool { return v.canary[account] }

// IsPublicCanary reports whether account is one of the publicly known
// honeytoken accounts.
func IsPublicCanary(account string) bool { return slices.Contains(publicCanaryAccounts, account) }

// owner is the answer of sts:GetAccessKeyInfo for one key ID, kept for the
// run: the check stage and Verify both ask, and a failing lookup (no
// credentials, an instance-metadata probe timing out) must not run twice.
type owner struct {
	account string
	err     error
}

// AccountOf names the account a key ID belongs to with sts:GetAccessKeyInfo,
// signed with the verifier's own credentials (never the key's).
func (v *Verifier) AccountOf(ctx context.Context, keyID string) (string, error) {
	v.mu.Lock()
	o, ok := v.owners[keyID]
	v.mu.Unlock()
	if ok {
		return o.account, o.err
	}
	o.account, o.err = v.accountOf(ctx, keyID)
	if ctx.Err() == nil {
		v.mu.Lock()
		v.owners[keyID] = o
		v.mu.Unlock()
	}
	return o.account, o.err
}

func (v *Verifier) accountOf(ctx context.Context, keyID string) (string, error) {
	switch {
	case v.opts.testOnlyAccountOf != nil:
		return v.opts.testOnlyAccountOf(keyID)
	case v.opts.Credentials == nil:
		return "", ErrNoCredentials
	}
	o := sts.Options{Region: v.opts.Region, Credentials: v.opts.Credentials, HTTPClient: v.httpCli,
		APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue(v.opts.UserAgent, "account")}}
	if v.opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(v.opts.Endpoint)
	}
	out, err := sts.New(o).GetAccessKeyInfo(ctx, &sts.GetAccessKeyInfoInput{AccessKeyId: aws.String(keyID)})
	if err != nil {
		return "", fmt.Errorf("sts:GetAccessKeyInfo %s: %w", keyID, err)
	}
	return aws.ToString(out.Account), nil
}

// Verify verifies a key ID with its candidate secrets, best first, until one
// is live. account is the offline-decoded account ("" if unknown); token is
// the session token of temporary credentials.
//
// Canaries are looked for twice: before any call, in the account decoded
// offline or, where the key ID does not encode one, named by AccountOf (a
// key whose account cannot be named is not called: it might be a canary);
// and after, in the account STS answered with. A verdict names the account
// it found, whichever way.
func (v *Verifier) Verify(ctx context.Context, keyID, account string, secrets []secret.Secret, token secret.Secret) Verdict {
	if account == "" {
		acct, err := v.AccountOf(ctx, keyID)
		switch {
		case err == nil:
			account = acct
		case len(secrets) > 0:
			return Verdict{Status: Skipped, Err: fmt.Errorf("not called: the key ID does not encode its account, which might be a canary's, and it could not be named: %w", err)}
		}
	}
	if account != "" && v.canary[account] {
		return Verdict{Status: Canary, Account: account}
	}
	if len(secrets) == 0 {
		return Verdict{Status: Skipped, Account: account}
	}
	var last Verdict
	for _, s := range secrets {
		vd := v.verifyPair(ctx, keyID, account, s, token)
		vd.Secret = s
		if vd.Account == "" {
			vd.Account = account
		}
		switch vd.Status {
		case Live, Invalid, Expired, Canary, Revoked:
			// Invalid: the key ID does not exist, whatever the secret.
			return vd
		}
		// WrongSecret or Error: try the next secret. When one was wrong and
		// the last could not be checked, the answer is unknown (Error).
		last = vd
	}
	return last
}

func (v *Verifier) verifyPair(ctx context.Context, keyID, account string, s secret.Secret, token secret.Secret) Verdict {
	key := keyID + ":" + s.SHA256()
	res, _, _ := v.flight.Do(key, func() (any, error) {
		if vd, ok := v.recall(key); ok {
			return vd, nil
		}
		if c := v.opts.Cache; c != nil {
			if cv, ok, err := c.GetVerdict(ctx, keyID, s.SHA256(), v.opts.CacheTTL); err == nil && ok {
				vd := Verdict{Status: Status(cv.Status), ARN: cv.ARN, Account: cv.Account, UserID: cv.UserID, Until: cv.ValidUntil, Cached: true}
				v.remember(key, vd)
				return vd, nil
			}
		}
		vd := v.call(ctx, keyID, account, s, token)
		if vd.Status != Error {
			vd.StoreErr = v.Record(ctx, keyID, s, vd)
		}
		return vd, nil
	})
	return res.(Verdict)
}

// Fresh verifies one pair with a call made now, whatever the cache holds: a
// responder acts only on a key proven live at the time it acts.
func (v *Verifier) Fresh(ctx context.Context, keyID, account string, s secret.Secret, token secret.Secret) Verdict {
	vd := v.call(ctx, keyID, account, s, token)
	vd.Secret = s
	if vd.Account == "" {
		vd.Account = account
	}
	if vd.Status != Error {
		vd.StoreErr = v.Record(ctx, keyID, s, vd)
	}
	return vd
}

// Record stores a verdict for a pair, as after an action: a key deactivated
// or deleted is no longer live, whatever was cached.
func (v *Verifier) Record(ctx context.Context, keyID string, s secret.Secret, vd Verdict) error {
	vd.Cached, vd.StoreErr = false, nil
	v.remember(keyID+":"+s.SHA256(), vd)
	if c := v.opts.Cache; c != nil {
		return c.PutVerdict(ctx, store.Verdict{KeyID: keyID, SecretSHA256: s.SHA256(), Status: string(vd.Status),
			ARN: vd.ARN, Account: vd.Account, UserID: vd.UserID, CheckedAt: time.Now(), ValidUntil: vd.Until})
	}
	return nil
}

// memoEntry is a verdict held in memory, with when it was made: the memory
// honours the same age limit as the cache, so a long-running receiver
// checks a key again once its verdict is old.
type memoEntry struct {
	vd Verdict
	at time.Time
}

func (v *Verifier) remember(key string, vd Verdict) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.memo[key] = memoEntry{vd: vd, at: time.Now()}
}

func (v *Verifier) recall(key string) (Verdict, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.memo[key]
	switch {
	case !ok:
		return Verdict{}, false
	case !e.vd.Until.IsZero():
		ok = time.Now().Before(e.vd.Until)
	default:
		ok = time.Since(e.at) <= v.opts.CacheTTL
	}
	if !ok {
		delete(v.memo, key)
	}
	return e.vd, ok
}

// keyLock serialises attempts for one key ID: several secrets tried for one
// ID within seconds can give a spurious SignatureDoesNotMatch (an STS quirk
// other scanners have met), so attempts go one at a time.
func (v *Verifier) keyLock(keyID string) *sync.Mutex {
	v.mu.Lock()
	defer v.mu.Unlock()
	m, ok := v.keyMu[keyID]
	if !ok {
		m = &sync.Mutex{}
		v.keyMu[keyID] = m
	}
	return m
}

func (v *Verifier) limiter(account string) *rate.Limiter {
	v.mu.Lock()
	defer v.mu.Unlock()
	l, ok := v.limits[account]
	if !ok {
		l = rate.NewLimiter(v.opts.PerAccountRate, 1)
		v.limits[account] = l
	}
	return l
}

// call makes the STS call in the main region, then in the other partitions
// while the answer is "no such key".
func (v *Verifier) call(ctx context.Context, keyID, account string, s secret.Secret, token secret.Secret) Verdict {
	m := v.keyLock(keyID)
	m.Lock()
	defer m.Unlock()
	vd := v.callIn(ctx, v.opts.Region, keyID, account, s, token)
	for _, region := range v.opts.PartitionRegions {
		if vd.Status != Invalid {
			break
		}
		vd = v.callIn(ctx, region, keyID, account, s, token)
	}
	if vd.Status == Live && v.canary[vd.Account] {
		// The account STS names is a honeytoken's: never act on it.
		vd.Status = Canary
	}
	return vd
}

// callIn makes the STS call in one region, retrying passing failures with
// backoff and a SignatureDoesNotMatch once.
func (v *Verifier) callIn(ctx context.Context, region, keyID, account string, s secret.Secret, token secret.Secret) Verdict {
	client := v.client(region, keyID, s.Reveal(), token.Reveal())
	backoff := v.opts.Backoff
	retriedSig := false
	var vd Verdict
	for attempt := 1; ; attempt++ {
		if err := v.limiter(account).Wait(ctx); err != nil {
			return Verdict{Status: Error, Err: err}
		}
		v.calls.Add(1)
		out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		vd = classify(out, err)
		if vd.RequestID != "" && v.opts.Cache != nil {
			// What keyburn itself did with the key, for the evidence read
			// later: by request ID, which no one else can claim.
			if rerr := v.opts.Cache.AddOwnCall(ctx, store.OwnCall{KeyID: keyID, RequestID: vd.RequestID, At: time.Now()}); rerr != nil {
				vd.StoreErr = rerr
			}
		}
		switch {
		case vd.Status == WrongSecret && !retriedSig:
			retriedSig = true
			attempt-- // the quirk's retry does not count
		case vd.Status == Error && retryable(err) && attempt < v.opts.Attempts:
		default:
			return vd
		}
		select {
		case <-ctx.Done():
			return Verdict{Status: Error, Err: ctx.Err()}
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (v *Verifier) client(region, keyID, sec, token string) STSAPI {
	if v.opts.testOnlyClient != nil {
		return v.opts.testOnlyClient(region, keyID, sec, token)
	}
	o := sts.Options{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(keyID, sec, token),
		HTTPClient:  v.httpCli,
		Retryer:     aws.NopRetryer{}, // the verifier retries itself, and knows which errors to
		APIOptions:  []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue(v.opts.UserAgent, "verify"), addErrorReshape},
	}
	if v.opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(v.opts.Endpoint)
	}
	return sts.New(o)
}

// classify turns the call's result into a verdict, by the error code of
// smithy.APIError, never by message text.
func classify(out *sts.GetCallerIdentityOutput, err error) Verdict {
	if err == nil {
		vd := Verdict{Status: Live, ARN: aws.ToString(out.Arn), Account: aws.ToString(out.Account), UserID: aws.ToString(out.UserId)}
		vd.RequestID, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		return vd
	}
	vd := Verdict{Status: Error, Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		vd.RequestID = re.RequestID
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "InvalidClientTokenId":
			vd.Status, vd.Err = Invalid, nil
		case "SignatureDoesNotMatch":
			vd.Status, vd.Err = WrongSecret, nil
		case "ExpiredToken", "ExpiredTokenException":
			vd.Status, vd.Err = Expired, nil
		}
	}
	return vd
}

// retryable reports whether an error may pass: throttling, a server error,
// or no answer at all.
func retryable(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException",
			"ServiceUnavailable", "InternalFailure", "InternalError":
			return true
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		code := re.HTTPStatusCode()
		// 0: no answer at all; below 400: an answer that could not be
		// read whole (the connection closed after its status line).
		return code == 0 || code < 400 || code >= 500 || code == 429
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		return true
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// ErrorText is a short text for a verdict's error, for reports.
func (vd Verdict) ErrorText() string {
	if vd.Err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(vd.Err, &ae) {
		return fmt.Sprintf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return vd.Err.Error()
}
