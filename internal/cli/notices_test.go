package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

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

	code, out, stderr := runCLI(append(args, "--dry-run")...)
	if code != exitFindings || !strings.Contains(out, keyID) || !strings.Contains(out, "dry-run") {
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
	if code != exitError || !strings.Contains(stderr, "--respond=deactivate or --respond=delete") {
		t.Errorf("without --respond: exit %d\n%s", code, stderr)
	}
}
