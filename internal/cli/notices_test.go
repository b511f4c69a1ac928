package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/store"
)

// TestAWSNoticesCommand: 'scan aws-notices' drains a queue once. A dry
// run changes nothing, on the queue either; then a real run deletes the
// notice's key (its audit trail says AWS vouched for it, and AWS's
// quarantine is named), drops another event, parks a malformed one in
// the state, and leaves the queue empty.
func TestAWSNoticesCommand(t *testing.T) {
	m, front := motoFront(t)
	ctx := context.Background()
	keyID, _ := m.UserKey(t, "exposed")
	if _, err := m.IAM().AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("exposed"),
		PolicyArn: aws.String("arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2")}); err != nil {
		t.Fatal(err)
	}
	q := m.NewQueue(t, "health",
		awstest.HealthNotice("123456789012", keyID),
		`{"version":"0","id":"o-1","detail-type":"AWS Health Event","source":"aws.health","account":"123456789012","detail":{"eventTypeCode":"AWS_EC2_OPERATIONAL_ISSUE"}}`,
		`{"detail-type":"AWS Health Event","source":"aws.health","account":"123456789012","detail":{"eventTypeCode":"AWS_RISK_CREDENTIALS_EXPOSED","affectedEntities":[]}}`)
	url := q.URL
	messages := func() string { v, f := q.Count(t); return v + "+" + f }
	state := filepath.Join(t.TempDir(), "state.db")
	args := []string{"aws-notices", "--queue", url, "--respond=delete", "--aws-endpoint", front.URL, "--state", state}

	code, out, stderr := runCLI(append(args, "--dry-run", "--fail-on", "live")...)
	if code != exitFindings || !strings.Contains(out, keyID) || !strings.Contains(out, "dry-run") ||
		!strings.Contains(stderr, "3 message(s) read") || !strings.Contains(stderr, "would be parked") {
		t.Errorf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	if s := m.KeyStatus(t, "exposed", keyID); s != "Active" {
		t.Errorf("after a dry run the key is %q", s)
	}
	if got := messages(); got != "3+0" {
		t.Errorf("after a dry run the queue holds %s messages (visible+in flight), want all 3 back", got)
	}

	code, out, stderr = runCLI(args...)
	if code != exitFindings {
		t.Errorf("exit %d, want 1 (a key found)\n%s\n%s", code, out, stderr)
	}
	if s := m.KeyStatus(t, "exposed", keyID); s != "" {
		t.Errorf("the key is %q, want deleted\n%s", s, stderr)
	}
	for _, want := range []string{"vouched by   AWS Health AWS_RISK_CREDENTIALS_EXPOSED", "verdict      exposed", "action       deleted",
		"AWSCompromisedKeyQuarantineV2"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "1 live, 0 deactivated, 1 deleted") || !strings.Contains(stderr, "every live key found is out of use now") {
		t.Errorf("the summary does not count the key AWS vouched for as live and deleted:\n%s", stderr)
	}
	if !strings.Contains(stderr, "3 message(s) read") || !strings.Contains(stderr, "1 other event(s) dropped, 1 parked") {
		t.Errorf("stderr does not account for the three messages:\n%s", stderr)
	}
	if got := messages(); got != "0+0" {
		t.Errorf("the queue holds %s messages, want none", got)
	}
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	parked, err := st.Parked(ctx)
	if err != nil || len(parked) != 1 || !strings.Contains(parked[0].LastError, "no access key ID") {
		t.Errorf("parked %+v, %v: want the malformed notice", parked, err)
	}
	code, out, _ = runCLI("audit", "--state", state, "--key", keyID, "--format", "json")
	if code != exitClean || !strings.Contains(out, "vouch") || !strings.Contains(out, "not verified with STS") {
		t.Errorf("audit: exit %d\n%s", code, out)
	}
	code, _, stderr = runCLI("aws-notices", "--queue", url, "--state", state)
	if code != exitError || !strings.Contains(stderr, "--respond=deactivate, delete or rotate") {
		t.Errorf("without --respond: exit %d\n%s", code, stderr)
	}
}

// TestRotateEndToEnd: 'scan dir --respond=rotate' on a leaked live key:
// the user's replacement is readable from Secrets Manager and works (STS
// answers for it as the user), the leaked key ends deleted, the report
// says where the replacement is, and no new secret is printed.
func TestRotateEndToEnd(t *testing.T) {
	m, front := motoFront(t)
	ctx := context.Background()
	id, sec := m.UserKey(t, "app")
	dir := t.TempDir()
	keyFile(t, dir, "app.env", id, sec)
	state := filepath.Join(t.TempDir(), "state.db")
	code, out, stderr := runCLI("dir", "--respond=rotate", "--soak", "1h", "--aws-endpoint", front.URL, "--state", state, dir)
	if code != exitFindings || !strings.Contains(out, "replacement  AKIA") || !strings.Contains(out, "in AWS Secrets Manager as keyburn/rotated/123456789012/app") {
		t.Fatalf("rotate: exit %d\n%s\n%s", code, out, stderr)
	}
	if s := m.KeyStatus(t, "app", id); s != "Inactive" {
		t.Errorf("after rotate with a soak the leaked key is %q, want Inactive until due", s)
	}
	sm := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", Credentials: m.AdminProvider(), BaseEndpoint: aws.String(m.URL)})
	got, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("keyburn/rotated/123456789012/app")})
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ AccessKeyId, SecretAccessKey, Replaces string }
	if err := json.Unmarshal([]byte(aws.ToString(got.SecretString)), &v); err != nil {
		t.Fatal(err)
	}
	if v.Replaces != id || !strings.Contains(out, v.AccessKeyId) || strings.Contains(out+stderr, v.SecretAccessKey) {
		t.Errorf("secret: replaces %s, key %s in the report, its secret printed: %v", v.Replaces, v.AccessKeyId, strings.Contains(out+stderr, v.SecretAccessKey))
	}
	who, err := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL),
		Credentials: credentials.NewStaticCredentialsProvider(v.AccessKeyId, v.SecretAccessKey, "")}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || !strings.HasSuffix(aws.ToString(who.Arn), ":user/app") {
		t.Errorf("the replacement does not work: %v, %v", who, err)
	}
	// The rotation is in the audit log, and the leaked key's deletion is
	// scheduled for when its soak window ends.
	code, out, stderr = runCLI("audit", "--state", state, "--key", id)
	if code != exitClean || !strings.Contains(out, "rotate-store") {
		t.Errorf("audit: %d\n%s", code, out)
	}
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	due, err := st.DueDeletions(ctx, time.Now().Add(2*time.Hour))
	st.Close()
	if err != nil || len(due) != 1 || due[0].KeyID != id {
		t.Fatalf("due deletions %+v, %v", due, err)
	}
}

// TestAWSNoticesResponderFirst: a run whose responder cannot start (STS
// refuses to say who it is; SQS answers) takes nothing off the queue, and
// says why.
func TestAWSNoticesResponderFirst(t *testing.T) {
	m, front := motoFront(t)
	keyID, _ := m.UserKey(t, "waiting")
	q := m.NewQueue(t, "health", awstest.HealthNotice("123456789012", keyID))
	front.SetIntercept(func(action string) *awstest.APIError {
		if action == "GetCallerIdentity" {
			return &awstest.APIError{Status: 403, Code: "AccessDenied", Message: "not authorized"}
		}
		return nil
	})
	code, _, stderr := runCLI("aws-notices", "--queue", q.URL, "--respond=delete", "--aws-endpoint", front.URL,
		"--state", filepath.Join(t.TempDir(), "state.db"))
	if code != exitError || !strings.Contains(stderr, "who is the responder") || strings.Contains(stderr, "message(s) read") {
		t.Errorf("exit %d, want 2 before reading the queue\n%s", code, stderr)
	}
	if v, f := q.Count(t); v != "1" || f != "0" {
		t.Errorf("the queue holds %s visible, %s in flight: want the notice untouched", v, f)
	}
}
