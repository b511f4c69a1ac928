package respond

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// guard is the real IAM client (moto) with the two safety properties
// checked at the moment of every mutating call: nothing mutates under
// dry-run, and no key is deleted while Active (read with the admin's own
// client, not the responder's).
type guard struct {
	IAMAPI
	t   *testing.T
	m   *awstest.Server
	dry bool

	mu        sync.Mutex
	mutations int
}

func (g *guard) mutation(what string) {
	g.mu.Lock()
	g.mutations++
	g.mu.Unlock()
	if g.dry {
		g.t.Errorf("%s under --dry-run", what)
	}
}

func (g *guard) UpdateAccessKey(ctx context.Context, in *iam.UpdateAccessKeyInput, opts ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error) {
	g.mutation("UpdateAccessKey " + aws.ToString(in.AccessKeyId))
	return g.IAMAPI.UpdateAccessKey(ctx, in, opts...)
}

func (g *guard) CreateAccessKey(ctx context.Context, in *iam.CreateAccessKeyInput, opts ...func(*iam.Options)) (*iam.CreateAccessKeyOutput, error) {
	g.mutation("CreateAccessKey " + aws.ToString(in.UserName))
	return g.IAMAPI.CreateAccessKey(ctx, in, opts...)
}

func (g *guard) DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, opts ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error) {
	g.mutation("DeleteAccessKey " + aws.ToString(in.AccessKeyId))
	if st, err := g.m.Status(aws.ToString(in.UserName), aws.ToString(in.AccessKeyId)); err != nil || st == "Active" {
		g.t.Errorf("DeleteAccessKey %s while the key is %q (%v)", aws.ToString(in.AccessKeyId), st, err)
	}
	return g.IAMAPI.DeleteAccessKey(ctx, in, opts...)
}

func (g *guard) PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, opts ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	g.mutation("PutRolePolicy " + aws.ToString(in.RoleName))
	return g.IAMAPI.PutRolePolicy(ctx, in, opts...)
}

// motoResponder is a responder acting with creds against moto, every IAM
// call passing through a guard.
func motoResponder(t *testing.T, m *awstest.Server, creds aws.CredentialsProvider, opts Options) (*Responder, *guard) {
	t.Helper()
	g := &guard{t: t, m: m, dry: opts.DryRun,
		IAMAPI: iam.New(iam.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(m.URL)})}
	opts.Credentials, opts.Endpoint = creds, m.URL
	opts.testOnlyIAM = func(string) IAMAPI { return g }
	// moto has no CloudTrail event history (TestRootKeyMoto reads one
	// from awstest.Front).
	opts.testOnlyCloudTrail = func(string, string) CloudTrailAPI { return &fakeTrail{} }
	if opts.Store == nil {
		opts.Store = testStore(t)
	}
	r, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, g
}

// scan is what one run does with a key it finds: verify with STS now, then
// respond.
func scan(ctx context.Context, m *awstest.Server, r *Responder, id, sec, tok string) Result {
	v := verify.New(verify.Options{Endpoint: m.URL, Backoff: time.Millisecond})
	vd := v.Fresh(ctx, id, "", secret.New(sec), secret.New(tok))
	return r.Respond(ctx, Key{ID: id}, vd)
}

// TestDryRunAfterSoakMoto: a key deactivated with a soak window is not
// deleted by a dry run once due (the schedule stays, the audit says what
// would be done), and is deleted by the next real run.
func TestDryRunAfterSoakMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	id, sec := m.UserKey(t, "alice")
	st := testStore(t)
	clk := &clock{t: time.Now()}
	r, _ := motoResponder(t, m, m.AdminProvider(), Options{Policy: Delete, Soak: 24 * time.Hour, Store: st, Now: clk.now})
	if res := scan(ctx, m, r, id, sec, ""); res.Action != ActionScheduled || m.KeyStatus(t, "alice", id) != "Inactive" {
		t.Fatalf("first run: %+v, key %s", res, m.KeyStatus(t, "alice", id))
	}
	clk.advance(25 * time.Hour)
	dry, g := motoResponder(t, m, m.AdminProvider(), Options{Policy: Delete, DryRun: true, Store: st, Now: clk.now})
	done, err := dry.DeleteDue(ctx)
	if err != nil || len(done) != 1 || done[0].Action != ActionDryRun || g.mutations != 0 {
		t.Fatalf("dry run: %+v, %v, %d mutating calls", done, err, g.mutations)
	}
	if s := m.KeyStatus(t, "alice", id); s != "Inactive" {
		t.Errorf("after a dry run the key is %q, want Inactive (untouched)", s)
	}
	if pending, _ := st.PendingDeletions(ctx); len(pending) != 1 {
		t.Errorf("a dry run changed the schedule: %+v", pending)
	}
	done, err = r.DeleteDue(ctx)
	if err != nil || len(done) != 1 || done[0].Action != ActionDeleted || m.KeyStatus(t, "alice", id) != "" {
		t.Errorf("real run: %+v, %v; key %q, want deleted", done, err, m.KeyStatus(t, "alice", id))
	}
}

// TestReactivatedKeyMoto: the owner re-activates a key keyburn deactivated
// (a false alarm); its due deletion leaves it alone, is cancelled, and the
// audit says why.
func TestReactivatedKeyMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	id, sec := m.UserKey(t, "bob")
	st := testStore(t)
	clk := &clock{t: time.Now()}
	r, _ := motoResponder(t, m, m.AdminProvider(), Options{Policy: Delete, Soak: time.Hour, Store: st, Now: clk.now})
	if res := scan(ctx, m, r, id, sec, ""); res.Action != ActionScheduled {
		t.Fatalf("first run: %+v", res)
	}
	m.SetKeyStatus(t, "bob", id, "Active")
	clk.advance(2 * time.Hour)
	done, err := r.DeleteDue(ctx)
	if err != nil || len(done) != 1 || done[0].Action != ActionCancelled {
		t.Fatalf("DeleteDue = %+v, %v; want the deletion cancelled", done, err)
	}
	if s := m.KeyStatus(t, "bob", id); s != "Active" {
		t.Errorf("the re-activated key is %q, want Active", s)
	}
	log, _ := st.AuditLog(ctx, id)
	last := log[len(log)-1]
	if last.Outcome != outCancelled || !strings.Contains(last.Detail, "Active again") || last.Before != "Active" {
		t.Errorf("last audit record %+v; want the cancellation and its reason", last)
	}
	if pending, _ := st.PendingDeletions(ctx); len(pending) != 0 {
		t.Errorf("still scheduled: %+v", pending)
	}
}

// TestAuditStoreFailsMoto: with an audit log that cannot be written, a live
// key stays Active and the result names the failure.
func TestAuditStoreFailsMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	id, sec := m.UserKey(t, "carol")
	st := testStore(t)
	if _, err := st.DB().Exec(`CREATE TRIGGER full BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	r, g := motoResponder(t, m, m.AdminProvider(), Options{Policy: Delete, Store: st})
	res := scan(ctx, m, r, id, sec, "")
	if res.Action != ActionFailed || res.Err == nil || !strings.Contains(res.Reason, "audit log") || g.mutations != 0 {
		t.Errorf("Respond = %+v with %d mutating calls; want failed on the audit log, none", res, g.mutations)
	}
	if s := m.KeyStatus(t, "carol", id); s != "Active" {
		t.Errorf("the key is %q, want Active: no record, no action", s)
	}
}

// TestOwnRoleMoto: the responder runs as a session of a role; a leaked
// session of that same role, or of the role_name it acts through, is never
// revoked (that would lock it out), and it says so.
func TestOwnRoleMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	sid, ssec, stok, err := m.NamedRoleSession("keyburn", "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	self := credentials.NewStaticCredentialsProvider(sid, ssec, stok)
	r, g := motoResponder(t, m, self, Options{Policy: Delete, RoleName: "keyburn-responder"})
	for _, role := range []string{"keyburn", "keyburn-responder"} {
		id, sec, tok, err := m.NamedRoleSession(role, "leaked")
		if err != nil {
			t.Fatal(err)
		}
		res := scan(ctx, m, r, id, sec, tok)
		if res.Action != ActionSkipped || !strings.Contains(res.Reason, "refused") || !strings.Contains(res.Reason, role) {
			t.Errorf("a leaked session of role %s: %+v; want refused, naming the role", role, res)
		}
		if doc, err := m.RolePolicy(role, revokeSessionsPolicy); err == nil {
			t.Errorf("role %s got a revoke-sessions policy: %s", role, doc)
		}
	}
	if g.mutations != 0 {
		t.Errorf("%d mutating calls", g.mutations)
	}
}

// TestNeverDeletesActiveProperty runs random sequences of scans (respond
// with and without a soak window, dry runs), re-activations by the owner,
// the clock passing, and due deletions (dry and real), against moto. At
// every DeleteAccessKey the key must not be Active, and under --dry-run no
// mutating call may be made (the guard checks both as they happen); after a
// dry run every key's status is as before.
func TestNeverDeletesActiveProperty(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	const sequences, steps = 6, 16
	seen := map[Action]int{} // what the sequences exercised, so the property is not vacuous
	for seq := range sequences {
		rng := rand.New(rand.NewPCG(uint64(seq), 7))
		st := testStore(t)
		clk := &clock{t: time.Now()}
		type k struct{ user, id, sec string }
		var keys []k
		for i := range 2 {
			user := fmt.Sprintf("p%d-u%d", seq, i)
			id, sec := m.UserKey(t, user)
			keys = append(keys, k{user, id, sec})
		}
		statuses := func() []string {
			var out []string
			for _, key := range keys {
				out = append(out, m.KeyStatus(t, key.user, key.id))
			}
			return out
		}
		var trace []string
		for range steps {
			key := keys[rng.IntN(len(keys))]
			dry := rng.IntN(3) == 0
			soak := []time.Duration{0, time.Hour}[rng.IntN(2)]
			r, _ := motoResponder(t, m, m.AdminProvider(), Options{Policy: Delete, Soak: soak, DryRun: dry, Store: st, Now: clk.now})
			before := statuses()
			var op string
			switch rng.IntN(4) {
			case 0:
				op = fmt.Sprintf("scan %s soak=%s dry=%v", key.id[:8], soak, dry)
				seen[scan(ctx, m, r, key.id, key.sec, "").Action]++
			case 1:
				op = "reactivate " + key.id[:8]
				if m.KeyStatus(t, key.user, key.id) == "Inactive" {
					m.SetKeyStatus(t, key.user, key.id, "Active")
				}
				dry = false
			case 2:
				op = "clock +2h"
				clk.advance(2 * time.Hour)
				dry = false
			case 3:
				op = fmt.Sprintf("due deletions dry=%v", dry)
				done, err := r.DeleteDue(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, res := range done {
					seen["due "+res.Action]++
				}
			}
			trace = append(trace, op)
			if after := statuses(); dry && fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("sequence %d: a dry run changed the keys %v → %v after:\n%s", seq, before, after, strings.Join(trace, "\n"))
			}
			if t.Failed() {
				t.Fatalf("sequence %d failed after:\n%s", seq, strings.Join(trace, "\n"))
			}
		}
	}
	for _, a := range []Action{ActionDeleted, ActionScheduled, ActionDryRun, "due " + ActionDeleted, "due " + ActionCancelled, "due " + ActionDryRun} {
		if seen[a] == 0 {
			t.Errorf("no step ended %q: the sequences do not exercise it (seen %v)", a, seen)
		}
	}
}

// rootTaskActions are what the IAMDeleteRootUserCredentials task policy
// allows with the key-related ones: no iam:UpdateAccessKey.
const rootTaskActions = `["iam:DeleteAccessKey","iam:GetAccessKeyLastUsed","iam:GetUser","iam:ListAccessKeys",` +
	`"iam:DeleteLoginProfile","iam:DeactivateMFADevice","iam:DeleteSigningCertificate"]`

// TestRootKeyMoto: a leaked root key, end to end. STS (the front) names
// it the account's root user; the responder, configured for centralized
// root access, calls sts:AssumeRoot with its own credentials, and in the
// root session (a moto user allowed only the task policy's actions, so
// moto itself refuses the deactivation) deletes the key. A dry run
// assumes nothing and changes nothing.
func TestRootKeyMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	// The account's root user, as moto can hold one: a user whose two keys
	// are the leaked key and the root session's.
	if _, err := m.IAM().CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("root-standin")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.IAM().PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("root-standin"), PolicyName: aws.String("IAMDeleteRootUserCredentials"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":` + rootTaskActions + `,"Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	leaked, leakedSecret := m.UserKey(t, "root-standin")
	sessionKey, sessionSecret := m.UserKey(t, "root-standin")

	front := awstest.StartFront(t, m)
	front.CallerIdentity = func(keyID string) (string, bool) {
		return "arn:aws:iam::123456789012:root", keyID == leaked
	}
	var assumed []awstest.AssumeRootCall
	var mu sync.Mutex
	front.AssumeRoot = func(c awstest.AssumeRootCall) (awstest.Credentials, *awstest.APIError) {
		mu.Lock()
		assumed = append(assumed, c)
		mu.Unlock()
		if c.SignedBy != m.Admin.AccessKeyID {
			return awstest.Credentials{}, &awstest.APIError{Status: 403, Code: "AccessDenied", Message: "only the management account may assume root"}
		}
		return awstest.Credentials{KeyID: sessionKey, Secret: sessionSecret, Token: ""}, nil
	}
	// What the key did before it died, as CloudTrail's event history holds
	// it: four calls by an attacker (one with a User-Agent that says it is
	// keyburn's), one by keyburn's verification, told by its request ID.
	leakedAt := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	attack := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	history := []awstest.Event{
		{ID: "e1", Name: "GetCallerIdentity", Source: "sts.amazonaws.com", Region: "us-east-1", SourceIP: "203.0.113.9", UserAgent: "aws-cli/2.15", AccessKeyID: leaked, Time: attack},
		{ID: "e2", Name: "ListBuckets", Source: "s3.amazonaws.com", Region: "us-east-1", SourceIP: "203.0.113.9", UserAgent: "aws-cli/2.15", AccessKeyID: leaked, Time: attack.Add(time.Minute)},
		{ID: "e3", Name: "CreateUser", Source: "iam.amazonaws.com", Region: "us-east-1", SourceIP: "198.51.100.4", UserAgent: "Boto3/1.34", AccessKeyID: leaked, Time: attack.Add(time.Hour)},
		{ID: "e4", Name: "GetCallerIdentity", Source: "sts.amazonaws.com", Region: "us-east-1", SourceIP: "192.0.2.1", UserAgent: "aws-sdk-go-v2/1.47.8 keyburn/verify", AccessKeyID: leaked,
			RequestID: awstest.CallerIdentityRequestID, Time: time.Now()},
		{ID: "e5", Name: "ListBuckets", Source: "s3.amazonaws.com", Region: "us-east-1", SourceIP: "203.0.113.9", UserAgent: "aws-sdk-go-v2/1.47.8 keyburn/verify", AccessKeyID: leaked,
			RequestID: "spoofed-1", Time: attack.Add(2 * time.Minute)},
	}
	var lookups []awstest.LookupEventsCall
	front.LookupEvents = func(c awstest.LookupEventsCall) (awstest.LookupEventsPage, *awstest.APIError) {
		mu.Lock()
		lookups = append(lookups, c)
		mu.Unlock()
		start := 0
		if c.Body.NextToken != nil {
			fmt.Sscan(*c.Body.NextToken, &start)
		}
		end := min(start+2, len(history)) // two per page: the responder must follow NextToken
		page := awstest.LookupEventsPage{Events: history[start:end]}
		if end < len(history) {
			page.NextToken = fmt.Sprint(end)
		}
		return page, nil
	}
	verifyRoot := func(st *store.Store) verify.Verdict {
		v := verify.New(verify.Options{Endpoint: front.URL, Backoff: time.Millisecond, Cache: st})
		vd := v.Fresh(ctx, leaked, "", secret.New(leakedSecret), secret.Secret{})
		if vd.Status != verify.Live || !IsRootARN(vd.ARN) {
			t.Fatalf("verdict %s %s, want live, root", vd.Status, vd.ARN)
		}
		return vd
	}

	t.Run("dry run", func(t *testing.T) {
		st := testStore(t)
		r, err := New(ctx, Options{Policy: Delete, DryRun: true, RootAccess: true, Credentials: m.AdminProvider(), Endpoint: front.URL, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		res := r.Respond(ctx, Key{ID: leaked}, verifyRoot(st))
		if res.Action != ActionDryRun || len(assumed) != 0 || m.KeyStatus(t, "root-standin", leaked) != "Active" {
			t.Errorf("dry run: %+v, %d AssumeRoot calls, key %q; want dry-run, none, Active", res, len(assumed), m.KeyStatus(t, "root-standin", leaked))
		}
	})

	t.Run("deleted", func(t *testing.T) {
		st := testStore(t)
		r, err := New(ctx, Options{Policy: Delete, RootAccess: true, Credentials: m.AdminProvider(), Endpoint: front.URL, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		res := r.Respond(ctx, Key{ID: leaked, LeakedAt: leakedAt}, verifyRoot(st))
		if res.Action != ActionDeleted || !strings.Contains(res.Reason, "could not be deactivated first (AccessDenied") {
			t.Fatalf("respond: %+v; want deleted, after moto refused the deactivation", res)
		}
		if s := m.KeyStatus(t, "root-standin", leaked); s != "" {
			t.Errorf("the root key is %q in moto, want deleted", s)
		}
		if len(assumed) != 1 || assumed[0].TargetPrincipal != "123456789012" || assumed[0].DurationSeconds != "900" ||
			assumed[0].TaskPolicyArn != "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials" {
			t.Errorf("AssumeRoot calls: %+v", assumed)
		}
		log, err := st.AuditLog(ctx, leaked)
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for _, rec := range log {
			steps = append(steps, rec.Action+":"+rec.Outcome)
			if rec.UserName != rootUser || rec.Account != "123456789012" {
				t.Errorf("audit record names %q in %q, want the root user of 123456789012", rec.UserName, rec.Account)
			}
			if strings.Contains(rec.Detail, leakedSecret) || strings.Contains(rec.Detail, sessionSecret) {
				t.Error("a secret is in the audit log")
			}
		}
		want := "assume-root:started,assume-root:ok,owner-check:ok,deactivate:started,deactivate:failed,owner-check:ok,delete:started,delete:ok,evidence:ok"
		if strings.Join(steps, ",") != want {
			t.Errorf("audit steps:\n got %s\nwant %s", strings.Join(steps, ","), want)
		}
		// The evidence: read with the responder's own credentials (the
		// key's account is its own), by the key's ID, from the leak.
		ev := res.Evidence
		if ev == nil || ev.Calls != 4 || ev.Own != 1 || !ev.First.Equal(attack) || !ev.Last.Equal(attack.Add(time.Hour)) || ev.Unread != "" {
			t.Fatalf("evidence %+v; want 4 calls from %v to %v, 1 of keyburn's", ev, attack, attack.Add(time.Hour))
		}
		if fmt.Sprint(ev.SourceIPs) != "[{203.0.113.9 3} {198.51.100.4 1}]" || fmt.Sprint(ev.EventNames) != "[{ListBuckets 2} {CreateUser 1} {GetCallerIdentity 1}]" {
			t.Errorf("evidence source IPs %v, event names %v", ev.SourceIPs, ev.EventNames)
		}
		if len(ev.OwnCalls) != 1 || ev.OwnCalls[0].RequestID != awstest.CallerIdentityRequestID || ev.OwnCalls[0].SourceIP != "192.0.2.1" ||
			!strings.Contains(ev.Summary(), "1 call(s) had a User-Agent naming keyburn that keyburn has no record of making") {
			t.Errorf("keyburn's own calls %+v, summary %q: want the recorded one listed apart, the spoofed one counted and said", ev.OwnCalls, ev.Summary())
		}
		if len(lookups) != 3 {
			t.Errorf("%d LookupEvents calls, want 3 (three pages)", len(lookups))
		}
		for _, c := range lookups {
			attr := c.Body.LookupAttributes
			if c.SignedBy != m.Admin.AccessKeyID || len(attr) != 1 || attr[0].AttributeKey != "AccessKeyId" || attr[0].AttributeValue != leaked ||
				c.Body.StartTime == nil || int64(*c.Body.StartTime) != leakedAt.Unix() || c.Region != "us-east-1" {
				t.Errorf("LookupEvents call %+v: want the key's events from %v, signed by the responder (%s)", c, leakedAt, m.Admin.AccessKeyID)
			}
		}
		if last := log[len(log)-1]; !strings.Contains(last.Detail, "4 call(s) by the key") || !strings.Contains(last.Detail, "203.0.113.9 (3)") {
			t.Errorf("evidence audit record: %q", last.Detail)
		}
		if s := m.KeyStatus(t, "root-standin", sessionKey); s != "Active" {
			t.Errorf("the root session's own key is %q: the responder touched a key it was not given", s)
		}
	})
}
