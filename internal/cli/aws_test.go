package cli

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/ghtest"
	"github.com/keyburn/keyburn/internal/pgtest"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/testkeys"
)

// TestRespondEndToEnd runs the CLI against moto_server: a live key in a file
// is verified, deactivated and deleted; the report shows verdict, action and
// what CloudTrail holds of the key's calls (read from a CloudTrail-shaped
// endpoint in front of moto, which has no event history); the audit command
// shows the steps and the evidence; a second run is a no-op.
func TestRespondEndToEnd(t *testing.T) {
	m := awstest.Start(t)
	id, sec := m.UserKey(t, "alice")
	front := awstest.StartFront(t, m)
	front.LookupEvents = func(c awstest.LookupEventsCall) (awstest.LookupEventsPage, *awstest.APIError) {
		if len(c.Body.LookupAttributes) != 1 || c.Body.LookupAttributes[0].AttributeValue != id || c.SignedBy != m.Admin.AccessKeyID {
			return awstest.LookupEventsPage{}, &awstest.APIError{Status: 400, Code: "InvalidLookupAttributesException", Message: "want the key's ID, signed by the responder"}
		}
		return awstest.LookupEventsPage{Events: []awstest.Event{{ID: "e1", Name: "ListBuckets", Source: "s3.amazonaws.com", Region: "us-east-1",
			SourceIP: "203.0.113.9", UserAgent: "aws-cli/2.15", AccessKeyID: id, Time: time.Now().Add(-time.Hour)}}}, nil
	}
	dir := t.TempDir()
	keyFile(t, dir, "app.env", id, sec)
	state := filepath.Join(t.TempDir(), "state.db")
	t.Setenv("AWS_ACCESS_KEY_ID", m.Admin.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.Admin.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	runCLI := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, nil, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	// Dry run first: nothing changes.
	code, out, stderr := runCLI("dir", "--respond=delete", "--dry-run", "--aws-endpoint", front.URL, "--state", state, dir)
	if code != exitFindings || !strings.Contains(out, "verdict      live  arn:aws:iam::123456789012:user/alice") || !strings.Contains(out, "action       dry-run") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	if s := m.KeyStatus(t, "alice", id); s != "Active" {
		t.Fatalf("after a dry run the key is %q", s)
	}
	code, out, stderr = runCLI("dir", "--format", "json", "--respond=delete", "--aws-endpoint", front.URL, "--state", state, dir)
	if code != exitFindings || !strings.Contains(out, `"status": "live"`) || !strings.Contains(out, `"action": "deleted"`) ||
		!strings.Contains(out, `"calls": 1`) || !strings.Contains(out, `"value": "203.0.113.9"`) {
		t.Fatalf("respond: exit %d\n%s\n%s", code, out, stderr)
	}
	// The summary counts what was done, and the hint fits it.
	if !strings.Contains(stderr, "1 live, 0 deactivated, 1 deleted") || !strings.Contains(stderr, "every live key found is out of use now") ||
		strings.Contains(stderr, "deactivate and rotate it in IAM") {
		t.Errorf("respond: summary and hint do not say the key was deleted:\n%s", stderr)
	}
	if strings.Contains(out+stderr, sec) {
		t.Errorf("the secret was printed")
	}
	if s := m.KeyStatus(t, "alice", id); s != "" {
		t.Errorf("after --respond=delete the key is %q, want deleted", s)
	}
	code, out, _ = runCLI("audit", "--state", state, "--key", id)
	for _, step := range []string{"owner-check", "last-used", "deactivate", "delete", "evidence", "1 call(s) by the key", "    from 203.0.113.9 (1)\n    calls ListBuckets (1)\n"} {
		if code != exitClean || !strings.Contains(out, step) {
			t.Errorf("audit lacks %s:\n%s", step, out)
		}
	}
	if strings.Contains(out, sec) {
		t.Errorf("the audit log shows the secret")
	}
	// Again: the key is gone, so it is invalid and nothing is done.
	code, out, _ = runCLI("dir", "--respond=delete", "--aws-endpoint", m.URL, "--state", state, dir)
	if code != exitFindings || !strings.Contains(out, "verdict      invalid") || !strings.Contains(out, "not live (invalid)") {
		t.Errorf("second run: exit %d\n%s", code, out)
	}
	// The HTML report carries each key's audit trail from the state file.
	code, out, _ = runCLI("dir", "--format", "html", "--verify", "--aws-endpoint", front.URL, "--state", state, dir)
	if code != exitFindings || !strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.Contains(out, id) || !strings.Contains(out, "audit trail (") ||
		!strings.Contains(out, "deactivate ok") || strings.Contains(out, sec) {
		t.Errorf("html report: exit %d\n%s", code, out)
	}
}

// awsEnv points the SDK's default credentials at moto's admin, and nowhere
// else (no shared files, no instance metadata).
func awsEnv(t *testing.T, m *awstest.Server) {
	t.Setenv("AWS_ACCESS_KEY_ID", m.Admin.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.Admin.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// motoFront starts moto with the SDK's credentials pointed at its admin,
// and a front for the calls moto lacks, with no CloudTrail events.
func motoFront(t *testing.T) (*awstest.Server, *awstest.Front) {
	t.Helper()
	m := awstest.Start(t)
	awsEnv(t, m)
	front := awstest.StartFront(t, m)
	front.NoEvents()
	return m, front
}

// keyFile writes an env file holding one key pair into dir.
func keyFile(t *testing.T, dir, name, id, sec string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", id, sec)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestDueDeletionWithoutFindings: a key deactivated with a soak window is
// deleted by a later responding run once due, even though that run finds
// nothing (the user removed the key from the file, as the hint says). The
// CLI says when the deletion is due, and `scan audit` lists it until then.
func TestDueDeletionWithoutFindings(t *testing.T) {
	m := awstest.Start(t)
	awsEnv(t, m)
	id, sec := m.UserKey(t, "gina")
	dir := t.TempDir()
	file := filepath.Join(dir, "app.env")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", id, sec)), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state.db")
	code, out, stderr := runCLI("dir", "--respond=delete", "--soak", "1s", "--aws-endpoint", m.URL, "--state", state, dir)
	if code != exitFindings || !strings.Contains(out, "deletion scheduled") || !strings.Contains(out, "deletion due at") {
		t.Fatalf("first run: exit %d\n%s\n%s", code, out, stderr)
	}
	if s := m.KeyStatus(t, "gina", id); s != "Inactive" {
		t.Fatalf("after the first run the key is %q, want Inactive", s)
	}
	code, out, _ = runCLI("audit", "--state", state)
	if code != exitClean || !strings.Contains(out, "PENDING DELETIONS (1)") || !strings.Contains(out, id) {
		t.Errorf("audit before the deletion: exit %d\n%s", code, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if n := len([]rune(l)); n > auditWidth {
			t.Errorf("audit line of %d columns: %q", n, l)
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // past the soak window (due times are whole seconds, rounded up)
	code, out, stderr = runCLI("dir", "--respond=delete", "--aws-endpoint", m.URL, "--state", state, dir)
	if code != exitClean || !strings.Contains(stderr, id+": deleted") {
		t.Errorf("a responding run with no findings: exit %d\n%s\n%s", code, out, stderr)
	}
	if s := m.KeyStatus(t, "gina", id); s != "" {
		t.Errorf("after the due deletion the key is %q, want deleted", s)
	}
	code, out, _ = runCLI("audit", "--state", state, "--format", "json")
	var rep struct {
		Pending []map[string]any `json:"pending_deletions"`
		Records []map[string]any `json:"records"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitClean {
		t.Fatalf("audit --format json: exit %d, %v\n%s", code, err, out)
	}
	if len(rep.Pending) != 0 || len(rep.Records) == 0 || rep.Records[0]["key_id"] != id || rep.Records[0]["KeyID"] != nil {
		t.Errorf("audit JSON: %d pending, records %v; want none pending and snake_case keys", len(rep.Pending), rep.Records)
	}
	if strings.Contains(out, sec) {
		t.Errorf("the audit shows the secret")
	}
}

// TestDeactivateHints: after --respond=deactivate the CLI does not say a
// deletion will follow (none was scheduled); after --respond=delete with a
// soak window it says one will, and by what.
func TestDeactivateHints(t *testing.T) {
	m := awstest.Start(t)
	awsEnv(t, m)
	state := filepath.Join(t.TempDir(), "state.db")
	for _, tc := range []struct {
		user string
		args []string
		want string
		not  string
	}{
		{"hugo", []string{"--respond=deactivate"}, "nothing is scheduled", "soak window ends"},
		{"ines", []string{"--respond=delete", "--soak", "1h"}, "1 deactivated key(s) will be deleted once their soak window ends", "nothing is scheduled"},
	} {
		id, sec := m.UserKey(t, tc.user)
		dir := t.TempDir()
		keyFile(t, dir, "app.env", id, sec)
		code, out, stderr := runCLI(append(append([]string{"dir"}, tc.args...), "--aws-endpoint", m.URL, "--state", state, dir)...)
		if code != exitFindings || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, tc.not) {
			t.Errorf("%v: exit %d, want a hint %q and none %q:\n%s\n%s", tc.args, code, tc.want, tc.not, out, stderr)
		}
		if s := m.KeyStatus(t, tc.user, id); s != "Inactive" {
			t.Errorf("%v: the key is %q, want Inactive", tc.args, s)
		}
	}
}

// TestOnlyVerifiedAndFailOnLive: trufflehog's --only-verified reports
// only the live key of two; --fail-on live reports both and fails only
// when one is live.
func TestOnlyVerifiedAndFailOnLive(t *testing.T) {
	m := awstest.Start(t)
	awsEnv(t, m)
	liveID, liveSec := m.UserKey(t, "jo")
	rng := rand.New(rand.NewPCG(22, 6))
	deadID, deadSec := testkeys.KeyID(rng, "AKIA", 0), testkeys.Secret(rng)
	both, deadOnly := t.TempDir(), t.TempDir()
	keyFile(t, both, "live.env", liveID, liveSec)
	keyFile(t, both, "dead.env", deadID, deadSec)
	keyFile(t, deadOnly, "dead.env", deadID, deadSec)
	state := filepath.Join(t.TempDir(), "state.db")
	code, out, stderr := runCLI("dir", "--only-verified", "--aws-endpoint", m.URL, "--state", state, both)
	if code != exitFindings || !strings.Contains(out, liveID) || strings.Contains(out, deadID) || !strings.Contains(stderr, "1 finding not live left out") {
		t.Errorf("--only-verified: exit %d, want only %s\n%s\n%s", code, liveID, out, stderr)
	}
	code, out, stderr = runCLI("dir", "--fail-on", "live", "--aws-endpoint", m.URL, "--state", state, deadOnly)
	if code != exitClean || !strings.Contains(out, deadID) {
		t.Errorf("--fail-on live, no live key: exit %d, want 0 with the key reported\n%s\n%s", code, out, stderr)
	}
	code, _, stderr = runCLI("dir", "--fail-on", "live", "--aws-endpoint", m.URL, "--state", state, both)
	if code != exitFindings {
		t.Errorf("--fail-on live with a live key: exit %d\n%s", code, stderr)
	}
}

// TestAuditNothingRecorded: on a machine where nothing was recorded yet,
// `scan audit` says so and succeeds, without creating a state file.
func TestAuditNothingRecorded(t *testing.T) {
	state := filepath.Join(t.TempDir(), "none", "state.db")
	code, out, stderr := runCLI("audit", "--state", state)
	if code != exitClean || !strings.Contains(stderr, "nothing recorded") || out != "" {
		t.Errorf("audit with no state: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, _ = runCLI("audit", "--state", state, "--format", "json")
	if code != exitClean || !strings.Contains(out, `"pending_deletions": []`) || !strings.Contains(out, `"records": []`) {
		t.Errorf("audit --format json with no state: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(state); err == nil {
		t.Errorf("audit created the state file")
	}
}

// TestVerifyWithABrokenAWSConfig: --verify alone goes on when keyburn's own
// AWS configuration cannot be read (it signs with each key), saying what it
// cannot do.
func TestVerifyWithABrokenAWSConfig(t *testing.T) {
	m := awstest.Start(t)
	id, sec := m.UserKey(t, "ivy")
	dir := t.TempDir()
	keyFile(t, dir, "k.env", id, sec)
	broken := filepath.Join(t.TempDir(), "config")
	os.WriteFile(broken, []byte("[profile x\nsource_profile = \n"), 0o644)
	t.Setenv("AWS_CONFIG_FILE", broken)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", broken)
	t.Setenv("AWS_PROFILE", "nope")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	code, out, stderr := runCLI("dir", "--verify", "--aws-endpoint", m.URL, "--state", filepath.Join(t.TempDir(), "s.db"), dir)
	if code != exitFindings || !strings.Contains(out, "verdict      live") || !strings.Contains(stderr, "AWS configuration") {
		t.Errorf("--verify with a broken AWS config: exit %d\n%s\n%s", code, out, stderr)
	}
}

// TestAlertsBacklog: `scan github --org acme --alerts` clears an
// organisation's open AWS secret-scanning alerts, end to end against moto
// and a GitHub-shaped API: both alerts of a live leaked pair (its key ID's
// and its secret's) are resolved as revoked after the key is deleted once;
// the alert of a key AWS does not know is left open, with the reason.
func TestAlertsBacklog(t *testing.T) {
	m, front := motoFront(t)
	keyID, sec := m.UserKey(t, "deployer")
	rng := rand.New(rand.NewPCG(14, 9))
	deadID, deadSecret := testkeys.KeyID(rng, "AKIA", 123456789012), testkeys.Secret(rng)
	api := ghtest.Start(t)
	api.Token = "ghp_backlog"
	t.Setenv("GITHUB_TOKEN", "ghp_backlog")
	blobApp, blobLib, commit := strings.Repeat("a1", 20), strings.Repeat("b2", 20), strings.Repeat("c3", 20)
	api.AddBlob(blobApp, []byte("AWS_ACCESS_KEY_ID="+keyID+"\nAWS_SECRET_ACCESS_KEY="+sec+"\n"))
	api.AddBlob(blobLib, []byte("aws_access_key_id = "+deadID+"\naws_secret_access_key = "+deadSecret+"\n"))
	api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 1, SecretType: "aws_access_key_id", Secret: keyID,
		Locations: []ghtest.Location{{Path: ".env", Line: 1, Blob: blobApp, Commit: commit}}})
	api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 2, SecretType: "aws_secret_access_key", Secret: sec,
		Locations: []ghtest.Location{{Path: ".env", Line: 2, Blob: blobApp, Commit: commit}}})
	api.AddAlert(&ghtest.Alert{Repo: "acme/lib", Number: 1, SecretType: "aws_access_key_id", Secret: deadID,
		Locations: []ghtest.Location{{Path: "creds", Line: 1, Blob: blobLib, Commit: commit}}})
	api.AddAlert(&ghtest.Alert{Repo: "acme/lib", Number: 2, SecretType: "slack_api_token", Secret: "xoxb-not-aws"})
	// An API answer naming a repository no name check passes: reported,
	// never fetched from, and the rest goes on.
	api.AddAlert(&ghtest.Alert{Repo: "acme/../../x", Number: 9, SecretType: "aws_access_key_id", Secret: deadID})
	state := filepath.Join(t.TempDir(), "state.db")

	code, out, stderr := runCLI("github", "--org", "acme", "--alerts", "--respond=delete", "--github-api", api.URL,
		"--aws-endpoint", front.URL, "--state", state, "--format", "json")
	if code != exitFindings {
		t.Fatalf("exit %d\n%s\n%s", code, out, stderr)
	}
	if os.Getenv("SHOW") != "" {
		t.Log(stderr)
	}
	if s := m.KeyStatus(t, "deployer", keyID); s != "" {
		t.Errorf("the leaked key is %q, want deleted", s)
	}
	ups := api.Updates()
	if len(ups) != 2 || ups[0].Repo != "acme/app" || ups[1].Repo != "acme/app" || ups[0].Resolution != "revoked" || ups[1].Resolution != "revoked" {
		t.Errorf("alert updates %+v, want acme/app #1 and #2 resolved as revoked", ups)
	}
	if a := api.Alert("acme/lib", 1); a.State != "open" {
		t.Errorf("the dead key's alert is %s, want left open", a.State)
	}
	for _, r := range api.Requests() {
		if strings.Contains(r, "..") || strings.Contains(r, "/x/") {
			t.Errorf("asked GitHub for %q", r)
		}
	}
	for _, want := range []string{"4 open AWS secret-scanning alert(s) in acme", "acme/app#1: resolved as revoked", "acme/app#2: resolved as revoked",
		"acme/lib#1: left open: the key is invalid", "alert #9: repository \"acme/../../x\"", "2 of 4 alert(s) resolved as revoked"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Count(out, `"action": "deleted"`) != 1 || strings.Contains(out+stderr+fmt.Sprint(ups), sec) {
		t.Errorf("want the key deleted once and no secret shown:\n%s", out)
	}
	// A new alert for the key keyburn deleted, under --dry-run: the audit
	// says keyburn deleted it, so it would be resolved, and nothing is.
	api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 3, SecretType: "aws_access_key_id", Secret: keyID,
		Locations: []ghtest.Location{{Path: ".env", Line: 1, Blob: blobApp, Commit: commit}}})
	code, _, stderr = runCLI("github", "--org", "acme", "--alerts", "--respond=delete", "--dry-run", "--github-api", api.URL,
		"--aws-endpoint", front.URL, "--state", state)
	if len(api.Updates()) != 2 || api.Alert("acme/app", 3).State != "open" ||
		!strings.Contains(stderr, "acme/app#3: left open: a dry run; it would be resolved as revoked") {
		t.Errorf("--dry-run: exit %d, updates %+v\n%s", code, api.Updates(), stderr)
	}
	// Without --org, or with --queue: refused, with the reason.
	if code, _, stderr := runCLI("github", "--user", "alice", "--alerts"); code != exitError || !strings.Contains(stderr, "--alerts goes with --org") {
		t.Errorf("--user --alerts: exit %d, %s", code, stderr)
	}
}

// TestNotifyEndToEnd: a live key found, deleted, and told about: a JSON
// target (signed) and a Slack-compatible one, both on loopback, both
// failing their first call, get the news within the run (found live, then
// killed), retried; neither gets the secret. A [notify] section in a
// .keyburn.toml found in the scanned tree is ignored, with a warning: the
// tree's own file could send news of its keys anywhere.
func TestNotifyEndToEnd(t *testing.T) {
	m, front := motoFront(t)
	id, sec := m.UserKey(t, "builder")
	type got struct {
		mu     sync.Mutex
		calls  int
		bodies []string
	}
	var hook, slack got
	serve := func(g *got, key []byte) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.calls++; g.calls == 1 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			if key != nil {
				mac := hmac.New(sha256.New, key)
				mac.Write(body)
				if r.Header.Get("X-Keyburn-Signature-256") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
					http.Error(w, "bad signature", http.StatusUnauthorized)
					return
				}
			}
			g.bodies = append(g.bodies, string(body))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	hookSrv, slackSrv := serve(&hook, []byte("notify-key")), serve(&slack, nil)
	t.Setenv("KEYBURN_TEST_NOTIFY_SECRET", "notify-key")
	t.Setenv("KEYBURN_TEST_SLACK_URL", slackSrv.URL+"/services/T0/B0/SLACKSECRET")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ci.env"), []byte("AWS_ACCESS_KEY_ID="+id+"\nAWS_SECRET_ACCESS_KEY="+sec+"\n"), 0o644)
	notifyConf := "[[notify.target]]\nkind = \"json\"\nurl = \"" + hookSrv.URL + "/keyburn\"\nsecret_env = \"KEYBURN_TEST_NOTIFY_SECRET\"\n\n" +
		"[[notify.target]]\nkind = \"slack\"\nurl_env = \"KEYBURN_TEST_SLACK_URL\"\n"
	conf := filepath.Join(t.TempDir(), "keyburn.toml")
	os.WriteFile(conf, []byte(notifyConf), 0o600)
	state := filepath.Join(t.TempDir(), "state.db")

	// Found in the scanned tree: ignored.
	os.WriteFile(filepath.Join(dir, ".keyburn.toml"), []byte(notifyConf), 0o644)
	code, _, stderr := runCLI("dir", "--verify", "--aws-endpoint", front.URL, "--state", state, dir)
	if code != exitFindings || !strings.Contains(stderr, "is the scanned tree's: ignored [notify]") || hook.calls+slack.calls != 0 {
		t.Fatalf("a found .keyburn.toml's [notify]: exit %d, %d calls\n%s", code, hook.calls+slack.calls, stderr)
	}
	os.Remove(filepath.Join(dir, ".keyburn.toml"))

	code, out, stderr := runCLI("dir", "--respond=delete", "--config", conf, "--aws-endpoint", front.URL, "--state", state, dir)
	if code != exitFindings || m.KeyStatus(t, "builder", id) != "" {
		t.Fatalf("exit %d, key %q\n%s\n%s", code, m.KeyStatus(t, "builder", id), out, stderr)
	}
	// Two messages each: the key found live (stored before it was acted
	// on), then killed; the first attempt fails and is retried.
	if len(hook.bodies) != 2 || len(slack.bodies) != 2 || hook.calls != 3 || slack.calls != 3 {
		t.Fatalf("json target got %d (%d calls), slack %d (%d calls); want two each after a retry\n%s", len(hook.bodies), hook.calls, len(slack.bodies), slack.calls, stderr)
	}
	events := map[string]struct {
		Event, Severity, Action, Reach string
		KeyID                          string `json:"key_id"`
	}{}
	for _, b := range hook.bodies {
		var msg struct {
			Event, Severity, Action, Reach string
			KeyID                          string `json:"key_id"`
		}
		if err := json.Unmarshal([]byte(b), &msg); err != nil {
			t.Fatalf("json message %s: %v", b, err)
		}
		events[msg.Event] = msg
	}
	if live, acted := events["live"], events["acted"]; live.KeyID != id || live.Action != "" || acted.KeyID != id || acted.Action != "deleted" ||
		acted.Severity == "" || acted.Reach == "" {
		t.Errorf("json messages %q", hook.bodies)
	}
	slackText := strings.Join(slack.bodies, "\n")
	if !strings.Contains(slackText, "Live AWS key killed") || !strings.Contains(slackText, "*Live AWS key* `"+id) ||
		strings.Contains(strings.Join(hook.bodies, "")+slackText+stderr, sec) || strings.Contains(stderr, "SLACKSECRET") {
		t.Errorf("slack messages %s; or a secret shown", slackText)
	}
}

// TestFourUsersReport: the triage of four leaked keys, end to end against
// moto: an administrator's, an IAM manager's, a reader's (through a group)
// and an empty user's (not moto's "admin", which is the responder's own
// user, and left alone as such). With respond_min_severity = "critical", a dry run
// says what each could do and which would be deleted; the real run deletes
// the two critical keys only and writes the HTML report. KEEP_REPORTS=DIR
// keeps both outputs.
func TestFourUsersReport(t *testing.T) {
	m, front := motoFront(t)
	ctx := context.Background()
	c := m.IAM()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	keys := map[string][2]string{}
	for _, u := range []string{"administrator", "iam-manager", "reader", "empty"} {
		id, sec := m.UserKey(t, u)
		keys[u] = [2]string{id, sec}
	}
	must(c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("administrator"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")}))
	must(c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("iam-manager"), PolicyName: aws.String("manage-iam"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}`)}))
	pol, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("read-data"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	must(c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("readers")}))
	must(c.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String("readers"), PolicyArn: pol.Policy.Arn}))
	must(c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("readers"), UserName: aws.String("reader")}))

	dir := t.TempDir()
	for u, k := range keys {
		os.WriteFile(filepath.Join(dir, u+".env"), []byte("AWS_ACCESS_KEY_ID="+k[0]+"\nAWS_SECRET_ACCESS_KEY="+k[1]+"\n"), 0o644)
	}
	conf := filepath.Join(t.TempDir(), "keyburn.toml")
	os.WriteFile(conf, []byte("[aws]\nrespond_min_severity = \"critical\"\n"), 0o600)
	state := filepath.Join(t.TempDir(), "state.db")
	args := []string{"--config", conf, "--aws-endpoint", front.URL, "--state", state, dir}

	code, text, stderr := runCLI(append([]string{"dir", "--respond=delete", "--dry-run"}, args...)...)
	if code != exitFindings {
		t.Fatalf("dry run: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"critical  account 123456789012", "reach        administrator: it can do everything",
		"reach        can manage IAM (and so make itself an administrator)", "reach        can read data", "reach        nothing notable",
		"action       dry-run", "below respond_min_severity critical"} {
		if !strings.Contains(text, want) {
			t.Errorf("dry run's report lacks %q:\n%s", want, text)
		}
	}
	code, html, stderr := runCLI(append([]string{"dir", "--respond=delete", "--format", "html"}, args...)...)
	if code != exitFindings || !strings.Contains(html, "2</b>critical") {
		t.Fatalf("real run: exit %d\n%s\n%s", code, stderr, html)
	}
	for u, want := range map[string]string{"administrator": "", "iam-manager": "", "reader": "Active", "empty": "Active"} {
		if s := m.KeyStatus(t, u, keys[u][0]); s != want {
			t.Errorf("%s's key is %q, want %q", u, s, want)
		}
	}
	for _, k := range keys {
		if strings.Contains(text+html+stderr, k[1]) {
			t.Fatal("a secret was printed")
		}
	}
	if d := os.Getenv("KEEP_REPORTS"); d != "" {
		os.WriteFile(filepath.Join(d, "four-users.txt"), []byte(text), 0o644)
		os.WriteFile(filepath.Join(d, "four-users.html"), []byte(html), 0o644)
	}
}

// TestAuditShowsUndeliveredNotifications: `scan audit` lists the
// notifications not sent, with the reason, by the target's fingerprint (a
// URL is a secret of its own); --key keeps those about that key.
func TestAuditShowsUndeliveredNotifications(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	for _, key := range []string{"AKIAAAAAAAAAAAAAAAAA", "AKIABBBBBBBBBBBBBBBB"} {
		if _, err := st.AddNotification(ctx, store.Notification{Target: "slack:0123456789abcdef", Body: []byte(`{}`), Dedupe: key + " acted deleted acme/app"}, now); err != nil {
			t.Fatal(err)
		}
	}
	ns, _ := st.Notifications(ctx)
	st.NotificationFailed(ctx, ns[0].ID, "the target answered 503 Service Unavailable", now, 1)
	st.NotificationSent(ctx, ns[1].ID)
	st.Close()
	code, out, _ := runCLI("audit", "--state", state)
	if code != exitClean || !strings.Contains(out, "NOTIFICATIONS NOT DELIVERED (1)") || !strings.Contains(out, "parked  slack:0123456789abcdef") ||
		!strings.Contains(out, "503 Service Unavailable") || strings.Contains(out, "AKIABBBBBBBBBBBBBBBB") {
		t.Errorf("audit: exit %d\n%s", code, out)
	}
	if _, out, _ := runCLI("audit", "--state", state, "--key", "AKIABBBBBBBBBBBBBBBB"); strings.Contains(out, "NOT DELIVERED") {
		t.Errorf("audit --key of a key whose notification was sent:\n%s", out)
	}
}

// TestTreeCannotSteerResponder: a scanned tree's .keyburn.toml names the
// key's own account in deny_accounts (to keep its key alive), a role of its
// choosing and a severity floor; none of it reaches the responder, and the
// key is deleted with keyburn's own credentials. The operator's own config
// path still counts: there, the same deny list keeps the key alive.
func TestTreeCannotSteerResponder(t *testing.T) {
	m, front := motoFront(t)
	id, sec := m.UserKey(t, "tess")
	dir := t.TempDir()
	keyFile(t, dir, "app.env", id, sec)
	os.WriteFile(filepath.Join(dir, ".keyburn.toml"), []byte("[aws]\ndeny_accounts = [\"123456789012\"]\nrole_name = \"attacker-role\"\n"+
		"respond_min_severity = \"critical\"\ncentralized_root_access = true\n"), 0o644)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	state := filepath.Join(t.TempDir(), "state.db")
	code, out, stderr := runCLI("dir", "--respond=delete", "--aws-endpoint", front.URL, "--state", state, dir)
	if code != exitFindings || !strings.Contains(out, "deleted") || !strings.Contains(stderr, "ignored [aws]") {
		t.Fatalf("a tree's [aws]: exit %d\n%s\n%s", code, out, stderr)
	}
	if s := m.KeyStatus(t, "tess", id); s != "" {
		t.Errorf("a tree's deny_accounts kept its key alive: the key is %q", s)
	}
	if strings.Contains(out+stderr, "attacker-role") {
		t.Errorf("the tree's role was used:\n%s\n%s", out, stderr)
	}

	// The operator's own config path is the operator's voice.
	id2, sec2 := m.UserKey(t, "ursula")
	dir2 := t.TempDir()
	keyFile(t, dir2, "app.env", id2, sec2)
	xdg := t.TempDir()
	os.MkdirAll(filepath.Join(xdg, "keyburn"), 0o700)
	os.WriteFile(filepath.Join(xdg, "keyburn", "config.toml"), []byte("[aws]\ndeny_accounts = [\"123456789012\"]\n"), 0o600)
	t.Setenv("XDG_CONFIG_HOME", xdg)
	code, out, stderr = runCLI("dir", "--respond=delete", "--aws-endpoint", front.URL, "--state", state, dir2)
	if code != exitFindings || !strings.Contains(out, "skipped") {
		t.Fatalf("the operator's config: exit %d\n%s\n%s", code, out, stderr)
	}
	if s := m.KeyStatus(t, "ursula", id2); s != "Active" {
		t.Errorf("the operator's deny_accounts was not honoured: the key is %q", s)
	}
}

// TestKilledBetweenDeactivateAndDelete: `keyburn scan dir --respond=delete`
// (no soak) is killed with SIGKILL after IAM deactivated the key and before
// its DeleteAccessKey reaches IAM. The key is left Inactive, which STS
// answers as invalid; the next responding run, which finds nothing, carries
// out the deletion stored before the first change.
func TestKilledBetweenDeactivateAndDelete(t *testing.T) {
	m, front := motoFront(t)
	id, sec := m.UserKey(t, "victor")
	dir := t.TempDir()
	keyFile(t, dir, "app.env", id, sec)
	state := filepath.Join(t.TempDir(), "state.db")
	cmd := exec.Command(keyburnExe(t), "dir", "--respond=delete", "--aws-endpoint", front.URL, "--state", state, dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	killed := make(chan struct{})
	var procMu sync.Mutex
	var proc *os.Process
	front.SetIntercept(func(action string) *awstest.APIError {
		if action != "DeleteAccessKey" {
			return nil
		}
		procMu.Lock()
		defer procMu.Unlock()
		select {
		case <-killed:
		default:
			proc.Kill() // SIGKILL: between the two IAM calls
			close(killed)
		}
		return &awstest.APIError{Status: 500, Code: "InternalFailure", Message: "the caller is gone"}
	})
	procMu.Lock()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	proc = cmd.Process
	procMu.Unlock()
	err := cmd.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("the run ended (%v) without reaching DeleteAccessKey:\n%s", err, out.String())
	}
	if s := m.KeyStatus(t, "victor", id); s != "Inactive" {
		t.Fatalf("after the kill the key is %q, want Inactive", s)
	}
	front.SetIntercept(nil)
	time.Sleep(1100 * time.Millisecond) // due times are whole seconds, rounded up
	empty := t.TempDir()
	code, _, stderr := runCLI("dir", "--respond=delete", "--aws-endpoint", front.URL, "--state", state, empty)
	if code != exitClean || !strings.Contains(stderr, id+": deleted") {
		t.Errorf("the next run: exit %d\n%s", code, stderr)
	}
	if s := m.KeyStatus(t, "victor", id); s != "" {
		t.Errorf("after the next run the key is %q, want deleted", s)
	}
}

// TestChainIdentitiesAreGuarded: keyburn's credentials are a role profile
// (role_arn with source_profile). The source user's own key, leaked, is
// keyburn's own: deleting it would lock keyburn out. So is a key of a user
// the role's trust policy lets assume it. Both are found live and refused,
// and stay Active; a stranger's key in the same file is deleted.
func TestChainIdentitiesAreGuarded(t *testing.T) {
	m, front := motoFront(t)
	ctx := context.Background()
	srcID, srcSec := m.UserKey(t, "keyburn-src")
	opsID, opsSec := m.UserKey(t, "ops")
	strangerID, strangerSec := m.UserKey(t, "stranger")
	c := m.IAM()
	if _, err := c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("keyburn-src"), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/keyburn-src",` +
		`"arn:aws:iam::123456789012:user/ops"]},"Action":"sts:AssumeRole"}]}`
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("keyburn-responder"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("keyburn-responder"), PolicyName: aws.String("all"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "config")
	os.WriteFile(conf, []byte("[profile src]\naws_access_key_id = "+srcID+"\naws_secret_access_key = "+srcSec+"\n\n"+
		"[profile responder]\nrole_arn = arn:aws:iam::123456789012:role/keyburn-responder\nsource_profile = src\n"), 0o600)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_CONFIG_FILE", conf)
	t.Setenv("AWS_PROFILE", "responder")
	t.Setenv("AWS_ENDPOINT_URL_STS", front.URL) // the SDK's own AssumeRole goes to moto too

	dir := t.TempDir()
	keyFile(t, dir, "src.env", srcID, srcSec)
	keyFile(t, dir, "ops.env", opsID, opsSec)
	keyFile(t, dir, "stranger.env", strangerID, strangerSec)
	code, out, stderr := runCLI("dir", "--respond=delete", "-v", "--aws-endpoint", front.URL, "--state", filepath.Join(t.TempDir(), "s.db"), dir)
	if code != exitFindings || !strings.Contains(stderr, "assumed-role/keyburn-responder") {
		t.Fatalf("exit %d: the responder is not the role session\n%s\n%s", code, out, stderr)
	}
	for _, k := range []struct{ user, id string }{{"keyburn-src", srcID}, {"ops", opsID}} {
		if s := m.KeyStatus(t, k.user, k.id); s != "Active" {
			t.Errorf("%s's key is %q, want Active: it is keyburn's own identity\n%s", k.user, s, out)
		}
	}
	if !strings.Contains(out, "a key behind the responder's own credentials") || !strings.Contains(out, "it may assume the responder's role keyburn-responder") {
		t.Errorf("the refusals do not say why:\n%s", out)
	}
	if s := m.KeyStatus(t, "stranger", strangerID); s != "" {
		t.Errorf("the stranger's key is %q, want deleted\n%s\n%s", s, out, stderr)
	}
}

// TestAuditShowsParkedDeliveries: the receiver's parked deliveries are in
// `scan audit` (text and JSON) with the reason, and --requeue puts them
// back in the queue the receiver reads.
func TestAuditShowsParkedDeliveries(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Enqueue(ctx, store.Delivery{ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Event: "push", Payload: []byte("{}"),
		DedupeKey: "push acme/app refs/heads/main 0000 1111"}); err != nil {
		t.Fatal(err)
	}
	d, _, _ := st.Claim(ctx, time.Minute, 1)
	if err := st.Fail(ctx, d, "fetch acme/app: GitHub answered 503", 0, 1); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, _ := runCLI("audit", "--state", state)
	if code != exitClean || !strings.Contains(out, "PARKED DELIVERIES (1)") || !strings.Contains(out, "72d3162e-cc78-11e3-81ab-4c9367dc0958") ||
		!strings.Contains(out, "GitHub answered 503") || !strings.Contains(out, "acme/app refs/heads/main") {
		t.Errorf("audit: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("audit", "--state", state, "--format", "json")
	if code != exitClean || !strings.Contains(out, `"parked_deliveries": [`) || !strings.Contains(out, `"last_error": "fetch acme/app: GitHub answered 503"`) {
		t.Errorf("audit JSON: exit %d\n%s", code, out)
	}
	if code, _, stderr := runCLI("audit", "--state", state, "--requeue", "no-such-id"); code != exitError || !strings.Contains(stderr, "nothing requeued") {
		t.Errorf("requeue of an unknown ID: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runCLI("audit", "--state", state, "--requeue", "all"); code != exitClean || !strings.Contains(stderr, "1 parked delivery requeued") {
		t.Errorf("requeue all: exit %d\n%s", code, stderr)
	}
	st, _ = store.Open(state)
	defer st.Close()
	if d, _ := st.GetDelivery(ctx, "72d3162e-cc78-11e3-81ab-4c9367dc0958"); d.Status != store.Queued {
		t.Errorf("after --requeue the delivery is %s", d.Status)
	}
}

// TestStateInPostgres: the state option takes a postgres:// URL, and so
// does $KEYBURN_STATE_URL: scan audit reads what another process recorded
// in the shared database, and its messages never show the password.
func TestStateInPostgres(t *testing.T) {
	url := pgtest.Private(t)
	st, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Audit(context.Background(), store.AuditRecord{Actor: "arn:aws:iam::123456789012:user/responder", Action: "deactivate",
		KeyID: "AKIAROSDW5AABZW3VLYZ", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out, stderr := runCLI("audit", "--state", url, "--format", "json")
	if code != exitClean || !strings.Contains(out, `"key_id": "AKIAROSDW5AABZW3VLYZ"`) {
		t.Errorf("audit --state URL: exit %d\n%s\n%s", code, out, stderr)
	}
	t.Setenv("KEYBURN_STATE_URL", url)
	code, out, stderr = runCLI("audit", "--format", "json")
	if code != exitClean || !strings.Contains(out, `"action": "deactivate"`) {
		t.Errorf("audit with KEYBURN_STATE_URL: exit %d\n%s\n%s", code, out, stderr)
	}
	withPassword := strings.Replace(url, "keyburn@", "keyburn:s3cretpw@", 1)
	code, _, stderr = runCLI("audit", "--state", strings.Replace(withPassword, "/postgres?", "/nosuchdb?", 1))
	if code != exitError || strings.Contains(stderr, "s3cretpw") || !strings.Contains(stderr, "nosuchdb") {
		t.Errorf("a state that cannot be opened: exit %d, %s", code, stderr)
	}
}
