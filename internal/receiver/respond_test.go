package receiver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/ghtest"
	"github.com/keyburn/keyburn/internal/pgtest"
	"github.com/keyburn/keyburn/internal/store"
)

// syncBuffer is a bytes.Buffer safe for the receiver's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runUntil runs the receiver until done reports true (checked every 50 ms,
// for at most 10 s), then stops it and returns its log.
func runUntil(t *testing.T, args []string, done func() bool) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuffer
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, args, io.Discard, &log) }()
	ok := false
	for range 200 {
		if ok = done(); ok {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	if !ok {
		t.Fatalf("the receiver never got there; its log:\n%s", log.String())
	}
	return log.String()
}

// TestDefaultsMatchTheCLI: without flags the receiver responds to nothing
// and says so loudly, warns of each missing piece (GitHub credentials, AWS
// credentials, notification targets), and keeps its state where the CLI looks (so that
// `keyburn scan audit` sees what it did), readable by its owner only.
func TestDefaultsMatchTheCLI(t *testing.T) {
	t.Setenv("KEYBURN_WEBHOOK_SECRET", testSecret)
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("GITHUB_TOKEN", "")
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	state := store.DefaultPath()
	log := runUntil(t, []string{"--listen", "127.0.0.1:0", "--workers", "0", "--mirrors", t.TempDir()}, func() bool {
		_, err := os.Stat(state)
		return err == nil
	})
	for _, warning := range []string{"RESPONDER OFF", "NO GITHUB CREDENTIALS", "no AWS credentials of keyburn's own", "no notification targets"} {
		if !strings.Contains(log, `"level":"WARN","msg":"`+warning) {
			t.Errorf("the log does not warn %q:\n%s", warning, log)
		}
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state %s: %v, %v; want mode 0600", state, fi, err)
	}
}

// TestDueDeletionsOnATimer: the receiver carries out a deletion whose soak
// window has passed without any delivery arriving, and its log says which
// policy it runs.
func TestDueDeletionsOnATimer(t *testing.T) {
	m := awstest.Start(t)
	t.Setenv("KEYBURN_WEBHOOK_SECRET", testSecret)
	motoEnv(t, m)
	id, _ := m.UserKey(t, "hana")
	m.SetKeyStatus(t, "hana", id, "Inactive") // deactivated by an earlier run
	state := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ScheduleDeletion(context.Background(), store.Deletion{KeyID: id, Account: "123456789012", UserName: "hana",
		DueAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	log := runUntil(t, []string{"--listen", "127.0.0.1:0", "--state", state, "--workers", "1", "--mirrors", t.TempDir(),
		"--respond=delete", "--soak", "24h", "--due-interval", "100ms", "--aws-endpoint", m.URL}, func() bool {
		s, err := m.Status("hana", id)
		return err == nil && s == ""
	})
	if !strings.Contains(log, "RESPONDER ON: respond=delete (deactivate, then delete after a soak of 24h0m0s)") {
		t.Errorf("the log does not state the policy:\n%s", log)
	}
	if !strings.Contains(log, `"msg":"due deletion","key_id":"`+id+`","action":"deleted"`) {
		t.Errorf("the log does not record the due deletion:\n%s", log)
	}
}

// TestSecretScanningAlertEndToEnd: from GitHub's signed delivery to a dead
// key and a resolved alert, through the running receiver: the event is
// checked and queued, a worker fetches the alert from a GitHub-shaped API
// (the event carries no secret), finds the secret in the blob GitHub
// names, verifies the key live against moto, deletes it, and resolves the
// alert as revoked with a comment naming the action and the audit record.
func TestSecretScanningAlertEndToEnd(t *testing.T) {
	alertEndToEnd(t, filepath.Join(t.TempDir(), "state.db"))
}

// TestAlertEndToEndOnPostgres: the same, with the receiver's state (its
// queue, audit log, outbox) in PostgreSQL: the delivery is queued, claimed
// and done there, and the audit trail is there for scan audit.
func TestAlertEndToEndOnPostgres(t *testing.T) {
	url := pgtest.Private(t)
	keyID := alertEndToEnd(t, url)
	st, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if depth, err := st.QueueDepth(context.Background()); err != nil || depth[store.Done] != 1 {
		t.Errorf("the queue in PostgreSQL: %v, %v; want one delivery done", depth, err)
	}
	log, err := st.AuditLog(context.Background(), keyID)
	deleted := false
	for _, r := range log {
		deleted = deleted || r.Action == "delete" && r.Outcome == "ok"
	}
	if err != nil || !deleted {
		t.Errorf("the audit trail in PostgreSQL: %+v, %v; want the deletion", log, err)
	}
}

// alertEndToEnd runs the alert's story with the receiver's state at
// state, and returns the key it deleted.
func alertEndToEnd(t *testing.T, state string) string {
	m, front, api := receiverWorld(t)
	keyID, sec := m.UserKey(t, "ci")
	blob, commit := "af5626b4a114abcb82d63db7c8082c3c4756e51b", "f14d7debf9775f957cf4f1e8176da0786431f72b"
	api.AddBlob(blob, []byte("# prod\nexport AWS_ACCESS_KEY_ID="+keyID+"\nexport AWS_SECRET_ACCESS_KEY="+sec+"\n"))
	api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 42, SecretType: "aws_access_key_id", Secret: keyID,
		Locations: []ghtest.Location{{Path: "deploy/prod.env", Line: 2, Column: 25, Blob: blob, Commit: commit}}})
	// The news goes to a JSON notification target on loopback.
	var notified syncBuffer
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if r.Header.Get("X-Keyburn-Signature-256") == "sha256="+hex.EncodeToString(hmacOf([]byte("notify-key"), body)) {
			notified.Write(body)
		}
	}))
	defer hook.Close()
	t.Setenv("KEYBURN_TEST_NOTIFY_SECRET", "notify-key")
	conf := filepath.Join(t.TempDir(), "keyburn.toml")
	os.WriteFile(conf, []byte("[[notify.target]]\nkind = \"json\"\nurl = \""+hook.URL+"\"\nsecret_env = \"KEYBURN_TEST_NOTIFY_SECRET\"\n"), 0o600)
	log := deliverUntil(t, freeAddr(t), []string{"--state", state, "--workers", "1",
		"--mirrors", t.TempDir(), "--respond=delete", "--aws-endpoint", front.URL, "--github-api", api.URL, "--config", conf},
		"secret_scanning_alert", "72d3162e-cc78-11e3-81ab-4c9367dc0958", payload(t, "secret-scanning-alert.json"), func(metrics string) bool {
			return api.Alert("acme/app", 42).State == "resolved" && strings.Contains(metrics, `keyburn_alerts_total{outcome="resolved"} 1`) &&
				strings.Contains(notified.String(), `"event":"acted"`)
		})
	if n := notified.String(); !strings.Contains(n, `"event":"acted"`) || !strings.Contains(n, `"repository":"acme/app"`) || strings.Contains(n, sec) {
		t.Errorf("notification %s", n)
	}
	if s := m.KeyStatus(t, "ci", keyID); s != "" {
		t.Errorf("the key is %q, want deleted", s)
	}
	ups := api.Updates()
	if len(ups) != 1 || ups[0].Resolution != "revoked" || !strings.Contains(ups[0].Comment, "deleted it at") ||
		!strings.Contains(ups[0].Comment, "keyburn scan audit --key "+keyID) {
		t.Errorf("alert updates %+v", ups)
	}
	if strings.Contains(log, sec) || strings.Contains(fmt.Sprint(ups, api.Issues()), sec) || strings.Contains(log, hook.URL) {
		t.Error("the secret reached the log or GitHub")
	}
	if !strings.Contains(log, "secret scanning alert queued") || !strings.Contains(log, "alert resolved as revoked") {
		t.Errorf("the log does not tell the story:\n%s", log)
	}
	return keyID
}

// receiverWorld is what an end-to-end receiver test runs against: moto
// behind a front with no CloudTrail events, a GitHub-shaped API taking the
// receiver's token, and the receiver's secret and AWS credentials in the
// environment.
func receiverWorld(t *testing.T) (*awstest.Server, *awstest.Front, *ghtest.API) {
	t.Helper()
	m := awstest.Start(t)
	front := awstest.StartFront(t, m)
	front.NoEvents()
	t.Setenv("KEYBURN_WEBHOOK_SECRET", testSecret)
	motoEnv(t, m)
	t.Setenv("GITHUB_TOKEN", "ghp_receiver")
	api := ghtest.Start(t)
	api.Token = "ghp_receiver"
	return m, front, api
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// deliverUntil runs the receiver with args on addr, delivers one signed
// event once it listens (202 expected), and returns the log once the
// receiver's /metrics satisfy done.
func deliverUntil(t *testing.T, addr string, args []string, event, delivery string, body []byte, done func(metrics string) bool) string {
	t.Helper()
	delivered := false
	return runUntil(t, append([]string{"--listen", addr}, args...), func() bool {
		if !delivered {
			req, _ := http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", event)
			req.Header.Set("X-GitHub-Delivery", delivery)
			req.Header.Set("X-Hub-Signature-256", sign([]byte(testSecret), body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false // not listening yet
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("delivery answered %d", resp.StatusCode)
			}
			delivered = true
		}
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return done(string(b))
	})
}

func hmacOf(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)
}

// motoEnv points the SDK's default credentials at moto's admin, and nowhere
// else (no shared files, no instance metadata).
func motoEnv(t *testing.T, m *awstest.Server) {
	t.Setenv("AWS_ACCESS_KEY_ID", m.Admin.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.Admin.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestAlertForAnotherKeysSecret: GitHub raises an alert for secret S_B, in
// a file that also holds key A with its own secret S_A. The running
// receiver deletes A (live with S_A), but S_B is not A's: B's alert stays
// open (B is still live, and GitHub must keep showing it), and no issue
// says "pushed" for a key that was revoked.
func TestAlertForAnotherKeysSecret(t *testing.T) {
	m, front, api := receiverWorld(t)
	idA, secA := m.UserKey(t, "a")
	idB, secB := m.UserKey(t, "b")
	blob, commit := "bf5626b4a114abcb82d63db7c8082c3c4756e51b", "e14d7debf9775f957cf4f1e8176da0786431f72b"
	api.AddBlob(blob, []byte("export AWS_ACCESS_KEY_ID="+idA+"\nexport AWS_SECRET_ACCESS_KEY="+secA+"\n# the old one\nexport OLD_AWS_SECRET_ACCESS_KEY="+secB+"\n"))
	api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 43, SecretType: "aws_secret_access_key", Secret: secB,
		Locations: []ghtest.Location{{Path: "deploy/prod.env", Line: 4, Column: 33, Blob: blob, Commit: commit}}})
	event := bytes.Replace(payload(t, "secret-scanning-alert.json"), []byte(`"number": 42`), []byte(`"number": 43`), 1)
	event = bytes.Replace(event, []byte(`"secret_type": "aws_access_key_id"`), []byte(`"secret_type": "aws_secret_access_key"`), 1)
	log := deliverUntil(t, freeAddr(t), []string{"--state", filepath.Join(t.TempDir(), "state.db"), "--workers", "1",
		"--mirrors", t.TempDir(), "--respond=delete", "--aws-endpoint", front.URL, "--github-api", api.URL},
		"secret_scanning_alert", "82d3162e-cc78-11e3-81ab-4c9367dc0958", event,
		func(metrics string) bool { return strings.Contains(metrics, `keyburn_alerts_total{outcome=`) })
	if s := m.KeyStatus(t, "a", idA); s != "" {
		t.Errorf("key A is %q, want deleted (it was live in the alert's file)", s)
	}
	if s := m.KeyStatus(t, "b", idB); s != "Active" {
		t.Errorf("key B is %q, want Active (its ID was nowhere)", s)
	}
	if a := api.Alert("acme/app", 43); a.State != "open" || len(api.Updates()) != 0 {
		t.Errorf("B's alert is %s after %d updates, want it left open: B is live\n%s", a.State, len(api.Updates()), log)
	}
	if is := api.Issues(); len(is) != 0 {
		t.Errorf("issues %v, want none: the only live key found was revoked", is)
	}
	if !strings.Contains(log, "alert left open") || strings.Contains(log, secB) || strings.Contains(log, secA) {
		t.Errorf("the log does not say the alert was left open, or shows a secret:\n%s", log)
	}
}
