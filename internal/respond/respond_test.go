package respond

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	"golang.org/x/time/rate"

	"github.com/keyburn/keyburn/internal/pgtest"
	"github.com/keyburn/keyburn/internal/reach"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// fakeIAM holds user alice's keys and the roles' revoke-sessions policies,
// and records the calls.
type fakeIAM struct {
	mu       sync.Mutex
	keys     map[string]iamtypes.StatusType
	policies map[string]string // role → AWSRevokeOlderSessions document
	calls    []string
	during   func(call string) // when set, runs inside each mutating call
	// root: the keys are the root user's, listed by a call that names no
	// user (a root session); denyUpdate: UpdateAccessKey is AccessDenied,
	// as a task policy without it answers.
	root, denyUpdate bool
	// deleteFails: DeleteAccessKey fails before IAM applies it (the
	// process dies, the network drops the request); updateLost: IAM
	// applies UpdateAccessKey but the answer is lost.
	deleteFails, updateLost error
}

func newFake(status iamtypes.StatusType) *fakeIAM {
	return &fakeIAM{keys: map[string]iamtypes.StatusType{key: status}, policies: map[string]string{}}
}

func (f *fakeIAM) call(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
}

func (f *fakeIAM) callList() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, ",")
}

func (f *fakeIAM) ListAccessKeys(_ context.Context, in *iam.ListAccessKeysInput, _ ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error) {
	f.call("list")
	out := &iam.ListAccessKeysOutput{}
	if f.root != (in.UserName == nil) || !f.root && aws.ToString(in.UserName) != "alice" {
		return out, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, st := range f.keys {
		out.AccessKeyMetadata = append(out.AccessKeyMetadata, iamtypes.AccessKeyMetadata{AccessKeyId: aws.String(id), Status: st})
	}
	return out, nil
}

func (f *fakeIAM) GetAccessKeyLastUsed(context.Context, *iam.GetAccessKeyLastUsedInput, ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error) {
	f.call("last-used")
	return &iam.GetAccessKeyLastUsedOutput{UserName: aws.String("alice"), AccessKeyLastUsed: &iamtypes.AccessKeyLastUsed{}}, nil
}

func (f *fakeIAM) CreateAccessKey(_ context.Context, in *iam.CreateAccessKeyInput, _ ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error) {
	f.call("create")
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("AKIANEWKEY%010d", len(f.keys))
	f.keys[id] = iamtypes.StatusTypeActive
	return &iam.CreateAccessKeyOutput{AccessKey: &iamtypes.AccessKey{AccessKeyId: aws.String(id), UserName: in.UserName,
		SecretAccessKey: aws.String("newsecret/newsecret/newsecret/newsecret0"), Status: iamtypes.StatusTypeActive}}, nil
}

func (f *fakeIAM) UpdateAccessKey(_ context.Context, in *iam.UpdateAccessKeyInput, _ ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error) {
	f.call("update")
	if f.denyUpdate {
		return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform: iam:UpdateAccessKey"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[aws.ToString(in.AccessKeyId)] = in.Status
	if f.updateLost != nil {
		return nil, f.updateLost
	}
	return &iam.UpdateAccessKeyOutput{}, nil
}

func (f *fakeIAM) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	f.call("get-role")
	return &iam.GetRoleOutput{Role: &iamtypes.Role{RoleName: in.RoleName, MaxSessionDuration: aws.Int32(3600)}}, nil
}

func (f *fakeIAM) GetRolePolicy(_ context.Context, in *iam.GetRolePolicyInput, _ ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	f.call("get-role-policy")
	f.mu.Lock()
	defer f.mu.Unlock()
	doc, ok := f.policies[aws.ToString(in.RoleName)]
	if !ok || aws.ToString(in.PolicyName) != revokeSessionsPolicy {
		return nil, &smithy.GenericAPIError{Code: "NoSuchEntity"}
	}
	return &iam.GetRolePolicyOutput{PolicyDocument: aws.String(doc)}, nil
}

func (f *fakeIAM) PutRolePolicy(_ context.Context, in *iam.PutRolePolicyInput, _ ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	f.call("put-role-policy:" + aws.ToString(in.RoleName))
	if !strings.Contains(aws.ToString(in.PolicyDocument), "aws:TokenIssueTime") || aws.ToString(in.PolicyName) != revokeSessionsPolicy {
		return nil, &smithy.GenericAPIError{Code: "MalformedPolicyDocument"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policies[aws.ToString(in.RoleName)] = aws.ToString(in.PolicyDocument)
	return &iam.PutRolePolicyOutput{}, nil
}

func (f *fakeIAM) DeleteAccessKey(_ context.Context, in *iam.DeleteAccessKeyInput, _ ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error) {
	f.call("delete")
	if f.root != (in.UserName == nil) {
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "a root session names no user; an IAM user's key needs one"}
	}
	if f.during != nil {
		f.during("delete")
	}
	if f.deleteFails != nil {
		return nil, f.deleteFails
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.keys[aws.ToString(in.AccessKeyId)]; !ok {
		return nil, &smithy.GenericAPIError{Code: "NoSuchEntity"}
	}
	delete(f.keys, aws.ToString(in.AccessKeyId))
	return &iam.DeleteAccessKeyOutput{}, nil
}

// fakeTrail is CloudTrail's event history: events, in pages of page (all
// at once when 0), or err.
type fakeTrail struct {
	mu     sync.Mutex
	events []cttypes.Event
	page   int
	err    error
	calls  []*cloudtrail.LookupEventsInput
}

func (f *fakeTrail) LookupEvents(_ context.Context, in *cloudtrail.LookupEventsInput, _ ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	if f.err != nil {
		return nil, f.err
	}
	start := 0
	if in.NextToken != nil {
		fmt.Sscan(*in.NextToken, &start)
	}
	end := len(f.events)
	if f.page > 0 {
		end = min(start+f.page, end)
	}
	out := &cloudtrail.LookupEventsOutput{Events: f.events[start:end]}
	if end < len(f.events) {
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

// mutating are the calls --dry-run must never make.
var mutating = []string{"update", "delete", "put-role-policy"}

func mutated(calls string) bool {
	for _, c := range strings.Split(calls, ",") {
		c, _, _ = strings.Cut(c, ":")
		if slices.Contains(mutating, c) {
			return true
		}
	}
	return false
}

const key = "AKIAROSDW5AABZW3VLYZ"

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// responder builds a Responder on a fake IAM, as New would after learning
// who it is: self is its ARN.
func responder(t *testing.T, fake IAMAPI, opts Options, self string) *Responder {
	t.Helper()
	if opts.Store == nil {
		opts.Store = testStore(t)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.testOnlyIAM = func(string) IAMAPI { return fake }
	if opts.testOnlyCloudTrail == nil {
		opts.testOnlyCloudTrail = func(string, string) CloudTrailAPI { return &fakeTrail{} }
	}
	r := &Responder{opts: opts, clients: map[string]IAMAPI{}, creds: map[string]aws.CredentialsProvider{}, lastUsed: map[string]bool{}}
	r.limits.every = rate.Inf // CloudTrail's rate is kept by TestLookupRate
	r.setSelf("AKIASELFSELFSELFSELF", self)
	return r
}

const selfUser = "arn:aws:iam::123456789012:user/responder"

func live(arn string) verify.Verdict {
	return verify.Verdict{Status: verify.Live, ARN: arn, Account: "123456789012"}
}

func TestRespondRails(t *testing.T) {
	alice := live("arn:aws:iam::123456789012:user/alice")
	tests := []struct {
		name   string
		opts   Options
		self   string
		k      Key
		vd     verify.Verdict
		action Action
		reason string
		calls  string
	}{
		{"deletes a live key", Options{Policy: Delete}, selfUser, Key{ID: key}, alice, ActionDeleted, "", "last-used,list,update,list,delete"},
		{"deactivates only", Options{Policy: Deactivate}, selfUser, Key{ID: key}, alice, ActionDeactivated, "", "last-used,list,update"},
		{"dry run", Options{Policy: Delete, DryRun: true}, selfUser, Key{ID: key}, alice, ActionDryRun, "would delete", "last-used,list"},
		{"not live", Options{Policy: Delete}, selfUser, Key{ID: key}, verify.Verdict{Status: verify.Invalid}, ActionSkipped, "not live", ""},
		{"canary verdict", Options{Policy: Delete}, selfUser, Key{ID: key}, verify.Verdict{Status: verify.Canary}, ActionSkipped, "not live (canary)", ""},
		{"revoked verdict", Options{Policy: Delete}, selfUser, Key{ID: "ASIAROSDW5AABZW3VLYZ"}, verify.Verdict{Status: verify.Revoked}, ActionSkipped, "not live (revoked)", ""},
		{"own key", Options{Policy: Delete}, selfUser, Key{ID: "AKIASELFSELFSELFSELF"}, live(selfUser), ActionSkipped, "own key", ""},
		{"own user, another key", Options{Policy: Delete}, selfUser, Key{ID: key}, live(selfUser), ActionSkipped, "own user", ""},
		{"own role's session", Options{Policy: Delete}, "arn:aws:sts::123456789012:assumed-role/keyburn/worker-1", Key{ID: "ASIAROSDW5AABZW3VLYZ"},
			live("arn:aws:sts::123456789012:assumed-role/keyburn/leaked"), ActionSkipped, "own role keyburn", ""},
		{"role_name's session", Options{Policy: Delete, RoleName: "keyburn-responder"}, selfUser, Key{ID: "ASIAROSDW5AABZW3VLYZ"},
			live("arn:aws:sts::210987654321:assumed-role/keyburn-responder/x"), ActionSkipped, "role_name", ""},
		{"same role name in another account", Options{Policy: Delete}, "arn:aws:sts::123456789012:assumed-role/deploy/a", Key{ID: "ASIAROSDW5AABZW3VLYZ"},
			verify.Verdict{Status: verify.Live, ARN: "arn:aws:sts::210987654321:assumed-role/deploy/b", Account: "210987654321"}, ActionRevoked, "", "get-role,get-role-policy,put-role-policy:deploy"},
		{"deny list (STS's account)", Options{Policy: Delete, DenyAccounts: []string{"123456789012"}}, selfUser, Key{ID: key}, alice, ActionSkipped, "deny list", ""},
		{"deny list (decoded account)", Options{Policy: Delete, DenyAccounts: []string{"100000000000"}}, selfUser, Key{ID: key, Account: "100000000000"}, alice, ActionSkipped, "deny list", ""},
		{"allow list", Options{Policy: Delete, AllowAccounts: []string{"999999999999"}}, selfUser, Key{ID: key}, alice, ActionSkipped, "allow list", ""},
		{"canary account named by STS", Options{Policy: Delete, CanaryAccounts: []string{"123456789012"}}, selfUser, Key{ID: key}, alice, ActionSkipped, "canary", ""},
		{"public canary account decoded", Options{Policy: Delete}, selfUser, Key{ID: key, Account: "052310077262"}, alice, ActionSkipped, "canary", ""},
		{"root key: nothing an IAM user can do, and who can", Options{Policy: Delete}, selfUser, Key{ID: key},
			live("arn:aws:iam::123456789012:root"), ActionSkipped, "root user's access key of account 123456789012: keyburn does not act on root keys; the root user deletes it", ""},
		{"not a user", Options{Policy: Delete}, selfUser, Key{ID: key}, live("arn:aws:sts::123456789012:assumed-role/r/s"), ActionSkipped, "not belong to an IAM user", ""},
		{"temporary, not a role", Options{Policy: Delete}, selfUser, Key{ID: "ASIAROSDW5AABZW3VLYZ"}, alice, ActionSkipped, "not a role session", ""},
		{"temporary role session", Options{Policy: Delete}, selfUser, Key{ID: "ASIAROSDW5AABZW3VLYZ"}, live("arn:aws:sts::123456789012:assumed-role/deploy/ci"), ActionRevoked, "", "get-role,get-role-policy,put-role-policy:deploy"},
		{"temporary, dry run", Options{Policy: Delete, DryRun: true}, selfUser, Key{ID: "ASIAROSDW5AABZW3VLYZ"}, live("arn:aws:sts::123456789012:assumed-role/deploy/ci"), ActionDryRun, "revoke role deploy", "get-role,get-role-policy"},
		{"owner mismatch", Options{Policy: Delete}, selfUser, Key{ID: key}, live("arn:aws:iam::123456789012:user/mallory"), ActionFailed, "not among user mallory's", "last-used,list"},
		{"policy off", Options{Policy: Off}, selfUser, Key{ID: key}, alice, ActionNone, "", ""},
		{"below respond_min_severity", Options{Policy: Delete, MinSeverity: "critical"}, selfUser, Key{ID: key, Severity: "high"}, alice,
			ActionSkipped, "severity high is below respond_min_severity critical", ""},
		{"at respond_min_severity", Options{Policy: Delete, MinSeverity: "high"}, selfUser, Key{ID: key, Severity: "high"}, alice,
			ActionDeleted, "", "last-used,list,update,list,delete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(iamtypes.StatusTypeActive)
			r := responder(t, fake, tt.opts, tt.self)
			res := r.Respond(context.Background(), tt.k, tt.vd)
			if res.Action != tt.action || !strings.Contains(res.Reason, tt.reason) || fake.callList() != tt.calls || res.Err != nil {
				t.Errorf("Respond = %q (%q, err %v) after calls %q; want %q (%q) after %q", res.Action, res.Reason, res.Err, fake.callList(), tt.action, tt.reason, tt.calls)
			}
		})
	}
}

// TestRespondIdempotent: an inactive key is not deactivated again, and a
// key the audit log has deleted is left alone: no IAM call at all.
func TestRespondIdempotent(t *testing.T) {
	fake := newFake(iamtypes.StatusTypeInactive)
	r := responder(t, fake, Options{Policy: Delete}, selfUser)
	alice := live("arn:aws:iam::123456789012:user/alice")
	res := r.Respond(context.Background(), Key{ID: key}, alice)
	if res.Action != ActionDeleted || strings.Contains(fake.callList(), "update") {
		t.Errorf("inactive key: %+v after %v", res, fake.callList())
	}
	calls := fake.callList()
	res = r.Respond(context.Background(), Key{ID: key}, alice)
	if res.Action != ActionSkipped || !strings.Contains(res.Reason, "deleted already") || fake.callList() != calls {
		t.Errorf("respond to a key already deleted: %+v after %v; want nothing done", res, fake.callList())
	}
}

// TestSoakAndDueDeletion: with a soak window the key is deactivated and its
// deletion scheduled; the result says when it is due; DeleteDue deletes it
// only once due, and it is off the schedule after.
func TestSoakAndDueDeletion(t *testing.T) {
	fake := newFake(iamtypes.StatusTypeActive)
	clk := &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	r := responder(t, fake, Options{Policy: Delete, Soak: time.Hour, Now: clk.now}, selfUser)
	ctx := context.Background()
	res := r.Respond(ctx, Key{ID: key}, live("arn:aws:iam::123456789012:user/alice"))
	if res.Action != ActionScheduled || fake.keys[key] != iamtypes.StatusTypeInactive || !res.DueAt.Equal(clk.now().Add(time.Hour)) {
		t.Fatalf("with a soak window: %+v, key %v; want scheduled, due at %v", res, fake.keys[key], clk.now().Add(time.Hour))
	}
	if done, err := r.DeleteDue(ctx); err != nil || len(done) != 0 || len(fake.keys) != 1 {
		t.Errorf("DeleteDue before the window ends = %+v, %v; keys %v", done, err, fake.keys)
	}
	clk.advance(time.Hour)
	done, err := r.DeleteDue(ctx)
	if err != nil || len(done) != 1 || done[0].Action != ActionDeleted || len(fake.keys) != 0 {
		t.Fatalf("DeleteDue = %+v, %v; keys left %v", done, err, fake.keys)
	}
	if pending, _ := r.opts.Store.PendingDeletions(ctx); len(pending) != 0 {
		t.Errorf("still scheduled after deletion: %+v", pending)
	}
}

// TestDueDeletionOfReactivatedKey: a key its owner re-activated after the
// deactivation is not deleted; the schedule is cancelled and the audit says
// why. A dry run before that changes nothing and keeps the schedule.
func TestDueDeletionOfReactivatedKey(t *testing.T) {
	fake := newFake(iamtypes.StatusTypeActive)
	clk := &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	st := testStore(t)
	ctx := context.Background()
	r := responder(t, fake, Options{Policy: Delete, Soak: time.Minute, Now: clk.now, Store: st}, selfUser)
	if res := r.Respond(ctx, Key{ID: key}, live("arn:aws:iam::123456789012:user/alice")); res.Action != ActionScheduled {
		t.Fatalf("Respond = %+v", res)
	}
	fake.keys[key] = iamtypes.StatusTypeActive // the owner: "a false alarm"
	clk.advance(time.Hour)

	dry := responder(t, fake, Options{Policy: Delete, DryRun: true, Now: clk.now, Store: st}, selfUser)
	before := fake.callList()
	done, err := dry.DeleteDue(ctx)
	if err != nil || len(done) != 1 || done[0].Action != ActionDryRun || mutated(strings.TrimPrefix(fake.callList(), before)) {
		t.Fatalf("dry-run DeleteDue = %+v, %v; calls %s", done, err, fake.callList())
	}
	if pending, _ := st.PendingDeletions(ctx); len(pending) != 1 {
		t.Errorf("a dry run changed the schedule: %+v", pending)
	}

	done, err = r.DeleteDue(ctx)
	if err != nil || len(done) != 1 || done[0].Action != ActionCancelled || fake.keys[key] != iamtypes.StatusTypeActive {
		t.Fatalf("DeleteDue = %+v, %v; key %v", done, err, fake.keys[key])
	}
	if strings.Contains(fake.callList(), "delete") {
		t.Errorf("an Active key got a delete call: %s", fake.callList())
	}
	if pending, _ := st.PendingDeletions(ctx); len(pending) != 0 {
		t.Errorf("the schedule was kept: %+v", pending)
	}
	log, _ := st.AuditLog(ctx, key)
	last := log[len(log)-1]
	if last.Action != stepDelete || last.Outcome != outCancelled || !strings.Contains(last.Detail, "Active again") {
		t.Errorf("last audit record = %+v, want the cancelled deletion and why", last)
	}
}

// TestCancelledDuringMutation: a shutdown (the context cancelled) that
// arrives while IAM deactivates or deletes a key does not lose the record
// of what was done: the outcome is written and the schedule updated,
// whatever the context says by then.
func TestCancelledDuringMutation(t *testing.T) {
	fake := newFake(iamtypes.StatusTypeActive)
	clk := &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	st := testStore(t)
	r := responder(t, fake, Options{Policy: Delete, Soak: time.Minute, Now: clk.now, Store: st}, selfUser)
	if res := r.Respond(context.Background(), Key{ID: key}, live("arn:aws:iam::123456789012:user/alice")); res.Action != ActionScheduled {
		t.Fatalf("Respond = %+v", res)
	}
	clk.advance(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	fake.during = func(string) { cancel() }
	done, _ := r.DeleteDue(ctx)
	if len(done) != 1 || done[0].Action != ActionDeleted || done[0].Err != nil {
		t.Fatalf("DeleteDue = %+v, want the deletion recorded without error", done)
	}
	if pending, _ := st.PendingDeletions(context.Background()); len(pending) != 0 {
		t.Errorf("the deleted key is still scheduled: %+v", pending)
	}
	log, _ := st.AuditLog(context.Background(), key)
	if last := log[len(log)-1]; last.Action != stepDelete || last.Outcome != outOK {
		t.Errorf("last audit record = %+v, want the delete's outcome", last)
	}
}

// TestAuditFailureFailsClosed: when the audit log cannot be written, no IAM
// key is changed.
func TestAuditFailureFailsClosed(t *testing.T) {
	for _, failOn := range []string{"owner-check", "deactivate", "delete", "revoke-sessions", "assume-root"} {
		t.Run(failOn, func(t *testing.T) {
			fake := newFake(iamtypes.StatusTypeActive)
			st := testStore(t)
			if _, err := st.DB().Exec(`CREATE TRIGGER full BEFORE INSERT ON audit WHEN NEW.action = '` + failOn +
				`' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
				t.Fatal(err)
			}
			opts := Options{Policy: Delete, Store: st, RootAccess: true, testOnlyRootSession: func(string) (IAMAPI, error) {
				fake.call("assume-root")
				return fake, nil
			}}
			r := responder(t, fake, opts, selfUser)
			k, vd := Key{ID: key}, live("arn:aws:iam::123456789012:user/alice")
			switch failOn {
			case "revoke-sessions":
				k, vd = Key{ID: "ASIAROSDW5AABZW3VLYZ"}, live("arn:aws:sts::123456789012:assumed-role/deploy/ci")
			case "assume-root":
				fake.root = true
				vd = live("arn:aws:iam::123456789012:root")
			}
			res := r.Respond(context.Background(), k, vd)
			calls := fake.callList()
			var wantCalls []string
			switch failOn {
			case "owner-check", "deactivate":
				wantCalls = nil // nothing may change
			case "assume-root":
				wantCalls = nil
				if strings.Contains(calls, "assume-root") {
					t.Errorf("a root session was opened with no record of it: %s", calls)
				}
			case "delete":
				wantCalls = []string{"update"} // deactivated, never deleted
			}
			var made []string
			for _, c := range strings.Split(calls, ",") {
				c, _, _ = strings.Cut(c, ":")
				if slices.Contains(mutating, c) {
					made = append(made, c)
				}
			}
			if !slices.Equal(made, wantCalls) || res.Err == nil || !strings.Contains(res.Reason+res.Err.Error(), "disk is full") {
				t.Errorf("audit failing on %s: %+v; mutating calls %v, want %v", failOn, res, made, wantCalls)
			}
			if res.Action == ActionDeleted || res.Action == ActionRevoked {
				t.Errorf("audit failing on %s: reported %q", failOn, res.Action)
			}
		})
	}
}

// TestRevokeOnce: a temporary key's role sessions are revoked once; the
// same key found again is not revoked again while the revocation holds,
// and a deny already on the role that covers the token is not rewritten.
func TestRevokeOnce(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	session := live("arn:aws:sts::123456789012:assumed-role/deploy/ci")
	asia := Key{ID: "ASIAROSDW5AABZW3VLYZ"}

	fake := newFake(iamtypes.StatusTypeActive)
	r := responder(t, fake, Options{Policy: Delete, Now: clk.now}, selfUser)
	first := r.Respond(ctx, asia, session)
	clk.advance(10 * time.Minute)
	second := r.Respond(ctx, asia, session)
	if first.Action != ActionRevoked || !first.Until.Equal(first.At.Add(time.Hour)) {
		t.Errorf("first: %+v, want revoked until an hour (the role's longest session) later", first)
	}
	if second.Action != ActionRevoked || !strings.Contains(second.Reason, "not revoked again") || strings.Count(fake.callList(), "put-role-policy") != 1 {
		t.Errorf("second: %+v after calls %s; want one PutRolePolicy in all", second, fake.callList())
	}
	// Past the token's end, a key still answering live is revoked anew.
	clk.advance(2 * time.Hour)
	if third := r.Respond(ctx, asia, session); third.Action != ActionRevoked || strings.Count(fake.callList(), "put-role-policy") != 2 {
		t.Errorf("after the revocation ended: %+v, calls %s", third, fake.callList())
	}

	// An existing deny dated after keyburn first checked the key covers it.
	st := testStore(t)
	firstSeen := clk.now().Add(-time.Hour)
	if err := st.PutVerdict(ctx, store.Verdict{KeyID: asia.ID, SecretSHA256: "ab", Status: "live", CheckedAt: firstSeen}); err != nil {
		t.Fatal(err)
	}
	fake2 := newFake(iamtypes.StatusTypeActive)
	fake2.policies["deploy"] = url.QueryEscape(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],` +
		`"Condition":{"DateLessThan":{"aws:TokenIssueTime":"` + clk.now().Add(-time.Minute).UTC().Format(time.RFC3339) + `"}}}]}`)
	r2 := responder(t, fake2, Options{Policy: Delete, Now: clk.now, Store: st}, selfUser)
	if res := r2.Respond(ctx, asia, session); res.Action != ActionRevoked || !strings.Contains(res.Reason, "existing deny") || strings.Contains(fake2.callList(), "put-role-policy") {
		t.Errorf("covered by an existing deny: %+v after %s", res, fake2.callList())
	}
	// A deny older than the first check does not cover the token.
	fake3 := newFake(iamtypes.StatusTypeActive)
	fake3.policies["deploy"] = `{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"` +
		firstSeen.Add(-time.Minute).UTC().Format(time.RFC3339) + `"}}}}`
	st3 := testStore(t)
	st3.PutVerdict(ctx, store.Verdict{KeyID: asia.ID, SecretSHA256: "ab", Status: "live", CheckedAt: firstSeen})
	r3 := responder(t, fake3, Options{Policy: Delete, Now: clk.now, Store: st3}, selfUser)
	if res := r3.Respond(ctx, asia, session); res.Action != ActionRevoked || !strings.Contains(fake3.callList(), "put-role-policy") {
		t.Errorf("an older deny: %+v after %s; want a new revocation", res, fake3.callList())
	}
}

// TestRecordLastUsedFirst: the last use is read before verification, and
// Respond does not read it again.
func TestRecordLastUsedFirst(t *testing.T) {
	fake := newFake(iamtypes.StatusTypeActive)
	r := responder(t, fake, Options{Policy: Delete}, selfUser)
	ctx := context.Background()
	k := Key{ID: key, Account: "123456789012"}
	if ok, err := r.RecordLastUsed(ctx, k); !ok || err != nil {
		t.Fatalf("RecordLastUsed = %v, %v", ok, err)
	}
	r.Respond(ctx, k, live("arn:aws:iam::123456789012:user/alice"))
	if got := fake.callList(); got != "last-used,list,update,list,delete" {
		t.Errorf("calls = %s", got)
	}
	log, _ := r.opts.Store.AuditLog(ctx, key)
	if len(log) == 0 || log[0].Action != stepLastUsed || !strings.Contains(log[0].Detail, "before verification") || log[0].UserName != "alice" {
		t.Errorf("first audit record = %+v", log[0])
	}
	// Another account with no role to act through: nothing to read with.
	if ok, _ := r.RecordLastUsed(ctx, Key{ID: key, Account: "210987654321"}); ok {
		t.Errorf("recorded the last use of a key in an account the responder has no credentials in")
	}
}

func TestParseARN(t *testing.T) {
	tests := map[string]principal{
		"arn:aws:iam::123456789012:user/alice":                 {account: "123456789012", user: "alice"},
		"arn:aws:iam::123456789012:user/team/ops/bob":          {account: "123456789012", user: "bob"},
		"arn:aws-us-gov:iam::123456789012:user/carol":          {account: "123456789012", user: "carol"},
		"arn:aws:sts::123456789012:assumed-role/deploy/ci-run": {account: "123456789012", role: "deploy"},
		"arn:aws:iam::123456789012:root":                       {account: "123456789012", root: true},
		"arn:aws:sts::123456789012:federated-user/dave":        {account: "123456789012"},
		"not an arn": {},
	}
	for arn, want := range tests {
		if got := parseARN(arn); got != want {
			t.Errorf("parseARN(%q) = %+v, want %+v", arn, got, want)
		}
	}
}

func TestDeniedBefore(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		doc  string
		ok   bool
	}{
		{"as keyburn writes it", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-28T10:00:00Z"}}}]}`, true},
		{"URL-encoded, as IAM returns it", `%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Deny%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%2C%22Condition%22%3A%7B%22DateLessThan%22%3A%7B%22aws%3ATokenIssueTime%22%3A%222026-11-28T10%3A00%3A00Z%22%7D%7D%7D%5D%7D`, true},
		{"one statement, not a list", `{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-28T10:00:00Z"}}}}`, true},
		{"the latest of two", `{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2020-01-01T00:00:00Z"}}},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-28T10:00:00Z"}}}]}`, true},
		{"an allow is no deny", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-28T10:00:00Z"}}}]}`, false},
		{"denies only some actions", `{"Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-28T10:00:00Z"}}}]}`, false},
		{"no condition", `{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`, false},
		{"not JSON", `Deny *`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		got, ok := DeniedBefore(tt.doc)
		if ok != tt.ok || (ok && !got.Equal(at)) {
			t.Errorf("%s: DeniedBefore = %v, %v; want %v, %v", tt.name, got, ok, at, tt.ok)
		}
	}
}

func FuzzDeniedBefore(f *testing.F) {
	f.Add(`{"Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-28T10:00:00Z"}}}]}`)
	f.Add(`%7B%22Statement%22%3A%7B%7D%7D`)
	f.Add(`{"Statement":{"Effect":"Deny"}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		got, ok := DeniedBefore(doc)
		if ok != !got.IsZero() {
			t.Errorf("DeniedBefore(%q) = %v, %v: ok must say whether a time was found", doc, got, ok)
		}
	})
}

// TestRootKeyRails: a live root key is deleted only with centralized root
// access configured, through a root session whose calls name no user; at
// once, even when the task policy does not let it be deactivated first;
// and under the same rails as any key.
func TestRootKeyRails(t *testing.T) {
	root := live("arn:aws:iam::123456789012:root")
	tests := []struct {
		name       string
		opts       Options
		self       string
		denyUpdate bool
		noKey      bool // the root user has no such key
		assumeErr  bool // sts:AssumeRoot fails
		action     Action
		reason     string
		calls      string
	}{
		{name: "not configured: who can, and how", opts: Options{Policy: Delete}, self: selfUser,
			action: ActionSkipped, reason: "aws sts assume-root --target-principal 123456789012", calls: ""},
		{name: "deleted through a root session", opts: Options{Policy: Delete, RootAccess: true}, self: selfUser,
			action: ActionDeleted, calls: "assume-root,list,update,list,delete"},
		{name: "deactivated only", opts: Options{Policy: Deactivate, RootAccess: true}, self: selfUser,
			action: ActionDeactivated, calls: "assume-root,list,update"},
		{name: "task policy denies deactivation: deleted anyway", opts: Options{Policy: Delete, RootAccess: true}, self: selfUser, denyUpdate: true,
			action: ActionDeleted, reason: "could not be deactivated first (AccessDenied", calls: "assume-root,list,update,list,list,delete"},
		{name: "task policy denies deactivation, policy deactivate", opts: Options{Policy: Deactivate, RootAccess: true}, self: selfUser, denyUpdate: true,
			action: ActionFailed, reason: "set policy delete", calls: "assume-root,list,update,list"},
		{name: "no soak for a root key", opts: Options{Policy: Delete, RootAccess: true, Soak: 24 * time.Hour}, self: selfUser,
			action: ActionDeleted, calls: "assume-root,list,update,list,delete"},
		{name: "dry run assumes nothing", opts: Options{Policy: Delete, RootAccess: true, DryRun: true}, self: selfUser,
			action: ActionDryRun, reason: "would assume root in account 123456789012", calls: ""},
		{name: "deny list", opts: Options{Policy: Delete, RootAccess: true, DenyAccounts: []string{"123456789012"}}, self: selfUser,
			action: ActionSkipped, reason: "deny list", calls: ""},
		{name: "allow list", opts: Options{Policy: Delete, RootAccess: true, AllowAccounts: []string{"999999999999"}}, self: selfUser,
			action: ActionSkipped, reason: "allow list", calls: ""},
		{name: "canary account", opts: Options{Policy: Delete, RootAccess: true, CanaryAccounts: []string{"123456789012"}}, self: selfUser,
			action: ActionSkipped, reason: "canary", calls: ""},
		{name: "the responder's own root", opts: Options{Policy: Delete, RootAccess: true}, self: "arn:aws:iam::123456789012:root",
			action: ActionSkipped, reason: "own root user", calls: ""},
		{name: "not among the root user's keys", opts: Options{Policy: Delete, RootAccess: true}, self: selfUser, noKey: true,
			action: ActionFailed, reason: "not among the root user's keys of account 123456789012", calls: "assume-root,list"},
		{name: "no root session", opts: Options{Policy: Delete, RootAccess: true}, self: selfUser, assumeErr: true,
			action: ActionFailed, reason: "no root session in account 123456789012", calls: "assume-root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(iamtypes.StatusTypeActive)
			fake.root, fake.denyUpdate = true, tt.denyUpdate
			if tt.noKey {
				delete(fake.keys, key)
			}
			tt.opts.testOnlyRootSession = func(account string) (IAMAPI, error) {
				fake.call("assume-root")
				if account != "123456789012" {
					t.Errorf("root session in account %q, want the key's", account)
				}
				if tt.assumeErr {
					return nil, &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform: sts:AssumeRoot"}
				}
				return fake, nil
			}
			r := responder(t, fake, tt.opts, tt.self)
			res := r.Respond(context.Background(), Key{ID: key}, root)
			if res.Action != tt.action || !strings.Contains(res.Reason, tt.reason) || fake.callList() != tt.calls {
				t.Errorf("Respond = %q (%q, err %v) after calls %q; want %q (%q) after %q", res.Action, res.Reason, res.Err, fake.callList(), tt.action, tt.reason, tt.calls)
			}
			if tt.opts.DryRun && mutated(fake.callList()) {
				t.Errorf("dry run made mutating calls: %s", fake.callList())
			}
			if res.Action == ActionDeleted && len(fake.keys) != 0 {
				t.Errorf("reported deleted, but the root user still has %v", fake.keys)
			}
			if pending, _ := r.opts.Store.PendingDeletions(context.Background()); len(pending) != 0 {
				t.Errorf("a root key's deletion was scheduled: %+v", pending)
			}
		})
	}
}

// TestEvidence: after acting, CloudTrail's event history of the key is
// read from its leak, and what limits it is said: no credentials in the
// account, no permission, a leak older than the 90-day history, an
// unknown leak time, more events than keyburn reads. Nothing is read when
// nothing was done, nor under a dry run.
func TestEvidence(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	ev := func(ip string, at time.Time) cttypes.Event {
		doc := fmt.Sprintf(`{"sourceIPAddress":%q,"awsRegion":"us-east-1","userAgent":"aws-cli/2","userIdentity":{"accessKeyId":%q}}`, ip, key)
		return cttypes.Event{EventName: aws.String("ListBuckets"), EventTime: aws.Time(at), CloudTrailEvent: aws.String(doc)}
	}
	many := make([]cttypes.Event, 0, 50*evidencePages+1)
	for i := range cap(many) {
		many = append(many, ev("203.0.113.9", now.Add(-time.Duration(i)*time.Minute)))
	}
	alice := live("arn:aws:iam::123456789012:user/alice")
	tests := []struct {
		name    string
		opts    Options
		vd      verify.Verdict
		leaked  time.Time
		trail   *fakeTrail
		lookups int
		want    string // in the summary; "" when no evidence
		from    time.Time
		without string // not in the summary
	}{
		{name: "read", opts: Options{Policy: Delete}, vd: alice, leaked: now.Add(-time.Hour),
			trail:   &fakeTrail{events: []cttypes.Event{ev("203.0.113.9", now.Add(-30*time.Minute)), ev("198.51.100.4", now.Add(-20*time.Minute))}, page: 1},
			lookups: 2, want: "2 call(s) by the key, first 2026-11-28T09:30:00Z, last 2026-11-28T09:40:00Z; from 198.51.100.4 (1), 203.0.113.9 (1)",
			from: now.Add(-time.Hour)},
		{name: "no calls", opts: Options{Policy: Delete}, vd: alice, leaked: now.Add(-time.Hour), trail: &fakeTrail{},
			lookups: 1, want: "no calls by the key in CloudTrail (us-east-1, 2026-11-28T09:00:00Z to 2026-11-28T10:00:00Z)", from: now.Add(-time.Hour)},
		{name: "older than 90 days", opts: Options{Policy: Delete}, vd: alice, leaked: now.Add(-200 * 24 * time.Hour), trail: &fakeTrail{},
			lookups: 1, want: "older than CloudTrail's 90-day event history", from: now.Add(-eventHistory)},
		{name: "leak time unknown", opts: Options{Policy: Delete}, vd: alice, trail: &fakeTrail{},
			lookups: 1, want: "the leak time is unknown", from: now.Add(-eventHistory)},
		{name: "no permission", opts: Options{Policy: Delete}, vd: alice, leaked: now.Add(-time.Hour),
			trail:   &fakeTrail{err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: cloudtrail:LookupEvents"}},
			lookups: 1, want: "no evidence read: us-east-1: no permission (cloudtrail:LookupEvents is denied", from: now.Add(-time.Hour),
			without: "15 minutes"},
		{name: "server error", opts: Options{Policy: Delete}, vd: alice, leaked: now.Add(-time.Hour),
			trail:   &fakeTrail{err: &smithy.GenericAPIError{Code: "InternalFailure", Message: "HTTP 500"}},
			lookups: 1, want: "no evidence read: us-east-1:", from: now.Add(-time.Hour), without: "15 minutes"},
		{name: "delivery delay said of what was read", opts: Options{Policy: Delete}, vd: alice, leaked: now.Add(-time.Hour), trail: &fakeTrail{},
			lookups: 1, want: "CloudTrail delivers events within about 15 minutes", from: now.Add(-time.Hour)},
		{name: "more than keyburn reads", opts: Options{Policy: Deactivate}, vd: alice, leaked: now.Add(-90 * 24 * time.Hour),
			trail: &fakeTrail{events: many, page: 50}, lookups: evidencePages, want: "1000 call(s) by the key", from: now.Add(-90 * 24 * time.Hour)},
		{name: "two regions", opts: Options{Policy: Delete, EvidenceRegions: []string{"us-east-1", "eu-west-1"}}, vd: alice, leaked: now.Add(-time.Hour),
			trail: &fakeTrail{}, lookups: 2, want: "(us-east-1,eu-west-1,", from: now.Add(-time.Hour)},
		{name: "another account, no role_name", opts: Options{Policy: Delete}, leaked: now.Add(-time.Hour),
			vd:    verify.Verdict{Status: verify.Live, ARN: "arn:aws:iam::210987654321:user/alice", Account: "210987654321"},
			trail: nil, want: "no evidence read: keyburn has no credentials in account 210987654321", from: now.Add(-time.Hour)},
		{name: "dry run reads nothing", opts: Options{Policy: Delete, DryRun: true}, vd: alice, leaked: now.Add(-time.Hour), trail: &fakeTrail{}},
		{name: "nothing done, nothing read", opts: Options{Policy: Delete, DenyAccounts: []string{"123456789012"}}, vd: alice, trail: &fakeTrail{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(iamtypes.StatusTypeActive)
			tt.opts.Now = func() time.Time { return now }
			if tt.trail != nil {
				tt.opts.testOnlyCloudTrail = func(account, region string) CloudTrailAPI { return tt.trail }
			}
			r := responder(t, fake, tt.opts, selfUser)
			if tt.trail == nil {
				r.opts.testOnlyCloudTrail = nil // the responder's own credentials: none in that account
			}
			res := r.Respond(context.Background(), Key{ID: key, LeakedAt: tt.leaked}, tt.vd)
			if tt.trail != nil && len(tt.trail.calls) != tt.lookups {
				t.Errorf("%d LookupEvents calls, want %d", len(tt.trail.calls), tt.lookups)
			}
			if tt.want == "" {
				if res.Evidence != nil {
					t.Errorf("evidence read after %q: %s", res.Action, res.Evidence.Summary())
				}
				return
			}
			if res.Evidence == nil {
				t.Fatalf("no evidence after %q (%s)", res.Action, res.Reason)
			}
			if got := res.Evidence.Summary(); tt.without != "" && strings.Contains(got, tt.without) {
				t.Errorf("evidence says %q: %s", tt.without, got)
			}
			if got := res.Evidence.Summary(); !strings.Contains(got, tt.want) || !res.Evidence.From.Equal(tt.from) {
				t.Errorf("evidence from %v: %s\nwant from %v: …%s…", res.Evidence.From, got, tt.from, tt.want)
			}
			for _, c := range tt.trail.callsOrNil() {
				if a := c.LookupAttributes; len(a) != 1 || aws.ToString(a[0].AttributeValue) != key || !aws.ToTime(c.StartTime).Equal(tt.from) {
					t.Errorf("LookupEvents by %+v from %v, want by the key from %v", a, aws.ToTime(c.StartTime), tt.from)
				}
			}
			log, _ := r.opts.Store.AuditLog(context.Background(), key)
			if last := log[len(log)-1]; last.Action != stepEvidence || last.Detail != res.Evidence.Summary() {
				t.Errorf("last audit record %+v, want the evidence", last)
			}
		})
	}
}

func (f *fakeTrail) callsOrNil() []*cloudtrail.LookupEventsInput {
	if f == nil {
		return nil
	}
	return f.calls
}

// TestLookupRate: LookupEvents calls for one account and region keep to
// CloudTrail's 2 per second, across keys; other accounts have their own
// allowance. Measured on the limiter's own clock (its reservations), not
// the wall's.
func TestLookupRate(t *testing.T) {
	var l limiters
	start := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	a := l.get("123456789012", "us-east-1")
	if l.get("123456789012", "us-east-1") != a {
		t.Fatal("a second limiter for the same account and region")
	}
	var last time.Duration
	for i := range 5 {
		last = a.ReserveN(start, 1).DelayFrom(start)
		if want := time.Duration(i) * 500 * time.Millisecond; last != want {
			t.Errorf("call %d waits %v, want %v", i+1, last, want)
		}
	}
	if d := l.get("210987654321", "us-east-1").ReserveN(start, 1).DelayFrom(start); d != 0 {
		t.Errorf("another account waits %v behind this one's calls", d)
	}
}

// TestReachReadsAreRateLimited: Reach's IAM reads wait for their
// account's allowance: a read that would have to wait past its deadline
// is refused at once, before anything is sent.
func TestReachReadsAreRateLimited(t *testing.T) {
	var sent atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent.Add(1) }))
	defer srv.Close()
	l := limited{base: http.DefaultTransport, lim: rate.NewLimiter(1, 1)}
	get := func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := l.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := get(ctx); err == nil || !strings.Contains(err.Error(), "would exceed context deadline") || sent.Load() != 1 {
		t.Errorf("a second read within the second: %v, %d sent; want it refused, unsent", err, sent.Load())
	}
}

// TestReachKeepsToTheRails: a key in an account the rails keep keyburn out
// of (deny list, allow list, canary) has its reach left unread, as its
// response is left undone; elsewhere it is read and recorded.
func TestReachKeepsToTheRails(t *testing.T) {
	alice := live("arn:aws:iam::123456789012:user/alice")
	for _, tt := range []struct {
		name string
		opts Options
		read bool
	}{
		{"read", Options{Policy: Delete}, true},
		{"deny list", Options{Policy: Delete, DenyAccounts: []string{"123456789012"}}, false},
		{"allow list", Options{Policy: Delete, AllowAccounts: []string{"999999999999"}}, false},
		{"canary", Options{Policy: Delete, CanaryAccounts: []string{"123456789012"}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reads := 0
			tt.opts.testOnlyReach = func(string) reach.IAM { reads++; return nil }
			r := responder(t, newFake(iamtypes.StatusTypeActive), tt.opts, selfUser)
			if !tt.read {
				if got, err := r.Reach(context.Background(), Key{ID: key}, alice); got != nil || err != nil || reads != 0 {
					t.Errorf("Reach = %+v, %v after %d reads; want nothing read", got, err, reads)
				}
				return
			}
			r.opts.testOnlyReach = nil
			r.opts.RoleName = "" // own account: its own credentials
			got, err := r.Reach(context.Background(), Key{ID: key}, live("arn:aws:iam::123456789012:root"))
			log, _ := r.opts.Store.AuditLog(context.Background(), key)
			if err != nil || got == nil || got.Level != "admin" || len(log) != 1 || log[0].Action != stepReach {
				t.Errorf("Reach of a root key = %+v, %v; audit %+v", got, err, log)
			}
		})
	}
}

// TestIntentBeforeTheFirstChange: with --respond=delete and no soak, the
// deletion is stored before the key is deactivated. A run whose delete
// never reaches IAM leaves the key Inactive and the deletion due; the next
// run carries it out whatever it finds. A run stopped after storing the
// intent but before deactivating is finished too; and only a delete policy
// deletes.
func TestIntentBeforeTheFirstChange(t *testing.T) {
	ctx := context.Background()
	fake := newFake(iamtypes.StatusTypeActive)
	fake.deleteFails = errors.New("connection reset by peer")
	st := testStore(t)
	clk := &clock{t: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	r := responder(t, fake, Options{Policy: Delete, Store: st, Now: clk.now}, selfUser)
	res := r.Respond(ctx, Key{ID: key}, live("arn:aws:iam::123456789012:user/alice"))
	if res.Action != ActionFailed || fake.keys[key] != iamtypes.StatusTypeInactive {
		t.Fatalf("Respond = %+v, key %v; want failed, the key Inactive", res, fake.keys[key])
	}
	if pending, _ := st.PendingDeletions(ctx); len(pending) != 1 || pending[0].KeyID != key {
		t.Fatalf("pending deletions %+v, want the key's, due now", pending)
	}
	log, _ := st.AuditLog(ctx, key)
	if log[len(log)-1].Action != stepDelete || log[len(log)-1].Outcome != outFailed {
		t.Errorf("last record %+v, want the failed delete", log[len(log)-1])
	}
	// A deactivate run does not carry it out: only a delete policy deletes.
	clk.advance(time.Second) // due times are whole seconds, rounded up
	deact := responder(t, fake, Options{Policy: Deactivate, Store: st, Now: clk.now}, selfUser)
	if done, err := deact.DeleteDue(ctx); err != nil || len(done) != 0 || len(fake.keys) != 1 {
		t.Fatalf("a deactivate run's DeleteDue = %+v, %v; keys %v; want nothing done", done, err, fake.keys)
	}
	// The next delete run, which finds nothing live, deletes it.
	fake.deleteFails = nil
	done, err := r.DeleteDue(ctx)
	if err != nil || len(done) != 1 || done[0].Action != ActionDeleted || len(fake.keys) != 0 {
		t.Fatalf("the next run's DeleteDue = %+v, %v; keys %v", done, err, fake.keys)
	}
	if pending, _ := st.PendingDeletions(ctx); len(pending) != 0 {
		t.Errorf("still pending after the deletion: %+v", pending)
	}

	// Stopped between storing the intent and deactivating: still Active,
	// no deactivation recorded; the next run deactivates and deletes.
	fake2 := newFake(iamtypes.StatusTypeActive)
	st2 := testStore(t)
	at := time.Now().Add(-time.Hour)
	if _, err := st2.ScheduleDeletion(ctx, store.Deletion{KeyID: key, Account: "123456789012", UserName: "alice", DueAt: at, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	r2 := responder(t, fake2, Options{Policy: Delete, Store: st2}, selfUser)
	done, err = r2.DeleteDue(ctx)
	if err != nil || len(done) != 1 || done[0].Action != ActionDeleted || len(fake2.keys) != 0 || !strings.Contains(fake2.callList(), "update") {
		t.Fatalf("an intent never begun: %+v, %v; calls %s", done, err, fake2.callList())
	}

	// A dry run stores no intent and changes nothing.
	fake4 := newFake(iamtypes.StatusTypeActive)
	st4 := testStore(t)
	r4 := responder(t, fake4, Options{Policy: Delete, DryRun: true, Store: st4}, selfUser)
	if res := r4.Respond(ctx, Key{ID: key}, live("arn:aws:iam::123456789012:user/alice")); res.Action != ActionDryRun || mutated(fake4.callList()) {
		t.Errorf("a dry run: %+v, calls %s", res, fake4.callList())
	}
	if pending, _ := st4.PendingDeletions(ctx); len(pending) != 0 {
		t.Errorf("a dry run stored a deletion: %+v", pending)
	}

	// The intent cannot be stored: nothing is done.
	fake3 := newFake(iamtypes.StatusTypeActive)
	st3 := testStore(t)
	r3 := responder(t, fake3, Options{Policy: Delete, Store: st3}, selfUser)
	st3.DB().Exec(`DROP TABLE due_deletions`)
	res = r3.Respond(ctx, Key{ID: key}, live("arn:aws:iam::123456789012:user/alice"))
	if res.Action != ActionFailed || mutated(fake3.callList()) || fake3.keys[key] != iamtypes.StatusTypeActive {
		t.Errorf("with no place for the intent: %+v, calls %s; want nothing changed", res, fake3.callList())
	}
}

// TestOutcomeFromAReread: IAM applies the deactivation but the answer is
// lost; the key is read again and the record says what it is (ok, with
// the error kept in the detail), and the deletion goes on.
func TestOutcomeFromAReread(t *testing.T) {
	ctx := context.Background()
	fake := newFake(iamtypes.StatusTypeActive)
	fake.updateLost = errors.New("use of closed network connection")
	st := testStore(t)
	r := responder(t, fake, Options{Policy: Delete, Store: st}, selfUser)
	res := r.Respond(ctx, Key{ID: key}, live("arn:aws:iam::123456789012:user/alice"))
	if res.Action != ActionDeleted || len(fake.keys) != 0 {
		t.Fatalf("Respond = %+v, keys %v; want deleted", res, fake.keys)
	}
	log, _ := st.AuditLog(ctx, key)
	found := false
	for _, rec := range log {
		if rec.Action == stepDeactivate && rec.Outcome == outOK && strings.Contains(rec.Detail, "a re-read shows the key Inactive") {
			found = true
		}
		if rec.Action == stepDeactivate && rec.Outcome == outFailed {
			t.Errorf("a failed deactivation was recorded for one IAM applied: %+v", rec)
		}
	}
	if !found {
		t.Errorf("no deactivation recorded from the re-read: %+v", log)
	}
}

func TestTrustedPrincipals(t *testing.T) {
	tests := []struct{ doc, want string }{
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:user/a"},"Action":"sts:AssumeRole"}]}`, "arn:aws:iam::1:user/a"},
		{`{"Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:user/a","arn:aws:iam::1:role/r"]}}}`, "arn:aws:iam::1:user/a,arn:aws:iam::1:role/r"},
		{url.QueryEscape(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:user/enc"}}]}`), "arn:aws:iam::1:user/enc"},
		{`{"Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::1:user/a"}},{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"}}]}`, ""},
		{`not json`, ""},
	}
	for _, tt := range tests {
		if got := strings.Join(trustedPrincipals(tt.doc), ","); got != tt.want {
			t.Errorf("trustedPrincipals(%s) = %q, want %q", tt.doc, got, tt.want)
		}
	}
}

// TestDueDeletionOnceAcrossProcesses: three responders sharing one
// PostgreSQL state (three processes of a fleet) run their due deletions at
// once: the key soaked by another is deleted once, by one of them, and its
// audit trail holds one deletion.
func TestDueDeletionOnceAcrossProcesses(t *testing.T) {
	url := pgtest.Private(t)
	ctx := context.Background()
	first, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := first.ScheduleDeletion(ctx, store.Deletion{KeyID: key, Account: "123456789012", UserName: "alice", DueAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	fake := newFake(iamtypes.StatusTypeInactive) // one IAM, as AWS is one
	// Each responder that gets as far as reading the key waits for the
	// others to get there too (or half a second): without claims all three
	// would read it Inactive, and all three delete it.
	arrive := barrier(3)
	var wg sync.WaitGroup
	results := make(chan []Result, 3)
	for range 3 {
		st, err := store.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		r := responder(t, barrierIAM{IAMAPI: fake, arrive: arrive}, Options{Policy: Delete, Soak: time.Hour, Store: st}, selfUser)
		wg.Go(func() {
			done, err := r.DeleteDue(ctx)
			if err != nil {
				t.Error(err)
			}
			results <- done
		})
	}
	wg.Wait()
	close(results)
	deleted := 0
	for done := range results {
		for _, res := range done {
			if res.Action == ActionDeleted {
				deleted++
			}
		}
	}
	if deletes := strings.Count(fake.callList(), "delete"); deleted != 1 || deletes != 1 || len(fake.keys) != 0 {
		t.Errorf("%d results said deleted, %d DeleteAccessKey calls, keys left %v; want one of each", deleted, deletes, fake.keys)
	}
	oneDeletion(t, first)
}

// oneDeletion checks that the shared audit trail holds one deletion of the
// key, whoever wrote it.
func oneDeletion(t *testing.T, st *store.Store) {
	t.Helper()
	log, _ := st.AuditLog(context.Background(), key)
	n := 0
	for _, rec := range log {
		if rec.Action == stepDelete && rec.Outcome == outOK {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the audit trail holds %d deletions, want one:\n%+v", n, log)
	}
}

// barrierIAM is an IAM that calls arrive before listing a user's keys.
type barrierIAM struct {
	IAMAPI
	arrive func()
}

func (b barrierIAM) ListAccessKeys(ctx context.Context, in *iam.ListAccessKeysInput, opts ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error) {
	b.arrive()
	return b.IAMAPI.ListAccessKeys(ctx, in, opts...)
}

// barrier returns a func that waits until n calls have arrived, or half a
// second has passed.
func barrier(n int32) func() {
	var arrived atomic.Int32
	return func() {
		arrived.Add(1)
		for range 100 {
			if arrived.Load() >= n {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestRespondOnceAcrossProcesses: three responders sharing one PostgreSQL
// state find the same live key at once: one acts (deactivates, deletes),
// the others wait for its lock and find it deleted in the audit log. One
// DeleteAccessKey, one deletion in the audit trail.
func TestRespondOnceAcrossProcesses(t *testing.T) {
	url := pgtest.Private(t)
	ctx := context.Background()
	fake := newFake(iamtypes.StatusTypeActive)
	arrive := barrier(3)
	alice := live("arn:aws:iam::123456789012:user/alice")
	var wg sync.WaitGroup
	results := make(chan Result, 3)
	for range 3 {
		st, err := store.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		r := responder(t, barrierIAM{IAMAPI: fake, arrive: arrive}, Options{Policy: Delete, Store: st}, selfUser)
		wg.Go(func() { results <- r.Respond(ctx, Key{ID: key}, alice) })
	}
	wg.Wait()
	close(results)
	var actions []string
	for res := range results {
		actions = append(actions, string(res.Action))
	}
	slices.Sort(actions)
	if deletes := strings.Count(fake.callList(), "delete"); deletes != 1 || strings.Join(actions, ",") != "deleted,skipped,skipped" {
		t.Errorf("%d DeleteAccessKey calls, results %v; want one delete, one deleted and two skipped", deletes, actions)
	}
	st, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	oneDeletion(t, st)
}
