package receiver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	flag "github.com/spf13/pflag"

	"github.com/keyburn/keyburn/internal/ghpush"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/store"
)

const testSecret = "It's a Secret to Everybody"

// TestSignatureVector checks GitHub's published test vector for
// X-Hub-Signature-256.
func TestSignatureVector(t *testing.T) {
	const header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if !validSignature([]byte(testSecret), []byte("Hello, World!"), header) {
		t.Errorf("GitHub's test vector does not verify")
	}
	for _, bad := range []string{"", "sha256=", "sha1=01157a1fbd5d0e4cf1d0f2a2a6a8b6a4de7c5b3e",
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18", "sha256=zz", "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"} {
		if validSignature([]byte(testSecret), []byte("Hello, World!"), bad) {
			t.Errorf("validSignature accepted %q", bad)
		}
	}
	if validSignature(nil, []byte("x"), sign(nil, []byte("x"))) {
		t.Errorf("an empty secret verified a signature")
	}
}

func sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func FuzzWebhookSignature(f *testing.F) {
	f.Add([]byte("Hello, World!"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	f.Add([]byte(""), "sha256=")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		if validSignature([]byte(testSecret), body, header) && header != sign([]byte(testSecret), body) &&
			!strings.EqualFold(header, sign([]byte(testSecret), body)) {
			t.Fatalf("accepted a signature that is not the body's")
		}
	})
}

type testServer struct {
	srv   *httptest.Server
	store *store.Store
	logs  *bytes.Buffer
	h     *handler
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &bytes.Buffer{}
	h := &handler{secret: []byte(testSecret), store: st, log: slog.New(slog.NewJSONHandler(logs, nil)), metrics: newMetrics(),
		bodies: newBodies(bodyBudget, bodyWait)}
	srv := httptest.NewServer(newServer("", h).Handler)
	t.Cleanup(srv.Close)
	return &testServer{srv: srv, store: st, logs: logs, h: h}
}

func payload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (ts *testServer) post(t *testing.T, event, delivery, contentType string, body []byte, signature string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.srv.URL+"/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if event != "" {
		req.Header.Set("X-GitHub-Event", event)
	}
	if delivery != "" {
		req.Header.Set("X-GitHub-Delivery", delivery)
	}
	if signature != "" {
		req.Header.Set("X-Hub-Signature-256", signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWebhook(t *testing.T) {
	ts := newTestServer(t)
	push := payload(t, "push.json")
	good := sign([]byte(testSecret), push)
	// GitHub's default content type: payload=<JSON>, signed over the form
	// body. (Another push than the others: a new after.)
	other := bytes.ReplaceAll(payload(t, "push-new-branch.json"), []byte("6113728f27ae82c7b1a177c8d03f9e96e0adf246"), []byte("7113728f27ae82c7b1a177c8d03f9e96e0adf246"))
	form := []byte("payload=" + url.QueryEscape(string(other)))
	escaping := bytes.Replace(push, []byte(`"full_name": "Codertocat/Hello-World"`), []byte(`"full_name": "../escaped"`), 1)
	if bytes.Equal(escaping, push) {
		t.Fatal("the fixture's full_name was not found")
	}
	twoPayloads := []byte("payload=" + url.QueryEscape(string(other)) + "&payload=" + url.QueryEscape(string(push)))
	tests := []struct {
		name, event, delivery, ctype string
		body                         []byte
		sig                          string
		want                         int
		wantBody                     string
	}{
		{"push queued", "push", "d-1", "application/json", push, good, 202, "queued"},
		{"redelivery", "push", "d-1", "application/json", push, good, 202, "duplicate"},
		{"push new branch", "push", "d-2", "application/json", payload(t, "push-new-branch.json"), sign([]byte(testSecret), payload(t, "push-new-branch.json")), 202, "queued"},
		// push.json and push-tag-deleted.json are the same push: a replay.
		{"tag deleted", "push", "d-3", "application/json", payload(t, "push-tag-deleted.json"), sign([]byte(testSecret), payload(t, "push-tag-deleted.json")), 202, "duplicate"},
		{"ping", "ping", "d-4", "application/json", payload(t, "ping.json"), sign([]byte(testSecret), payload(t, "ping.json")), 200, "pong"},
		{"other event", "issues", "d-5", "application/json", []byte(`{}`), sign([]byte(testSecret), []byte(`{}`)), 202, "ignored"},
		{"replayed under a new delivery ID", "push", "d-6", "application/json; charset=utf-8", push, good, 202, "duplicate"},
		{"form-encoded, as GitHub sends by default", "push", "d-14", "application/x-www-form-urlencoded", form, sign([]byte(testSecret), form), 202, "queued"},
		{"form-encoded, signed over the JSON only", "push", "d-15", "application/x-www-form-urlencoded", form, sign([]byte(testSecret), other), 401, "bad-signature"},
		{"form-encoded, two payloads", "push", "d-16", "application/x-www-form-urlencoded", twoPayloads, sign([]byte(testSecret), twoPayloads), 400, "exactly one payload"},
		{"escaping repository name", "push", "d-17", "application/json", escaping, sign([]byte(testSecret), escaping), 400, "not a GitHub owner name"},
		{"no signature", "push", "d-7", "application/json", push, "", 401, "bad-signature"},
		{"wrong signature", "push", "d-8", "application/json", push, sign([]byte("other"), push), 401, "bad-signature"},
		{"sha1 only", "push", "d-9", "application/json", push, "sha1=" + strings.Repeat("0", 40), 401, "bad-signature"},
		{"tampered body", "push", "d-10", "application/json", append(push[:len(push):len(push)], ' '), good, 401, "bad-signature"},
		{"form content type, JSON body", "push", "d-11", "application/x-www-form-urlencoded", push, good, 400, "payload field"},
		{"other content type", "push", "d-11b", "text/plain", push, good, 415, "content type"},
		{"malformed JSON", "push", "d-12", "application/json", []byte(`{"ref":`), sign([]byte(testSecret), []byte(`{"ref":`)), 400, "malformed JSON"},
		{"not a push shape", "push", "d-13", "application/json", []byte(`{"a":1}`), sign([]byte(testSecret), []byte(`{"a":1}`)), 400, "not a usable push"},
		{"no delivery ID", "push", "", "application/json", push, good, 400, "X-GitHub-Delivery"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := ts.post(t, tt.event, tt.delivery, tt.ctype, tt.body, tt.sig)
			if code != tt.want || !strings.Contains(body, tt.wantBody) {
				t.Errorf("POST = %d %s, want %d with %q", code, body, tt.want, tt.wantBody)
			}
		})
	}
	// Stored once each, as sent.
	d, err := ts.store.GetDelivery(context.Background(), "d-1")
	var stored, sent ghpush.Push
	json.Unmarshal(d.Payload, &stored)
	json.Unmarshal(push, &sent)
	sent.Check()
	if err != nil || !reflect.DeepEqual(stored, sent) || stored.After == "" || d.Status != store.Queued || len(d.Payload) >= len(push) {
		t.Errorf("stored delivery: %v, status %q, %+v", err, d.Status, stored)
	}
	depth, _ := ts.store.QueueDepth(context.Background())
	if depth[store.Queued] != 3 {
		t.Errorf("queued deliveries = %d, want 3", depth[store.Queued])
	}
	// The logs never hold a MAC.
	if strings.Contains(ts.logs.String(), good[7:]) || strings.Contains(ts.logs.String(), "sha256=") {
		t.Errorf("a signature reached the logs")
	}
}

func TestWebhookLimits(t *testing.T) {
	ts := newTestServer(t)
	big := bytes.Repeat([]byte("a"), maxBody+1)
	if code, _ := ts.post(t, "push", "big", "application/json", big, sign([]byte(testSecret), big)); code != 413 {
		t.Errorf("oversize body: %d, want 413", code)
	}
	resp, err := http.Get(ts.srv.URL + "/webhook")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET /webhook: %d, want 405", resp.StatusCode)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(ts.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		if path == "/metrics" && !strings.Contains(string(b), "keyburn_webhook_deliveries_total") {
			t.Errorf("metrics lack the delivery counter:\n%s", b)
		}
	}
}

func TestRefusesToStartWithoutSecret(t *testing.T) {
	t.Setenv("KEYBURN_WEBHOOK_SECRET", "")
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--listen", "127.0.0.1:0", "--state", filepath.Join(t.TempDir(), "s.db")}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no webhook secret") {
		t.Errorf("run without a secret = %v, want a refusal", err)
	}
	empty := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(empty, []byte("\n"), 0o600)
	err = run(context.Background(), []string{"--listen", "127.0.0.1:0", "--secret-file", empty}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no webhook secret") {
		t.Errorf("run with an empty secret file = %v, want a refusal", err)
	}
}

// TestReadyzCountsWorkers: /readyz fails while fewer workers are alive than
// configured.
func TestReadyzCountsWorkers(t *testing.T) {
	ts := newTestServer(t)
	ts.h.workers = 2
	ts.h.alive.Store(1)
	resp, err := http.Get(ts.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "1 of 2 workers alive") {
		t.Errorf("/readyz with a dead worker: %d %s", resp.StatusCode, b)
	}
	ts.h.alive.Store(2)
	if resp, err := http.Get(ts.srv.URL + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/readyz with every worker alive: %v %v", resp, err)
	}
}

// TestOwnerAllowlistAtTheDoor: a push to an owner the receiver does not
// act for is acknowledged and not stored.
func TestOwnerAllowlistAtTheDoor(t *testing.T) {
	ts := newTestServer(t)
	ts.h.owners = ghrepo.Owners{"acme"}
	push := payload(t, "push.json") // Codertocat/Hello-World
	code, body := ts.post(t, "push", "o-1", "application/json", push, sign([]byte(testSecret), push))
	if code != 202 || !strings.Contains(body, "ignored") {
		t.Errorf("a push to another owner: %d %s, want 202 ignored", code, body)
	}
	if depth, _ := ts.store.QueueDepth(context.Background()); depth[store.Queued] != 0 {
		t.Errorf("it was queued: %v", depth)
	}
}

// TestHelp: --help prints usage and every flag to standard output, and is
// no error; an unknown flag is one line pointing at --help.
func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, &errOut); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run --help = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), "--listen") || !strings.Contains(out.String(), "--respond") || errOut.Len() > 0 {
		t.Errorf("--help wrote stdout %q, stderr %q", out.String(), errOut.String())
	}
	err := run(context.Background(), []string{"--frob"}, &out, &errOut)
	if err == nil || err.Error() != "unknown flag: --frob (see keyburn-webhook --help)" {
		t.Errorf("run --frob = %v", err)
	}
}

// TestSecretScanningAlertDelivery: GitHub's secret_scanning_alert event is
// checked like a push and stored for the workers when it asks for action
// (an AWS alert created, reopened or publicly leaked); others are
// acknowledged and ignored, a malformed one refused, a redelivery stored
// once. What is stored is what the worker reads, no more.
func TestSecretScanningAlertDelivery(t *testing.T) {
	ts := newTestServer(t)
	created := payload(t, "secret-scanning-alert.json")
	variant := func(old, new string) []byte {
		b := bytes.Replace(created, []byte(old), []byte(new), 1)
		if bytes.Equal(b, created) {
			t.Fatalf("%q is not in the fixture", old)
		}
		return b
	}
	reopened := variant(`"action": "created"`, `"action": "reopened"`)
	resolved := variant(`"action": "created"`, `"action": "resolved"`)
	slack := variant(`"aws_access_key_id"`, `"slack_api_token"`)
	escaping := variant(`"full_name": "acme/app"`, `"full_name": "acme/../../etc"`)
	tests := []struct {
		name, delivery string
		body           []byte
		want           int
		wantBody       string
	}{
		{"created", "a-1", created, 202, "queued"},
		{"redelivered under a new ID", "a-2", created, 202, "duplicate"},
		{"reopened", "a-3", reopened, 202, "queued"},
		{"resolved", "a-4", resolved, 202, "needs nothing done"},
		{"not an AWS key", "a-5", slack, 202, "not an AWS key"},
		{"escaping repository name", "a-6", escaping, 400, "not a usable secret_scanning_alert event"},
		{"not an alert shape", "a-7", []byte(`{"action":"created"}`), 400, "not a usable secret_scanning_alert event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := ts.post(t, "secret_scanning_alert", tt.delivery, "application/json", tt.body, sign([]byte(testSecret), tt.body))
			if code != tt.want || !strings.Contains(body, tt.wantBody) {
				t.Errorf("POST = %d %s, want %d with %q", code, body, tt.want, tt.wantBody)
			}
		})
	}
	if code, _ := ts.post(t, "secret_scanning_alert", "a-8", "application/json", created, sign([]byte("other"), created)); code != 401 {
		t.Errorf("a wrongly signed alert: %d, want 401", code)
	}
	d, err := ts.store.GetDelivery(context.Background(), "a-1")
	if err != nil || d.Event != "secret_scanning_alert" || d.Status != store.Queued {
		t.Fatalf("stored alert: %+v, %v", d, err)
	}
	if string(d.Payload) != `{"action":"created","alert":{"number":42,"secret_type":"aws_access_key_id","updated_at":"2026-11-27T21:14:05Z"},"repository":{"full_name":"acme/app"}}` {
		t.Errorf("stored payload %s", d.Payload)
	}
}

// TestUnauthenticatedBodiesAreBounded: bodies are read before anyone is
// authenticated, so together they may hold only a budget of memory. A
// sender that declares a large body and stalls holds its share; another
// that does not fit is answered 503 with Retry-After (GitHub retries), one
// that fits goes on, and once the first is gone there is room again. A
// declared length over the cap is refused before anything is read.
func TestUnauthenticatedBodiesAreBounded(t *testing.T) {
	ts := newTestServer(t)
	ts.h.bodies = newBodies(2048, 200*time.Millisecond)
	addr := strings.TrimPrefix(ts.srv.URL, "http://")
	stall, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(stall, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n"+
		"X-GitHub-Delivery: stall\r\nContent-Length: 1500\r\n\r\n{\"ref\":")
	// Wait until the stalled request holds its reservation.
	for i := 0; ; i++ {
		if !ts.h.bodies.sem.TryAcquire(1000) {
			break // 1,500 of 2,048 bytes are held
		}
		ts.h.bodies.sem.Release(1000)
		if i == 200 {
			t.Fatal("the stalled request never reserved its body")
		}
		time.Sleep(10 * time.Millisecond)
	}
	post := func(n int) (int, string) {
		body := bytes.Repeat([]byte(" "), n)
		req, _ := http.NewRequest("POST", ts.srv.URL+"/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "ping")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprint("d", n))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	if code, retry := post(1000); code != http.StatusServiceUnavailable || retry == "" {
		t.Errorf("a body beyond the budget: %d (Retry-After %q), want 503 with Retry-After", code, retry)
	}
	if code, _ := post(400); code != http.StatusUnauthorized {
		t.Errorf("a body within the budget: %d, want 401 (read, then its missing signature refused)", code)
	}
	stall.Close()
	var code int
	for range 100 {
		if code, _ = post(1000); code == http.StatusUnauthorized {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code != http.StatusUnauthorized {
		t.Errorf("after the stalled sender left: %d, want 401", code)
	}
	// A declared length over the cap: refused at once, nothing reserved.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", maxBody+1)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, "413") {
		t.Errorf("a declared body over the cap: %q, want 413", line)
	}
}

// TestParkedDeliveryRequeuedByRedelivery: a push parked after failing (a
// GitHub outage outlasting its retries) is not "duplicate" when GitHub
// redelivers it (the same GUID) or the same push arrives under a new one:
// it is queued again, attempts afresh. /readyz stays ready (out of a load
// balancer the receiver would lose new deliveries too) and says how many
// are parked.
func TestParkedDeliveryRequeuedByRedelivery(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t)
	push := payload(t, "push.json")
	good := sign([]byte(testSecret), push)
	if code, body := ts.post(t, "push", "p-1", "application/json", push, good); code != 202 || !strings.Contains(body, "queued") {
		t.Fatalf("first delivery: %d %s", code, body)
	}
	park := func() {
		t.Helper()
		for range 12 {
			d, ok, err := ts.store.Claim(ctx, time.Minute, 12)
			if err != nil || !ok {
				t.Fatalf("claim: %v %v", ok, err)
			}
			if err := ts.store.Fail(ctx, d, "fetch acme/app: GitHub answered 503", 0, 12); err != nil {
				t.Fatal(err)
			}
		}
		if d, _ := ts.store.GetDelivery(ctx, "p-1"); d.Status != store.Parked {
			t.Fatalf("after 12 failures the delivery is %s", d.Status)
		}
	}
	park()
	resp, err := http.Get(ts.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "1 parked deliveries") {
		t.Errorf("/readyz with a parked delivery: %d %q", resp.StatusCode, b)
	}
	if code, body := ts.post(t, "push", "p-1", "application/json", push, good); code != 202 || !strings.Contains(body, "requeued") {
		t.Fatalf("GitHub's redelivery of a parked delivery: %d %s, want 202 requeued", code, body)
	}
	if d, _ := ts.store.GetDelivery(ctx, "p-1"); d.Status != store.Queued || d.Attempts != 0 || !strings.Contains(d.LastError, "requeued by a redelivery") {
		t.Errorf("after the redelivery: %+v", d)
	}
	if code, body := ts.post(t, "push", "p-1", "application/json", push, good); code != 202 || !strings.Contains(body, "duplicate") {
		t.Errorf("a redelivery of a queued delivery: %d %s, want duplicate", code, body)
	}
	park()
	if code, body := ts.post(t, "push", "p-2", "application/json", push, good); code != 202 || !strings.Contains(body, "requeued") {
		t.Errorf("the same push under a new delivery ID, once parked: %d %s, want requeued", code, body)
	}
}
