package check

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/report"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/testkeys"
	"github.com/keyburn/keyburn/internal/verify"
	"github.com/keyburn/keyburn/rules"
)

// failer fails the test on any read failure during a scan.
type failer struct{ t *testing.T }

func (f failer) Skipped(string, string) {}
func (f failer) Failed(err error)       { f.t.Errorf("scan: %v", err) }

// scanDir writes files and scans them.
func scanDir(t *testing.T, files map[string]string) []*finding.Finding {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := rules.Load(rules.DefaultFS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := engine.ScanPaths(context.Background(), engine.Options{Matcher: detect.New(set)}, []string{dir}, failer{t})
	if err != nil {
		t.Fatal(err)
	}
	return res.Findings
}

func byKey(fs []*finding.Finding) map[string]*finding.Finding {
	m := map[string]*finding.Finding{}
	for _, f := range fs {
		m[f.KeyID] = f
	}
	return m
}

// mustRun runs the check stage and fails the test on a state failure.
func mustRun(t *testing.T, ctx context.Context, fs []*finding.Finding, v *verify.Verifier, r *respond.Responder) {
	t.Helper()
	if err := Run(ctx, fs, v, r); err != nil {
		t.Fatalf("check.Run: %v", err)
	}
}

func envFile(id, secret string) string {
	return fmt.Sprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", id, secret)
}

// TestVerifyAndRespondMoto runs verification and response against moto_server
// with authentication enforced.
func TestVerifyAndRespondMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	liveID, liveSecret := m.UserKey(t, "alice")
	goneID, goneSecret := m.UserKey(t, "bob")
	m.DeleteKey(t, "bob", goneID)
	otherID, _ := m.UserKey(t, "carol")
	rng := rand.New(rand.NewPCG(4, 4))
	canaryID := testkeys.KeyID(rng, "AKIA", 52310077262) // a canarytokens.org account
	canarySecret := testkeys.Secret(rng)
	files := map[string]string{
		"live.env":   envFile(liveID, liveSecret),
		"gone.env":   envFile(goneID, goneSecret),
		"wrong.env":  envFile(otherID, testkeys.Secret(rng)),
		"self.env":   envFile(m.Admin.AccessKeyID, m.Admin.SecretAccessKey),
		"canary.env": envFile(canaryID, canarySecret),
		"docs.env":   envFile("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
	}
	fs := scanDir(t, files)
	found := byKey(fs)
	for _, id := range []string{liveID, goneID, otherID, m.Admin.AccessKeyID, canaryID} {
		if found[id] == nil {
			t.Fatalf("the scan did not find %s (moto's key IDs must match the detector)", id)
		}
	}
	if found["AKIAIOSFODNN7EXAMPLE"] != nil {
		t.Fatalf("the documentation example was reported")
	}
	st, v, r := motoCheck(t, m, respond.Options{Policy: respond.Delete})
	mustRun(t, ctx, fs, v, r)

	// An old-format key ID alone: its account is named by
	// sts:GetAccessKeyInfo with keyburn's own credentials.
	oldFormat := byKey(scanDir(t, map[string]string{"old.txt": "legacy key AKIAJQABLZS4A3QDU576\n"}))["AKIAJQABLZS4A3QDU576"]
	if oldFormat == nil || oldFormat.AccountID != "" {
		t.Fatalf("old-format key: %+v", oldFormat)
	}
	mustRun(t, ctx, []*finding.Finding{oldFormat}, v, r)
	if oldFormat.AccountID != "123456789012" {
		t.Errorf("old-format key's account = %q, want moto's 123456789012", oldFormat.AccountID)
	}

	want := map[string]struct {
		status string
		action respond.Action
	}{
		liveID:              {"live", respond.ActionDeleted},
		goneID:              {"invalid", respond.ActionSkipped},
		otherID:             {"wrong-secret", respond.ActionSkipped},
		m.Admin.AccessKeyID: {"live", respond.ActionSkipped},
		canaryID:            {"canary", respond.ActionSkipped},
	}
	for id, w := range want {
		f := found[id]
		if f.Verification == nil || f.Verification.Status != w.status {
			t.Errorf("%s: verification %+v, want %s", id, f.Verification, w.status)
		}
		if f.Response == nil || f.Response.Action != string(w.action) {
			t.Errorf("%s: response %+v, want %s", id, f.Response, w.action)
		}
	}
	if got := found[liveID].Verification.ARN; !strings.HasSuffix(got, ":user/alice") {
		t.Errorf("live ARN = %q", got)
	}
	if s := m.KeyStatus(t, "alice", liveID); s != "" {
		t.Errorf("alice's leaked key is %q after --respond=delete, want deleted", s)
	}
	if s := m.KeyStatus(t, "admin", m.Admin.AccessKeyID); s != "Active" {
		t.Errorf("the responder's own key is %q, want untouched (Active)", s)
	}
	// Four pairs were called (live, gone, wrong with its retry, self); the
	// canary never.
	if c := v.Calls(); c < 4 || c > 5 {
		t.Errorf("STS calls = %d, want 4 or 5 (one per pair, one retry for the wrong secret)", c)
	}
	log, err := st.AuditLog(ctx, liveID)
	if err != nil || len(log) < 4 {
		t.Fatalf("audit log for the live key: %d records, %v", len(log), err)
	}
	var steps []string
	for _, rec := range log {
		steps = append(steps, rec.Action+":"+rec.Outcome)
		if strings.Contains(rec.Detail, liveSecret) {
			t.Errorf("the audit log holds the secret")
		}
	}
	// The key's last use is read before keyburn's own STS call touches it.
	if log[0].Action != "last-used" || !strings.Contains(log[0].Detail, "before verification") {
		t.Errorf("first audit record = %+v, want the last use read before verification", log[0])
	}
	if got := strings.Join(steps, ","); !strings.Contains(got, "owner-check:ok") || !strings.Contains(got, "deactivate:ok") || !strings.Contains(got, "delete:ok") {
		t.Errorf("audit steps = %s", got)
	}

	// A second run is a no-op: the deleted key is invalid now, nothing is acted on.
	fs2 := scanDir(t, map[string]string{"live.env": envFile(liveID, liveSecret)})
	v2 := verify.New(verify.Options{Endpoint: m.URL})
	mustRun(t, ctx, fs2, v2, r)
	if f := fs2[0]; f.Verification.Status != "invalid" || f.Response.Action != string(respond.ActionSkipped) {
		t.Errorf("second run: %+v %+v, want invalid and skipped", f.Verification, f.Response)
	}
}

func TestRespondDeactivateAndDryRunMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	id, sec := m.UserKey(t, "dave")
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, dry := range []bool{true, false} {
		fs := scanDir(t, map[string]string{"k.env": envFile(id, sec)})
		r, err := respond.New(ctx, respond.Options{Policy: respond.Deactivate, DryRun: dry, Credentials: m.AdminProvider(), Endpoint: m.URL, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		mustRun(t, ctx, fs, verify.New(verify.Options{Endpoint: m.URL}), r)
		want, wantAction := "Inactive", respond.ActionDeactivated
		if dry {
			want, wantAction = "Active", respond.ActionDryRun
		}
		if got := m.KeyStatus(t, "dave", id); got != want || fs[0].Response.Action != string(wantAction) {
			t.Errorf("dry-run %v: key %q, action %q; want %q, %q", dry, got, fs[0].Response.Action, want, wantAction)
		}
	}
}

// TestVerifyDedupeMoto scans 1,000 copies of 20 distinct live keys: exactly
// 20 STS calls.
func TestVerifyDedupeMoto(t *testing.T) {
	m := awstest.Start(t)
	files := map[string]string{}
	for i := range 20 {
		id, sec := m.UserKey(t, fmt.Sprintf("user%d", i))
		for j := range 50 {
			files[fmt.Sprintf("k%d-%d.env", i, j)] = envFile(id, sec)
		}
	}
	fs := scanDir(t, files)
	n := 0
	for _, f := range fs {
		n += len(f.Locations)
	}
	if len(fs) != 20 || n != 1000 {
		t.Fatalf("%d findings with %d locations, want 20 with 1,000", len(fs), n)
	}
	v := verify.New(verify.Options{Endpoint: m.URL})
	mustRun(t, context.Background(), fs, v, nil)
	if c := v.Calls(); c != 20 {
		t.Errorf("STS calls = %d, want 20", c)
	}
	for _, f := range fs {
		if f.Verification.Status != "live" {
			t.Errorf("%s: %+v", f.KeyID, f.Verification)
		}
	}
}

// TestVerifyEndpointDown points at a closed port: the verdict is error, never
// invalid, and the run finishes.
func TestVerifyEndpointDown(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	fs := scanDir(t, map[string]string{"k.env": envFile(testkeys.KeyID(rng, "AKIA", 123456789012), testkeys.Secret(rng))})
	v := verify.New(verify.Options{Endpoint: "http://127.0.0.1:1", Backoff: 1})
	mustRun(t, context.Background(), fs, v, nil)
	if f := fs[0]; f.Verification.Status != "error" || f.Verification.Error == "" {
		t.Errorf("endpoint down: %+v, want error with a reason", f.Verification)
	}
	if c := v.Calls(); c != 3 {
		t.Errorf("calls = %d, want 3 attempts", c)
	}
}

// TestRevokeRoleSessionsMoto: a live temporary key of a role session gets
// the role's older sessions denied.
func TestRevokeRoleSessionsMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	id, sec, tok, err := m.RoleSession("deploy")
	if err != nil {
		t.Fatal(err)
	}
	fs := scanDir(t, map[string]string{"tmp.ini": "[tmp]\naws_access_key_id = " + id + "\naws_secret_access_key = " + sec + "\naws_session_token = " + tok + "\n"})
	if len(fs) != 1 || fs[0].SessionToken.IsZero() {
		t.Fatalf("findings %d (token found: %v); moto's temporary key must match the detector", len(fs), len(fs) == 1 && !fs[0].SessionToken.IsZero())
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := respond.New(ctx, respond.Options{Policy: respond.Delete, Credentials: m.AdminProvider(), Endpoint: m.URL, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, ctx, fs, verify.New(verify.Options{Endpoint: m.URL, Cache: st}), r)
	f := fs[0]
	if f.Verification.Status != "live" || f.Response == nil || f.Response.Action != string(respond.ActionRevoked) {
		t.Fatalf("temporary key: verification %+v, response %+v", f.Verification, f.Response)
	}
	doc, err := m.RolePolicy("deploy", "AWSRevokeOlderSessions")
	if err != nil || !strings.Contains(doc, "aws:TokenIssueTime") {
		t.Fatalf("role policy = %q, %v", doc, err)
	}

	// Found again by a later run: STS still answers for it (an explicit
	// deny does not stop GetCallerIdentity), but its verdict is "revoked"
	// until the token expires, and the deny is not rewritten.
	time.Sleep(1100 * time.Millisecond) // a rewritten deny would carry a later second
	fs = scanDir(t, map[string]string{"again.ini": "[tmp]\naws_access_key_id = " + id + "\naws_secret_access_key = " + sec + "\naws_session_token = " + tok + "\n"})
	mustRun(t, ctx, fs, verify.New(verify.Options{Endpoint: m.URL, Cache: st}), r)
	if f := fs[0]; f.Verification.Status != string(verify.Revoked) || f.Response == nil || f.Response.Action != string(respond.ActionSkipped) {
		t.Errorf("found again: verification %+v, response %+v; want revoked and skipped", f.Verification, f.Response)
	}
	if again, _ := m.RolePolicy("deploy", "AWSRevokeOlderSessions"); again != doc {
		t.Errorf("the deny was rewritten:\n%s\nthen\n%s", doc, again)
	}
}

// TestCanaryAccountsMoto: an old-format key ID in a canary account is never
// called (its account is named by sts:GetAccessKeyInfo with keyburn's own
// credentials), and a key whose account STS names as a canary is never
// acted on.
func TestCanaryAccountsMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 9))
	oldID := "AKIAJQABLZS4A3QDU576" // old format: no account in it; moto names 123456789012
	liveID, liveSecret := m.UserKey(t, "frank")
	fs := scanDir(t, map[string]string{
		"old.env":  envFile(oldID, testkeys.Secret(rng)),
		"live.env": envFile(liveID, liveSecret),
	})
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// --verify alone, with the canary account configured.
	v := verify.New(verify.Options{Endpoint: m.URL, Credentials: m.AdminProvider(), CanaryAccounts: []string{"123456789012"}})
	old := byKey(fs)[oldID]
	mustRun(t, ctx, []*finding.Finding{old}, v, nil)
	if old.Verification == nil || old.Verification.Status != "canary" || v.Calls() != 0 {
		t.Errorf("old-format key in a canary account: %+v after %d STS calls; want canary, none", old.Verification, v.Calls())
	}

	// The live key decodes to the same account, so a responding run with
	// the canary list never calls STS for it either; with a list that
	// only STS's answer can match, it is called once and left alone.
	r, err := respond.New(ctx, respond.Options{Policy: respond.Delete, Credentials: m.AdminProvider(), Endpoint: m.URL, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	lf := byKey(fs)[liveID]
	lf.AccountID = "" // as for a key ID that does not encode it, with GetAccessKeyInfo failing
	v2 := verify.New(verify.Options{Endpoint: m.URL, CanaryAccounts: []string{"123456789012"}})
	mustRun(t, ctx, []*finding.Finding{lf}, v2, r)
	if lf.Verification.Status != "skipped" || v2.Calls() != 0 {
		t.Errorf("an unnamed account: %+v after %d STS calls; want skipped, none", lf.Verification, v2.Calls())
	}
	lf.AccountID = "100000000000" // decoded as another account: STS will name the canary
	mustRun(t, ctx, []*finding.Finding{lf}, v2, r)
	if lf.Verification.Status != "canary" || lf.Response == nil || lf.Response.Action != string(respond.ActionSkipped) {
		t.Errorf("STS named a canary account: %+v, %+v; want canary and skipped", lf.Verification, lf.Response)
	}
	if s := m.KeyStatus(t, "frank", liveID); s != "Active" {
		t.Errorf("the key in a canary account is %q, want Active", s)
	}
}

// TestRespondThroughRoleMoto: the responder acts through a role it assumes
// in the key's account.
func TestRespondThroughRoleMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	if _, _, _, err := m.RoleSession("keyburn-responder"); err != nil { // creates the role
		t.Fatal(err)
	}
	id, sec := m.UserKey(t, "erin")
	fs := scanDir(t, map[string]string{"k.env": envFile(id, sec)})
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := respond.New(ctx, respond.Options{Policy: respond.Delete, Credentials: m.AdminProvider(), Endpoint: m.URL,
		RoleName: "keyburn-responder", Store: st})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, ctx, fs, verify.New(verify.Options{Endpoint: m.URL}), r)
	if fs[0].Response == nil || fs[0].Response.Action != string(respond.ActionDeleted) {
		t.Fatalf("response through the role: %+v", fs[0].Response)
	}
	if s := m.KeyStatus(t, "erin", id); s != "" {
		t.Errorf("erin's key is %q, want deleted", s)
	}
	log, _ := st.AuditLog(ctx, id)
	if len(log) == 0 || !strings.Contains(log[0].Actor, "user/admin") {
		t.Errorf("audit actor = %+v", log)
	}
}

// TestLoneSecretMatchedMoto: a key ID found without a secret in one file and
// its secret found without an ID in another (with a decoy beside it) make
// one verified key; the decoy stays a secret without key ID, and an ID none
// of the lone secrets fits stays unpaired and unverified.
func TestLoneSecretMatchedMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	id, sec := m.UserKey(t, "dora")
	otherID, _ := m.UserKey(t, "erin")
	decoy := testkeys.Secret(rand.New(rand.NewPCG(9, 9)))
	fs := scanDir(t, map[string]string{
		"deploy.sh":   "export AWS_ACCESS_KEY_ID=" + id + "\n",
		"other.sh":    "export AWS_ACCESS_KEY_ID=" + otherID + "\n",
		"prod.env":    "AWS_SECRET_ACCESS_KEY=" + sec + "\n",
		"staging.env": "AWS_SECRET_ACCESS_KEY=" + decoy + "\n",
	})
	found := byKey(fs)
	if len(fs) != 4 || found[id] == nil || found[otherID] == nil || found[""] == nil {
		t.Fatalf("got %d findings, want two key IDs alone and two secrets without key ID", len(fs))
	}
	if n := len(found[id].Alternates); n != 2 {
		t.Fatalf("%s has %d secrets to try, want the 2 found without a key ID", id, n)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v := verify.New(verify.Options{Endpoint: m.URL, Cache: st, Credentials: m.AdminProvider()})
	mustRun(t, ctx, fs, v, nil)
	if f := found[id]; f.Verification == nil || f.Verification.Status != "live" || f.Secret.Reveal() != sec {
		t.Errorf("%s: verification %+v, secret %v; want live with the secret from prod.env", id, f.Verification, f.Secret)
	}
	if f := found[otherID]; f.Verification != nil || f.Paired() {
		t.Errorf("%s: verification %+v, paired %v; want neither (no lone secret is its own)", otherID, f.Verification, f.Paired())
	}
	for _, f := range fs {
		if f.KeyID == "" && f.Verification != nil {
			t.Errorf("a secret without key ID was verified on its own: %+v", f.Verification)
		}
	}
}

// TestRootKeyIsCritical: a key STS names as an account's root user is
// critical in every format, with who can delete it, and the responder
// leaves it alone (no IAM user can act on it). STS is a small endpoint on
// loopback shaped like AWS's, since moto names no root keys once it
// checks signatures.
func TestRootKeyIsCritical(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if !strings.Contains(string(body), "Action=GetCallerIdentity") {
			http.Error(w, "only GetCallerIdentity here", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
			`<Arn>arn:aws:iam::123456789012:root</Arn><UserId>123456789012</UserId><Account>123456789012</Account>`+
			`</GetCallerIdentityResult><ResponseMetadata><RequestId>7c4e0a6e-0000-4000-8000-000000000001</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
	}))
	defer srv.Close()
	rng := rand.New(rand.NewPCG(12, 12))
	id := testkeys.KeyID(rng, "AKIA", 123456789012)
	fs := scanDir(t, map[string]string{"root.env": envFile(id, testkeys.Secret(rng))})
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want 1", len(fs))
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v := verify.New(verify.Options{Endpoint: srv.URL, Cache: st})
	mustRun(t, context.Background(), fs, v, nil)
	f := fs[0]
	if f.Severity != finding.SeverityCritical || f.Verification == nil || !f.Verification.Root {
		t.Fatalf("severity %q, verification %+v; want critical, root", f.Severity, f.Verification)
	}
	for format, want := range map[string]string{
		"text":  "ROOT KEY",
		"json":  `"root": true`,
		"sarif": "ROOT AWS access key",
	} {
		var b strings.Builder
		if err := report.Write(&b, format, fs, report.Options{}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) || format != "sarif" && !strings.Contains(b.String(), "critical") ||
			format == "sarif" && !strings.Contains(b.String(), `"level": "error"`) {
			t.Errorf("%s report lacks %q or the severity:\n%s", format, want, b.String())
		}
	}
}

// TestLeakedAt: evidence is read from the earliest commit date of a key's
// locations; files on disk have none.
func TestLeakedAt(t *testing.T) {
	tests := []struct {
		dates []string
		want  string
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{"2024-03-01T10:00:00Z", "2023-12-24T08:30:00Z", ""}, "2023-12-24T08:30:00Z"},
		{[]string{"not a date", "2024-03-01T10:00:00+02:00"}, "2024-03-01T08:00:00Z"},
	}
	for _, tt := range tests {
		f := &finding.Finding{}
		for _, d := range tt.dates {
			f.Locations = append(f.Locations, finding.Location{Date: d})
		}
		got := leakedAt(f)
		if s := stamp(got); s != tt.want {
			t.Errorf("leakedAt(%q) = %q, want %q", tt.dates, s, tt.want)
		}
	}
}

// TestReachSteersResponseMoto: what a live key could do decides its
// severity in every format, and with respond_min_severity = "critical"
// whether it is acted on: the key of a user allowed everything is deleted;
// the key of a user allowed nothing is reported (medium) and left alone,
// the audit saying why. Its reach is read with the responder's
// credentials, never the key's.
func TestReachSteersResponseMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	adminID, adminSecret := m.UserKey(t, "ops")
	if _, err := m.IAM().AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("ops"),
		PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")}); err != nil {
		t.Fatal(err)
	}
	emptyID, emptySecret := m.UserKey(t, "intern")
	fs := scanDir(t, map[string]string{"ops.env": envFile(adminID, adminSecret), "intern.env": envFile(emptyID, emptySecret)})
	st, v, r := motoCheck(t, m, respond.Options{Policy: respond.Delete, MinSeverity: finding.SeverityCritical})
	mustRun(t, ctx, fs, v, r)
	found := byKey(fs)
	ops, intern := found[adminID], found[emptyID]
	if ops.Severity != finding.SeverityCritical || ops.Verification.Reach == nil || ops.Verification.Reach.Level != finding.ReachAdmin ||
		ops.Response == nil || ops.Response.Action != string(respond.ActionDeleted) || m.KeyStatus(t, "ops", adminID) != "" {
		t.Errorf("the administrator's key: severity %s, reach %+v, response %+v; want critical, admin, deleted", ops.Severity, ops.Verification.Reach, ops.Response)
	}
	if intern.Severity != "medium" || intern.Verification.Reach == nil || intern.Verification.Reach.Level != finding.ReachNone ||
		intern.Response == nil || !strings.Contains(intern.Response.Reason, "below respond_min_severity critical") || m.KeyStatus(t, "intern", emptyID) != "Active" {
		t.Errorf("the empty user's key: severity %s, reach %+v, response %+v; want medium, none, left alone", intern.Severity, intern.Verification.Reach, intern.Response)
	}
	if log, _ := st.AuditLog(ctx, emptyID); len(log) == 0 || !slices.ContainsFunc(log, func(r store.AuditRecord) bool {
		return r.Action == "reach" && r.Detail == "nothing notable"
	}) {
		t.Errorf("the audit log lacks the reach of the empty user's key: %+v", log)
	}
	var b strings.Builder
	if err := report.Write(&b, "text", fs, report.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"reach        administrator: it can do everything", "admin: * on * (AdministratorAccess (attached to user ops))",
		"reach        nothing notable"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestLiveHookBeforeAction: the Live hook hears of each key proved live,
// once, with its reach known and before it is acted on (so news stored
// then survives a run that dies during the action); not of a dead key.
func TestLiveHookBeforeAction(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	liveID, liveSecret := m.UserKey(t, "dana")
	deadID, deadSecret := m.UserKey(t, "erin")
	m.DeleteKey(t, "erin", deadID)
	fs := scanDir(t, map[string]string{"live.env": envFile(liveID, liveSecret), "dead.env": envFile(deadID, deadSecret)})
	_, v, r := motoCheck(t, m, respond.Options{Policy: respond.Delete})
	var mu sync.Mutex
	var heard []string
	hooks := Hooks{Live: func(_ context.Context, f *finding.Finding) error {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, fmt.Sprintf("%s reach=%v acted=%v key=%s", f.KeyID, f.Verification.Reach != nil, f.Response != nil, m.KeyStatus(t, "dana", liveID)))
		return nil
	}}
	if err := RunWith(ctx, fs, v, r, hooks); err != nil {
		t.Fatal(err)
	}
	want := liveID + " reach=true acted=false key=Active"
	if len(heard) != 1 || heard[0] != want {
		t.Errorf("heard %q, want [%q]", heard, want)
	}
	if f := byKey(fs)[liveID]; f.Response == nil || f.Response.Action != string(respond.ActionDeleted) {
		t.Errorf("after the hook, the live key was not deleted: %+v", f.Response)
	}
}

// motoCheck is a state file, a verifier and a responder (with opts) acting
// as moto's admin against moto.
func motoCheck(t *testing.T, m *awstest.Server, opts respond.Options) (*store.Store, *verify.Verifier, *respond.Responder) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts.Credentials, opts.Endpoint, opts.Store = m.AdminProvider(), m.URL, st
	r, err := respond.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return st, verify.New(verify.Options{Endpoint: m.URL, Cache: st, Credentials: m.AdminProvider()}), r
}

// TestStageNews: the stage every scan shares hands news to the outbox
// twice: of each live key alone before it is acted on, then of all the
// findings with what was done; with no verifier, only the second (nothing
// is live then), and with no News, none.
func TestStageNews(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	liveID, liveSecret := m.UserKey(t, "fay")
	fs := scanDir(t, map[string]string{"live.env": envFile(liveID, liveSecret)})
	_, v, r := motoCheck(t, m, respond.Options{Policy: respond.Delete})
	var mu sync.Mutex
	var heard []string
	news := func(_ context.Context, fs []*finding.Finding) error {
		mu.Lock()
		defer mu.Unlock()
		var acted []string
		for _, f := range fs {
			acted = append(acted, fmt.Sprintf("%s acted=%v", f.KeyID, f.Response != nil))
		}
		heard = append(heard, strings.Join(acted, ";"))
		return nil
	}
	if err := (Stage{Verifier: v, Responder: r, News: news}).Run(ctx, fs); err != nil {
		t.Fatal(err)
	}
	want := []string{liveID + " acted=false", liveID + " acted=true"}
	if strings.Join(heard, "|") != strings.Join(want, "|") {
		t.Errorf("news %q, want %q", heard, want)
	}
	heard = nil
	if err := (Stage{News: news}).Run(ctx, fs); err != nil || len(heard) != 1 {
		t.Errorf("without a verifier: news %q, %v; want it told once", heard, err)
	}
}

// TestUnsettled: what the stage could not finish with is unsettled; what it
// finished with, or never asked about, is not.
func TestUnsettled(t *testing.T) {
	for _, tt := range []struct {
		name      string
		f         finding.Finding
		unsettled bool
		unchecked bool // UnsettledOrUnchecked's answer
	}{
		{name: "not verified at all", f: finding.Finding{}, unsettled: false, unchecked: true},
		{name: "verification did not finish", f: finding.Finding{Verification: &finding.Verification{Status: "error", Error: "throttled"}}, unsettled: true, unchecked: true},
		{name: "invalid", f: finding.Finding{Verification: &finding.Verification{Status: "invalid"}}},
		{name: "deleted", f: finding.Finding{Verification: &finding.Verification{Status: "live"}, Response: &finding.Response{Action: "deleted"}}},
		{name: "refused by a rail", f: finding.Finding{Verification: &finding.Verification{Status: "live"}, Response: &finding.Response{Action: "skipped", Reason: "refused"}}},
		{name: "action failed", f: finding.Finding{Verification: &finding.Verification{Status: "live"}, Response: &finding.Response{Action: "failed", Reason: "AccessDenied"}}, unsettled: true, unchecked: true},
		{name: "acted, but not recorded", f: finding.Finding{Verification: &finding.Verification{Status: "live"}, Response: &finding.Response{Action: "deleted", Error: "audit log: disk full"}}, unsettled: true, unchecked: true},
	} {
		if got := Unsettled(&tt.f) != ""; got != tt.unsettled {
			t.Errorf("%s: Unsettled = %q, want unsettled %v", tt.name, Unsettled(&tt.f), tt.unsettled)
		}
		if got := UnsettledOrUnchecked(&tt.f) != ""; got != tt.unchecked {
			t.Errorf("%s: UnsettledOrUnchecked = %q, want %v", tt.name, UnsettledOrUnchecked(&tt.f), tt.unchecked)
		}
	}
}
