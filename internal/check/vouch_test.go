package check

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyburn/keyburn/internal/awsnotice"
	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/store"
)

// motoAccount is the account moto puts every user in.
const motoAccount = "123456789012"

// TestVouchedByAWSMoto is the rails table for keys AWS's own notice
// vouches for: no STS verification (there is no secret), every other rail
// held, the owner found through IAM, AWS's quarantine policy named.
func TestVouchedByAWSMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		opts       respond.Options
		account    string // the notice's (default moto's)
		self       bool   // the notice names the responder's own key
		gone       bool   // the key is deleted before the notice
		keyID      string // the notice names this key instead (one moto does not hold)
		replaced   bool   // a replacement key is made (rotate)
		quarantine bool
		wantStatus string // the key's status after: Active, Inactive, "" (deleted)
		verdict    string
		action     string
		reason     string // in the response's reason or the verdict's error
		audit      string // a step the audit log holds
	}{
		{name: "deleted, quarantine named", opts: respond.Options{Policy: respond.Delete}, quarantine: true,
			wantStatus: "", verdict: "exposed", action: "deleted", audit: "vouch"},
		{name: "deactivated", opts: respond.Options{Policy: respond.Deactivate},
			wantStatus: "Inactive", verdict: "exposed", action: "deactivated", audit: "deactivate"},
		{name: "scheduled after a soak", opts: respond.Options{Policy: respond.Delete, Soak: 3600e9},
			wantStatus: "Inactive", verdict: "exposed", action: "deactivated, deletion scheduled", audit: "schedule-delete"},
		{name: "a dry run changes nothing", opts: respond.Options{Policy: respond.Delete, DryRun: true},
			wantStatus: "Active", verdict: "exposed", action: "dry-run", audit: "vouch"},
		{name: "a denied account is left alone", opts: respond.Options{Policy: respond.Delete, DenyAccounts: []string{motoAccount}},
			wantStatus: "Active", verdict: "exposed", action: "skipped", reason: "deny list", audit: "refuse"},
		{name: "outside the allow list", opts: respond.Options{Policy: respond.Delete, AllowAccounts: []string{"111111111111"}},
			wantStatus: "Active", verdict: "exposed", action: "skipped", reason: "allow list", audit: "refuse"},
		{name: "a canary account is never touched", opts: respond.Options{Policy: respond.Delete, CanaryAccounts: []string{motoAccount}},
			wantStatus: "Active", verdict: "exposed", action: "skipped", reason: "canary", audit: "refuse"},
		{name: "the responder's own key", opts: respond.Options{Policy: respond.Delete}, self: true,
			wantStatus: "Active", verdict: "exposed", action: "skipped", reason: "responder's own key", audit: "refuse"},
		{name: "a notice whose account AWS contradicts", opts: respond.Options{Policy: respond.Delete}, account: "999999999999",
			wantStatus: "Active", verdict: "error", action: "skipped", reason: "AWS puts key"},
		{name: "a key deleted already", opts: respond.Options{Policy: respond.Delete}, gone: true,
			wantStatus: "", verdict: "invalid", action: "skipped", reason: "not live"},
		{name: "rotated: a replacement first, then deleted", opts: respond.Options{Policy: respond.Rotate}, replaced: true,
			wantStatus: "", verdict: "exposed", action: "deleted", audit: "rotate-store"},
		{name: "a temporary key is told, not guessed at", opts: respond.Options{Policy: respond.Delete}, keyID: "ASIAQYLPMN5HHHFPZAM2",
			wantStatus: "Active", verdict: "exposed", action: "skipped", reason: "temporary key"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := fmt.Sprintf("vouched%d", i)
			keyID, _ := m.UserKey(t, user)
			if tt.self {
				user, keyID = "admin", m.Admin.AccessKeyID
			}
			if tt.quarantine {
				if _, err := m.IAM().AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(user),
					PolicyArn: aws.String("arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2")}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.gone {
				m.DeleteKey(t, user, keyID)
			}
			account := tt.account
			if account == "" {
				account = motoAccount
			}
			noticeKey := keyID
			if tt.keyID != "" {
				noticeKey = tt.keyID
			}
			n, err := awsnotice.Parse([]byte(awstest.HealthNotice(account, noticeKey)))
			if err != nil {
				t.Fatal(err)
			}
			fs := n.Findings()
			st, _, r := motoCheck(t, m, tt.opts)
			// No verifier: a vouched key is never sent to STS.
			if err := (Stage{Responder: r}).Run(ctx, fs); err != nil {
				t.Fatalf("stage: %v", err)
			}
			f := fs[0]
			if got := m.KeyStatus(t, user, keyID); got != tt.wantStatus {
				t.Errorf("key status %q, want %q", got, tt.wantStatus)
			}
			if f.Verification == nil || f.Verification.Status != tt.verdict {
				t.Fatalf("verification %+v, want %s", f.Verification, tt.verdict)
			}
			action, reason := "", f.Verification.Error
			if f.Response != nil {
				action, reason = f.Response.Action, reason+" "+f.Response.Reason+" "+f.Response.Error
			}
			if action != tt.action || !strings.Contains(reason, tt.reason) {
				t.Errorf("action %q (%s), want %q with %q", action, reason, tt.action, tt.reason)
			}
			if tt.verdict == "exposed" && !tt.self && tt.keyID == "" && tt.opts.DenyAccounts == nil && tt.opts.AllowAccounts == nil && tt.opts.CanaryAccounts == nil &&
				f.Verification.ARN != "arn:aws:iam::"+motoAccount+":user/"+user {
				t.Errorf("owner %q: want user %s found through IAM", f.Verification.ARN, user)
			}
			if replaced := f.Response != nil && f.Response.Replacement != nil; replaced != tt.replaced {
				t.Errorf("replacement %+v, want one: %v", f.Response, tt.replaced)
			}
			if tt.quarantine && !slices.Equal(f.Verification.Quarantine, []string{"AWSCompromisedKeyQuarantineV2"}) {
				t.Errorf("quarantine %v, want AWSCompromisedKeyQuarantineV2", f.Verification.Quarantine)
			}
			log, err := st.AuditLog(ctx, noticeKey)
			if err != nil {
				t.Fatal(err)
			}
			if tt.audit != "" && !slices.ContainsFunc(log, func(rec store.AuditRecord) bool { return rec.Action == tt.audit }) {
				t.Errorf("audit log %v: want a %s step", steps(log), tt.audit)
			}
			if tt.audit == "vouch" {
				i := slices.IndexFunc(log, func(rec store.AuditRecord) bool { return rec.Action == "vouch" })
				if d := log[i].Detail; !strings.Contains(d, awsnotice.By) || !strings.Contains(d, "not verified with STS") {
					t.Errorf("vouch step %q: want it to say who vouched and that STS was not asked", d)
				}
				if tt.quarantine && !strings.Contains(log[i].Detail, "AWSCompromisedKeyQuarantineV2") {
					t.Errorf("vouch step %q: want the quarantine policy named", log[i].Detail)
				}
			}
			if tt.verdict == "error" && len(log) > 0 {
				t.Errorf("audit log %v: a notice AWS contradicts must lead to nothing, not even a read in the account", steps(log))
			}
		})
	}
}

func steps(log []store.AuditRecord) []string {
	var out []string
	for _, r := range log {
		out = append(out, r.Action+":"+r.Outcome)
	}
	return out
}

// TestVouchedWithoutResponder: with no responder a notice's key is
// reported as AWS said, and nothing is called.
func TestVouchedWithoutResponder(t *testing.T) {
	n, err := awsnotice.Parse([]byte(awstest.HealthNotice(motoAccount, "AKIAQYLPMN5HHHFPZAM2")))
	if err != nil {
		t.Fatal(err)
	}
	fs := n.Findings()
	var news []*finding.Finding
	st := Stage{News: func(_ context.Context, fs []*finding.Finding) error { news = append(news, fs...); return nil }}
	if err := st.Run(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	if v := fs[0].Verification; v != nil && v.Status != "exposed" {
		t.Errorf("verification %+v: want none or exposed", v)
	}
	if fs[0].Response != nil {
		t.Errorf("response %+v with no responder", fs[0].Response)
	}
	if len(news) != 1 {
		t.Errorf("%d news, want 1 (the findings after the stage)", len(news))
	}
}
