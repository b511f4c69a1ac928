package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/rules"
)

const sec = "5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF" // synthetic

func live(id string, action string) *finding.Finding {
	f := &finding.Finding{KeyID: id, AccountID: "123456789012", Severity: "critical", Secret: secret.New(sec),
		Locations:    []finding.Location{{File: "deploy/prod.env", Line: 3, Commit: "f14d7debf9775f957cf4f1e8176da0786431f72b"}},
		Verification: &finding.Verification{Status: "live", ARN: "arn:aws:iam::123456789012:user/ci", Reach: &finding.Reach{Level: finding.ReachAdmin}}}
	if action != "" {
		f.Response = &finding.Response{Action: action}
	}
	return f
}

// TestMessages: one message per live key, saying what happened; the file
// of a key still live is named only in a private repository; never a
// secret.
func TestMessages(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	fs := []*finding.Finding{live("AKIAAAAAAAAAAAAAAAAA", "deleted"), live("AKIABBBBBBBBBBBBBBBB", "skipped"), live("AKIACCCCCCCCCCCCCCCC", ""),
		{KeyID: "AKIADDDDDDDDDDDDDDDD", Verification: &finding.Verification{Status: "invalid"}}}
	for _, tt := range []struct {
		private bool
		events  string
		files   string
	}{
		{false, "acted,not-acted,live", "deploy/prod.env,,"},
		{true, "acted,not-acted,live", "deploy/prod.env,deploy/prod.env,deploy/prod.env"},
	} {
		ms := Messages(fs, Where{Repository: "acme/app", Private: tt.private}, now)
		var events, files []string
		for _, m := range ms {
			events, files = append(events, m.Event), append(files, m.File)
			if m.Reach == "" || m.Commit == "" || m.Repository != "acme/app" {
				t.Errorf("message %+v lacks the reach, commit or repository", m)
			}
		}
		if strings.Join(events, ",") != tt.events || strings.Join(files, ",") != tt.files {
			t.Errorf("private %v: events %v, files %q; want %s, %q", tt.private, events, files, tt.events, tt.files)
		}
		b, _ := json.Marshal(ms)
		if strings.Contains(string(b), sec) || strings.Contains(SlackText(ms[0]), sec) {
			t.Error("a message holds the secret")
		}
	}
}

// TestMessagesOfRotationAndNotices: a rotated key's news says where its
// replacement is kept; a key AWS vouched for is news like a live one, and
// says who vouched and what to do with AWS's quarantine.
func TestMessagesOfRotationAndNotices(t *testing.T) {
	rotated := live("AKIAAAAAAAAAAAAAAAAA", "deleted")
	rotated.Response.Replacement = &finding.Replacement{KeyID: "AKIANEWNEWNEWNEWNEW2", Secret: "keyburn/rotated/123456789012/ci"}
	exposed := &finding.Finding{KeyID: "AKIAEEEEEEEEEEEEEEEE", Vouched: &finding.Vouch{By: "AWS Health AWS_RISK_CREDENTIALS_EXPOSED", Account: "123456789012"},
		Verification: &finding.Verification{Status: "exposed", Quarantine: []string{"AWSCompromisedKeyQuarantineV2"}},
		Response:     &finding.Response{Action: "deactivated"}}
	ms := Messages([]*finding.Finding{rotated, exposed}, Where{Repository: "AWS account 123456789012"}, time.Now())
	if len(ms) != 2 {
		t.Fatalf("%d messages, want 2", len(ms))
	}
	if s := SlackText(ms[0]); ms[0].Replacement != "AKIANEWNEWNEWNEWNEW2" || !strings.Contains(s, "in AWS Secrets Manager as keyburn/rotated/123456789012/ci") {
		t.Errorf("rotated: %+v\n%s", ms[0], s)
	}
	if s := SlackText(ms[1]); ms[1].Event != EventActed || !strings.Contains(s, "vouched for by: AWS Health") ||
		!strings.Contains(s, "keep it until the leaked key is deleted") {
		t.Errorf("exposed: %+v\n%s", ms[1], s)
	}
}

// receiver is a notification endpoint on loopback that fails its first
// failFirst calls with 503 and checks the JSON target's signature.
type receiver struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	got       []string // bodies accepted
	badSig    int
	key       []byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.calls <= r.failFirst {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	if r.key != nil {
		mac := hmac.New(sha256.New, r.key)
		mac.Write(body)
		if !hmac.Equal([]byte(req.Header.Get("X-Keyburn-Signature-256")), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) {
			r.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
	}
	r.got = append(r.got, string(body))
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestDeliveryRetriedAndDurable: a Slack and a JSON target that both fail
// their first two calls get every message in the end, retried with
// backoff (nothing is sent again before it is due), signed for the JSON
// target; messages written before a restart are sent after it; the same
// news is not stored twice; one that keeps failing is parked with the
// reason, which never holds the target's URL.
func TestDeliveryRetriedAndDurable(t *testing.T) {
	ctx := context.Background()
	// Two messages each: their first two attempts fail.
	slack, hook := &receiver{failFirst: 4}, &receiver{failFirst: 4, key: []byte("hmac key")}
	slackSrv, hookSrv := httptest.NewServer(slack), httptest.NewServer(hook)
	defer slackSrv.Close()
	defer hookSrv.Close()
	targets := []Target{{Kind: Slack, URL: slackSrv.URL + "/services/T000/B000/XXXXSECRETXXXX"}, {Kind: JSON, URL: hookSrv.URL + "/keyburn", Secret: []byte("hmac key")}}
	for _, tg := range targets {
		if err := tg.Check(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "state.db")
	clock := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	st := openStore(t, path)
	msgs := Messages([]*finding.Finding{live("AKIAAAAAAAAAAAAAAAAA", "deleted"), live("AKIABBBBBBBBBBBBBBBB", "")}, Where{Repository: "acme/app"}, clock)
	if n, err := Enqueue(ctx, st, targets, msgs, clock); n != 4 || err != nil {
		t.Fatalf("Enqueue = %d, %v; want 4", n, err)
	}
	if n, _ := Enqueue(ctx, st, targets, msgs, clock); n != 0 {
		t.Errorf("the same news stored again: %d", n)
	}
	st.Close() // a restart: nothing sent yet

	st = openStore(t, path)
	s := &Sender{Store: st, Targets: targets, Backoff: time.Minute, Now: func() time.Time { return clock }}
	for round, want := range []int{0, 0, 4} {
		sent, err := s.Flush(ctx)
		if sent != want {
			t.Fatalf("round %d: sent %d (%v), want %d", round, sent, err, want)
		}
		if round < 2 && (err == nil || strings.Contains(err.Error(), "XXXXSECRETXXXX")) {
			t.Errorf("round %d: error %v; want the failure, without the target's URL", round, err)
		}
		if round == 1 {
			// Not due yet: the backoff after the first failure is a minute.
			if sent, _ := s.Flush(ctx); sent != 0 || slack.calls != 4 {
				t.Fatalf("sent %d with %d calls before the retry was due", sent, slack.calls)
			}
		}
		clock = clock.Add(5 * time.Minute)
	}
	if len(slack.got) != 2 || len(hook.got) != 2 || hook.badSig != 0 || !strings.Contains(slack.got[0], `"text":"*Live AWS key killed*`) {
		t.Fatalf("slack got %q, hook got %q (%d bad signatures)", slack.got, hook.got, hook.badSig)
	}
	var m Message
	if err := json.Unmarshal([]byte(hook.got[0]), &m); err != nil || m.Event != EventActed || m.KeyID != "AKIAAAAAAAAAAAAAAAAA" || m.Severity != "critical" {
		t.Errorf("hook message %+v, %v", m, err)
	}
	if pending, _ := st.PendingNotifications(ctx); pending != 0 {
		t.Errorf("%d still pending", pending)
	}

	// A target that never answers well is parked after MaxAttempts.
	down := &receiver{failFirst: 1 << 30}
	downSrv := httptest.NewServer(down)
	defer downSrv.Close()
	bad := Target{Kind: Slack, URL: downSrv.URL + "/services/T1/B1/ANOTHERSECRET"}
	Enqueue(ctx, st, []Target{bad}, msgs[:1], clock)
	s = &Sender{Store: st, Targets: []Target{bad}, Backoff: time.Second, MaxAttempts: 3, Now: func() time.Time { return clock }}
	for range 5 {
		s.Flush(ctx)
		clock = clock.Add(time.Hour)
	}
	all, _ := st.Notifications(ctx)
	last := all[len(all)-1]
	if last.Status != store.Parked || last.Attempts != 3 || !strings.Contains(last.LastError, "503") || strings.Contains(last.LastError, "ANOTHERSECRET") {
		t.Errorf("the failing notification: %+v; want parked after 3 attempts, with the reason", last)
	}
}

// TestDrainSaysWhy: a run that cannot deliver says why, even when its
// last round found nothing due (every message waiting for its retry).
func TestDrainSaysWhy(t *testing.T) {
	ctx := context.Background()
	down := &receiver{failFirst: 1 << 30}
	srv := httptest.NewServer(down)
	defer srv.Close()
	target := Target{Kind: Slack, URL: srv.URL + "/services/T1/B1/DRAINSECRET"}
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	clock := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	Enqueue(ctx, st, []Target{target}, Messages([]*finding.Finding{live("AKIACCCCCCCCCCCCCCCC", "deleted")}, Where{}, clock), clock)
	s := &Sender{Store: st, Targets: []Target{target}, Backoff: time.Hour, Now: func() time.Time { return clock }}
	pending, err := s.Drain(ctx, 50*time.Millisecond)
	if err != nil && strings.Contains(err.Error(), "DRAINSECRET") {
		t.Fatal("Drain's error holds the target URL's secret") // not printed: a failure message is output too
	}
	if pending != 1 || err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("Drain = %d, %v; want 1 pending and the failure", pending, err)
	}
}

// TestTargetCheck: what a [notify] target must be.
func TestTargetCheck(t *testing.T) {
	for _, tt := range []struct {
		t    Target
		want string
	}{
		{Target{Kind: "teams", URL: "https://x"}, "kind"},
		{Target{Kind: Slack, URL: "file:///etc/passwd"}, "not an http or https URL"},
		{Target{Kind: Slack, URL: "https://"}, "not an http or https URL"},
		{Target{Kind: JSON, URL: "https://hooks.example.com/k"}, "signing secret"},
	} {
		if err := tt.t.Check(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check(%+v) = %v, want %q", tt.t, err, tt.want)
		}
	}
}

// TestTargets: [[notify.target]] sections become targets, with URLs and
// secrets read from the environment; a missing variable or a bad target
// is an error that names it.
func TestTargets(t *testing.T) {
	env := map[string]string{"SLACK": "https://hooks.slack.com/services/T/B/X", "KEY": "k"}
	getenv := func(k string) string { return env[k] }
	set, err := rules.Load(rules.DefaultFS(), &rules.UserFile{Name: "n.toml", Text: []byte(
		"[[notify.target]]\nkind = \"slack\"\nurl_env = \"SLACK\"\n\n[[notify.target]]\nkind = \"json\"\nurl = \"https://h.example/k\"\nsecret_env = \"KEY\"\n")})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := Targets(set.Notify, getenv)
	if err != nil || len(ts) != 2 || ts[0].URL != env["SLACK"] || string(ts[1].Secret) != "k" {
		t.Fatalf("Targets = %+v, %v", ts, err)
	}
	for _, tt := range []struct {
		spec rules.NotifyTarget
		want string
	}{
		{rules.NotifyTarget{Kind: "slack", URLEnv: "UNSET"}, "url_env UNSET is not set"},
		{rules.NotifyTarget{Kind: "slack", URL: "https://a", URLEnv: "SLACK"}, "url and url_env both set"},
		{rules.NotifyTarget{Kind: "json", URL: "https://a", SecretEnv: "UNSET"}, "secret_env UNSET is not set"},
		{rules.NotifyTarget{Kind: "json", URL: "ftp://a", SecretEnv: "KEY"}, "not an http or https URL"},
	} {
		if _, err := Targets([]rules.NotifyTarget{tt.spec}, getenv); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Targets(%+v) = %v, want %q", tt.spec, err, tt.want)
		}
	}
}
