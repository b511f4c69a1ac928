package respond

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// fakeIAM holds one user's keys and records the calls.
type fakeIAM struct {
	keys  map[string]iamtypes.StatusType
	calls []string
}

func (f *fakeIAM) ListAccessKeys(_ context.Context, in *iam.ListAccessKeysInput, _ ...func(*iam.Options)) (*iam.ListAccessKeysOutput, error) {
	f.calls = append(f.calls, "list")
	out := &iam.ListAccessKeysOutput{}
	if aws.ToString(in.UserName) != "alice" {
		return out, nil
	}
	for id, st := range f.keys {
		out.AccessKeyMetadata = append(out.AccessKeyMetadata, iamtypes.AccessKeyMetadata{AccessKeyId: aws.String(id), Status: st})
	}
	return out, nil
}

func (f *fakeIAM) GetAccessKeyLastUsed(context.Context, *iam.GetAccessKeyLastUsedInput, ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error) {
	f.calls = append(f.calls, "last-used")
	return &iam.GetAccessKeyLastUsedOutput{AccessKeyLastUsed: &iamtypes.AccessKeyLastUsed{}}, nil
}

func (f *fakeIAM) UpdateAccessKey(_ context.Context, in *iam.UpdateAccessKeyInput, _ ...func(*iam.Options)) (*iam.UpdateAccessKeyOutput, error) {
	f.calls = append(f.calls, "update")
	f.keys[aws.ToString(in.AccessKeyId)] = in.Status
	return &iam.UpdateAccessKeyOutput{}, nil
}

func (f *fakeIAM) PutRolePolicy(_ context.Context, in *iam.PutRolePolicyInput, _ ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error) {
	f.calls = append(f.calls, "put-role-policy:"+aws.ToString(in.RoleName))
	if !strings.Contains(aws.ToString(in.PolicyDocument), "aws:TokenIssueTime") || aws.ToString(in.PolicyName) != revokeSessionsPolicy {
		return nil, &smithy.GenericAPIError{Code: "MalformedPolicyDocument"}
	}
	return &iam.PutRolePolicyOutput{}, nil
}

func (f *fakeIAM) DeleteAccessKey(_ context.Context, in *iam.DeleteAccessKeyInput, _ ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error) {
	f.calls = append(f.calls, "delete")
	if _, ok := f.keys[aws.ToString(in.AccessKeyId)]; !ok {
		return nil, &smithy.GenericAPIError{Code: "NoSuchEntity"}
	}
	delete(f.keys, aws.ToString(in.AccessKeyId))
	return &iam.DeleteAccessKeyOutput{}, nil
}

const key = "AKIAROSDW5AABZW3VLYZ"

func responder(t *testing.T, fake *fakeIAM, opts Options) *Responder {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts.Store = st
	opts.testOnlyIAM = func(string) IAMAPI { return fake }
	// No network: build the responder by hand, as New would after learning
	// who it is.
	return &Responder{opts: opts, selfKey: "AKIASELFSELFSELFSELF", selfARN: "arn:aws:iam::123456789012:user/responder",
		clients: map[string]IAMAPI{}, clientMu: make(chan struct{}, 1)}
}

func live(arn string) verify.Verdict {
	return verify.Verdict{Status: verify.Live, ARN: arn, Account: "123456789012"}
}

func TestRespondRails(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		keyID  string
		vd     verify.Verdict
		action string
		reason string
		calls  string
	}{
		{"deletes a live key", Options{Policy: Delete}, key, live("arn:aws:iam::123456789012:user/alice"), ActionDeleted, "", "list,last-used,update,delete"},
		{"deactivates only", Options{Policy: Deactivate}, key, live("arn:aws:iam::123456789012:user/alice"), ActionDeactivated, "", "list,last-used,update"},
		{"dry run", Options{Policy: Delete, DryRun: true}, key, live("arn:aws:iam::123456789012:user/alice"), ActionDryRun, "", "list,last-used"},
		{"not live", Options{Policy: Delete}, key, verify.Verdict{Status: verify.Invalid}, ActionSkipped, "not live", ""},
		{"canary", Options{Policy: Delete}, key, verify.Verdict{Status: verify.Canary}, ActionSkipped, "not live (canary)", ""},
		{"own key", Options{Policy: Delete}, "AKIASELFSELFSELFSELF", live("arn:aws:iam::123456789012:user/responder"), ActionSkipped, "own key", ""},
		{"deny list", Options{Policy: Delete, DenyAccounts: []string{"123456789012"}}, key, live("arn:aws:iam::123456789012:user/alice"), ActionSkipped, "deny list", ""},
		{"allow list", Options{Policy: Delete, AllowAccounts: []string{"999999999999"}}, key, live("arn:aws:iam::123456789012:user/alice"), ActionSkipped, "allow list", ""},
		{"not a user", Options{Policy: Delete}, key, live("arn:aws:sts::123456789012:assumed-role/r/s"), ActionSkipped, "not belong to an IAM user", ""},
		{"temporary, not a role", Options{Policy: Delete}, "ASIAROSDW5AABZW3VLYZ", live("arn:aws:iam::123456789012:user/alice"), ActionSkipped, "not a role session", ""},
		{"temporary role session", Options{Policy: Delete}, "ASIAROSDW5AABZW3VLYZ", live("arn:aws:sts::123456789012:assumed-role/deploy/ci"), ActionRevoked, "", "put-role-policy:deploy"},
		{"temporary, dry run", Options{Policy: Delete, DryRun: true}, "ASIAROSDW5AABZW3VLYZ", live("arn:aws:sts::123456789012:assumed-role/deploy/ci"), ActionDryRun, "revoke role deploy", ""},
		{"owner mismatch", Options{Policy: Delete}, key, live("arn:aws:iam::123456789012:user/mallory"), ActionFailed, "not user mallory's", "list"},
		{"policy off", Options{Policy: Off}, key, live("arn:aws:iam::123456789012:user/alice"), ActionNone, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeIAM{keys: map[string]iamtypes.StatusType{key: iamtypes.StatusTypeActive}}
			r := responder(t, fake, tt.opts)
			res := r.Respond(context.Background(), tt.keyID, tt.vd)
			if res.Action != tt.action || !strings.Contains(res.Reason, tt.reason) || strings.Join(fake.calls, ",") != tt.calls {
				t.Errorf("Respond = %q (%q) after calls %q; want %q (%q) after %q", res.Action, res.Reason, fake.calls, tt.action, tt.reason, tt.calls)
			}
		})
	}
}

// TestRespondIdempotent: a second delete of a key already gone succeeds,
// and an inactive key is not deactivated again.
func TestRespondIdempotent(t *testing.T) {
	fake := &fakeIAM{keys: map[string]iamtypes.StatusType{key: iamtypes.StatusTypeInactive}}
	r := responder(t, fake, Options{Policy: Delete})
	res := r.Respond(context.Background(), key, live("arn:aws:iam::123456789012:user/alice"))
	if res.Action != ActionDeleted || strings.Contains(strings.Join(fake.calls, ","), "update") {
		t.Errorf("inactive key: %+v after %v", res, fake.calls)
	}
	a := auditor{r: r, ctx: context.Background(), keyID: key, user: "alice"}
	if res := r.delete(context.Background(), a, fake); res.Action != ActionDeleted {
		t.Errorf("deleting a key already gone: %+v, want success", res)
	}
	log, _ := r.opts.Store.AuditLog(context.Background(), key)
	if n := len(log); n < 5 || log[n-1].Detail != "already gone" {
		t.Errorf("audit log: %+v", log)
	}
}

func TestSoakSchedulesDeletion(t *testing.T) {
	fake := &fakeIAM{keys: map[string]iamtypes.StatusType{key: iamtypes.StatusTypeActive}}
	r := responder(t, fake, Options{Policy: Delete, Soak: -1})
	r.opts.Soak = 1 // a nanosecond: due at once
	res := r.Respond(context.Background(), key, live("arn:aws:iam::123456789012:user/alice"))
	if res.Action != ActionScheduled || fake.keys[key] != iamtypes.StatusTypeInactive {
		t.Fatalf("with a soak window: %+v, key %v", res, fake.keys[key])
	}
	done, err := r.DeleteDue(context.Background())
	if err != nil || len(done) != 1 || len(fake.keys) != 0 {
		t.Errorf("DeleteDue = %v, %v; keys left %v", done, err, fake.keys)
	}
}

func TestUserOf(t *testing.T) {
	tests := map[string]string{
		"arn:aws:iam::123456789012:user/alice":        "alice",
		"arn:aws:iam::123456789012:user/team/ops/bob": "bob",
		"arn:aws-us-gov:iam::123456789012:user/carol": "carol",
		"arn:aws:sts::123456789012:assumed-role/r/s":  "",
		"arn:aws:iam::123456789012:root":              "",
	}
	for arn, want := range tests {
		if got, _ := userOf(arn); got != want {
			t.Errorf("userOf(%q) = %q, want %q", arn, got, want)
		}
	}
}
