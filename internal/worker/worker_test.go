package worker

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghapp"
	"github.com/keyburn/keyburn/internal/ghpush"
	"github.com/keyburn/keyburn/internal/gittest"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/testtools"
	"github.com/keyburn/keyburn/internal/verify"
	"github.com/keyburn/keyburn/rules"
)

// gitServer serves the bare repositories under root with git http-backend
// on loopback.
func gitServer(t *testing.T, root string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(gitHandler(t, root))
	t.Cleanup(srv.Close)
	return srv
}

// gitHandler is git http-backend serving root.
func gitHandler(t *testing.T, root string) http.Handler {
	t.Helper()
	h, err := gittest.HTTPBackend(root)
	if err != nil {
		testtools.Missing(t, "git", "apt-get install git", "the tests that run git")
	}
	return h
}

// fakeGitHub records the REST calls the worker makes.
type fakeGitHub struct {
	mu       sync.Mutex
	private  bool // what GET /repos/{owner}/{repo} says
	statuses []map[string]any
	issues   []map[string]any // created
	edits    []map[string]any // updated
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var m map[string]any
	json.Unmarshal(body, &m)
	if m == nil {
		m = map[string]any{}
	}
	m["path"] = r.URL.Path
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == "POST" && strings.Contains(r.URL.Path, "/statuses/"):
		f.statuses = append(f.statuses, m)
		w.WriteHeader(201)
		fmt.Fprint(w, `{"id":1}`)
	case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/issues"):
		f.issues = append(f.issues, m)
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"number":%d}`, len(f.issues))
	case r.Method == "PATCH" && strings.Contains(r.URL.Path, "/issues/"):
		f.edits = append(f.edits, m)
		fmt.Fprint(w, `{"number":1}`)
	case r.Method == "GET" && strings.Count(r.URL.Path, "/") == 3 && strings.HasPrefix(r.URL.Path, "/repos/"):
		fmt.Fprintf(w, `{"full_name":%q,"private":%v}`, strings.TrimPrefix(r.URL.Path, "/repos/"), f.private)
	default:
		http.NotFound(w, r)
	}
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return gittest.Run(t, dir, args...)
}

func pushPayload(ref, before, after string, deleted bool) []byte {
	p := map[string]any{"ref": ref, "before": before, "after": after, "deleted": deleted,
		"repository": map[string]any{"full_name": "acme/hello", "name": "hello", "default_branch": "main",
			"clone_url": "https://github.com/acme/hello.git", "owner": map[string]any{"login": "acme"}}}
	b, _ := json.Marshal(p)
	return b
}

// TestPushEndToEnd: a push carrying a live key ends with the key deleted, a
// failure status on the pushed commit and an issue, all through a real git
// server, moto_server and a GitHub-shaped API on loopback.
func TestPushEndToEnd(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	root := t.TempDir()
	work, _, base := newRepo(t, root)

	keyID, sec := m.UserKey(t, "deployer")
	os.WriteFile(filepath.Join(work, "deploy.env"), []byte("AWS_ACCESS_KEY_ID="+keyID+"\nAWS_SECRET_ACCESS_KEY="+sec+"\n"), 0o644)
	runGit(t, work, "add", "-A")
	runGit(t, work, "commit", "-q", "-m", "deploy config")
	for i := range 9 { // a push of 10 commits
		os.WriteFile(filepath.Join(work, fmt.Sprintf("n%d.txt", i)), []byte("note\n"), 0o644)
		runGit(t, work, "add", "-A")
		runGit(t, work, "commit", "-q", "-m", "note")
	}
	after := runGit(t, work, "rev-parse", "HEAD")
	runGit(t, work, "push", "-q", filepath.Join(root, "acme/hello.git"), "main")

	gitSrv := gitServer(t, root)
	gh := &fakeGitHub{}
	apiSrv := httptest.NewServer(gh)
	defer apiSrv.Close()
	client := github.NewClient(nil)
	client.BaseURL.Scheme, client.BaseURL.Host = "http", strings.TrimPrefix(apiSrv.URL, "http://")

	st := openStore(t)
	set, _ := rules.Default()
	r, err := respond.New(ctx, respond.Options{Policy: respond.Delete, Credentials: m.AdminProvider(), Endpoint: m.URL, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	w := New(Options{Queue: st, State: st, Engine: engine.Options{Matcher: detect.New(set)}, Verifier: verify.New(verify.Options{Endpoint: m.URL}),
		Responder: r, GitHub: client, Mirrors: t.TempDir(), Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: gitSrv.URL + "/"}}})

	if err := st.Enqueue(ctx, store.Delivery{ID: "d1", Event: "push", Payload: pushPayload("refs/heads/main", base, after, false)}); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Once(ctx); n != 1 || err != nil {
		t.Fatalf("Once = %d, %v", n, err)
	}
	d, _ := st.GetDelivery(ctx, "d1")
	if d.Status != store.Done {
		t.Fatalf("delivery %s: %s", d.Status, d.LastError)
	}
	if s := m.KeyStatus(t, "deployer", keyID); s != "" {
		t.Errorf("the pushed key is %q, want deleted", s)
	}
	if len(gh.statuses) != 1 || gh.statuses[0]["state"] != "failure" || !strings.HasSuffix(gh.statuses[0]["path"].(string), after) {
		t.Errorf("statuses = %v", gh.statuses)
	}
	// A public repository: the issue names the key, not where it is.
	if len(gh.issues) != 1 || !strings.Contains(gh.issues[0]["body"].(string), keyID) || strings.Contains(gh.issues[0]["body"].(string), "deploy.env") ||
		!strings.Contains(gh.issues[0]["body"].(string), "fingerprint") {
		t.Fatalf("issues = %v; want the key ID and fingerprint, and no path", gh.issues)
	}
	if strings.Contains(fmt.Sprint(gh.issues), sec) {
		t.Errorf("the issue holds the secret")
	}

	// A new branch is scanned against the default branch only; a deletion
	// adds nothing; both end done.
	runGit(t, work, "checkout", "-q", "-b", "feature")
	os.WriteFile(filepath.Join(work, "f.txt"), []byte("feature\n"), 0o644)
	runGit(t, work, "add", "-A")
	runGit(t, work, "commit", "-q", "-m", "feature")
	feat := runGit(t, work, "rev-parse", "HEAD")
	runGit(t, work, "push", "-q", filepath.Join(root, "acme/hello.git"), "feature")
	st.Enqueue(ctx, store.Delivery{ID: "d2", Event: "push", Payload: pushPayload("refs/heads/feature", ghpush.Zero, feat, false)})
	st.Enqueue(ctx, store.Delivery{ID: "d3", Event: "push", Payload: pushPayload("refs/heads/old", feat, ghpush.Zero, true)})
	for range 2 {
		if n, err := w.Once(ctx); n != 1 || err != nil {
			t.Fatalf("Once = %d, %v", n, err)
		}
	}
	for _, id := range []string{"d2", "d3"} {
		if d, _ := st.GetDelivery(ctx, id); d.Status != store.Done {
			t.Errorf("delivery %s: %s %s", id, d.Status, d.LastError)
		}
	}
	if len(gh.statuses) != 2 || gh.statuses[1]["state"] != "success" {
		t.Errorf("the new branch's status = %v, want success (the key on main is not in its range)", gh.statuses)
	}
}

// TestFailingFetchIsRetriedThenParked: a repository that cannot be fetched
// is retried, then parked with the reason; nothing is lost.
func TestFailingFetchIsRetriedThenParked(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	set, _ := rules.Default()
	w := New(Options{Queue: st, Engine: engine.Options{Matcher: detect.New(set)}, Mirrors: t.TempDir(),
		Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: "http://127.0.0.1:1/"}}, MaxAttempts: 2, Backoff: 1})
	st.Enqueue(ctx, store.Delivery{ID: "x", Event: "push", Payload: pushPayload("refs/heads/main",
		"1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222", false)})
	for range 2 {
		if n, _ := w.Once(ctx); n != 1 {
			t.Fatalf("no delivery claimed")
		}
	}
	d, _ := st.GetDelivery(ctx, "x")
	if d.Status != store.Parked || !strings.Contains(d.LastError, "fetch acme/hello") {
		t.Errorf("delivery: %s %q, want parked with the fetch error", d.Status, d.LastError)
	}
}

// TestPushShapes processes a first push, a force push and a tag push, each
// scanning exactly what it adds.
func TestPushShapes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	bare := filepath.Join(root, "acme/hello.git")
	runGit(t, root, "init", "-q", "--bare", "-b", "main", "acme/hello.git")
	work := t.TempDir()
	runGit(t, work, "init", "-q", "-b", "main")
	commit := func(name, body string) string {
		os.WriteFile(filepath.Join(work, name), []byte(body), 0o644)
		runGit(t, work, "add", "-A")
		runGit(t, work, "commit", "-q", "-m", name)
		return runGit(t, work, "rev-parse", "HEAD")
	}
	key := func(id, sec string) string {
		return "aws_access_key_id = " + id + "\naws_secret_access_key = " + sec + "\n"
	}
	first := commit("a.env", key("AKIAROSDW5AABZW3VLYZ", "5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF"))
	runGit(t, work, "push", "-q", bare, "main")

	gitSrv := gitServer(t, root)
	st := openStore(t)
	set, _ := rules.Default()
	w := New(Options{Queue: st, Engine: engine.Options{Matcher: detect.New(set)}, Mirrors: t.TempDir(),
		Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: gitSrv.URL + "/"}}})
	process := func(ref, before, after string) (string, []string) {
		t.Helper()
		res, err := w.Process(ctx, store.Delivery{ID: "x", Event: "push", Payload: pushPayload(ref, before, after, false)})
		if err != nil {
			t.Fatalf("Process(%s %s..%s): %v", ref, before, after, err)
		}
		var ids []string
		for _, f := range res.Findings {
			ids = append(ids, f.KeyID)
		}
		return res.Range, ids
	}
	// A first push of the default branch: its whole history.
	if rng, ids := process("refs/heads/main", ghpush.Zero, first); rng != ".."+first || strings.Join(ids, ",") != "AKIAROSDW5AABZW3VLYZ" {
		t.Errorf("first push: range %s, found %v", rng, ids)
	}
	// A force push that rewrites main: only the rewritten commits, which
	// add a.env again (the amended root) and b.env.
	runGit(t, work, "reset", "-q", "--hard", "HEAD")
	runGit(t, work, "commit", "-q", "--amend", "-m", "rewritten")
	runGit(t, work, "rm", "-q", "a.env")
	rewritten := commit("b.env", key("AKIABOTYWKPD2H3RV7SD", "XA9FCuj67f/VxTPchbu1o68EH55iS+Ro0f9edXs+"))
	runGit(t, work, "push", "-q", "--force", bare, "main")
	if rng, ids := process("refs/heads/main", first, rewritten); rng != first+".."+rewritten || strings.Join(ids, ",") != "AKIAROSDW5AABZW3VLYZ,AKIABOTYWKPD2H3RV7SD" {
		t.Errorf("force push: range %s, found %v", rng, ids)
	}
	// A tag on a commit off main: what it adds over main.
	runGit(t, work, "checkout", "-q", "-b", "rel")
	tagged := commit("c.env", key("AKIABOVNVX6HFEPNJALU", "+jWGg/9XDwmrm7wC0KCwKrnsBqnEQR5Dr8Z+VC4A"))
	runGit(t, work, "tag", "v1")
	runGit(t, work, "push", "-q", bare, "v1")
	if rng, ids := process("refs/tags/v1", ghpush.Zero, tagged); rng != "refs/heads/main.."+tagged || strings.Join(ids, ",") != "AKIABOVNVX6HFEPNJALU" {
		t.Errorf("tag push: range %s, found %v", rng, ids)
	}
}

// TestGitHubAppInstallationToken: with a GitHub App, a push's installation
// token fetches the repository and posts the status; nothing else does.
func TestGitHubAppInstallationToken(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	_, _, head := newRepo(t, root)

	backend := gitHandler(t, root)
	// The git server takes only the installation token.
	gitSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "x-access-token" || p != "ghs_install" {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "auth", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	defer gitSrv.Close()

	_, pemKey := appKey(t)
	var statusAuth string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/repos/acme/hello/installation"):
			fmt.Fprint(w, `{"id":42}`)
		case strings.HasSuffix(r.URL.Path, "/app/installations/42/access_tokens"):
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ey") {
				http.Error(w, "no app JWT", 401)
				return
			}
			w.WriteHeader(201)
			fmt.Fprintf(w, `{"token":"ghs_install","expires_at":%q}`, "2099-01-01T00:00:00Z")
		case strings.Contains(r.URL.Path, "/statuses/"):
			statusAuth = r.Header.Get("Authorization")
			w.WriteHeader(201)
			fmt.Fprint(w, `{}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	app, err := ghapp.New(7, pemKey, api.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	client, err := github.NewClient(nil).WithEnterpriseURLs(api.URL+"/", api.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	set, _ := rules.Default()
	w := New(Options{Queue: st, Engine: engine.Options{Matcher: detect.New(set)}, Mirrors: t.TempDir(), App: app, GitHub: client,
		Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: gitSrv.URL + "/"}}})
	var p map[string]any
	json.Unmarshal(pushPayload("refs/heads/main", ghpush.Zero, head, false), &p)
	p["installation"] = map[string]any{"id": 666} // a payload's word is not taken: the API names 42
	body, _ := json.Marshal(p)
	if _, err := w.Process(ctx, store.Delivery{ID: "app", Event: "push", Payload: body}); err != nil {
		t.Fatalf("Process with an installation token: %v", err)
	}
	if statusAuth != "Bearer ghs_install" {
		t.Errorf("status posted with %q, want the installation token", statusAuth)
	}
}

func appKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// newRepo makes root/acme/hello.git and a work tree that pushes to it, with
// one commit holding README; it returns the work tree, the bare repository
// and the commit.
func newRepo(t *testing.T, root string) (work, bare, head string) {
	t.Helper()
	bare = filepath.Join(root, "acme/hello.git")
	runGit(t, root, "init", "-q", "--bare", "-b", "main", "acme/hello.git")
	work = t.TempDir()
	runGit(t, work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "README"), []byte("hello\n"), 0o644)
	runGit(t, work, "add", "-A")
	runGit(t, work, "commit", "-q", "-m", "one")
	head = runGit(t, work, "rev-parse", "HEAD")
	runGit(t, work, "push", "-q", bare, "main")
	return work, bare, head
}

// openStore opens a fresh state store, closed at the end of the test.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestIssueTitle(t *testing.T) {
	admin := &finding.Reach{Level: finding.ReachAdmin, Why: []string{"admin: * on * (AdministratorAccess)"}}
	for _, tc := range []struct {
		v        *finding.Verification
		severity string
		want     string
	}{
		{&finding.Verification{Status: "live", Account: "123456789012"}, "high", "Live AWS key AKIAROSDW5AABZW3VLYZ pushed (deleted)"},
		{&finding.Verification{Status: "live", Account: "123456789012", Root: true}, "critical",
			"CRITICAL: live AWS ROOT key AKIAROSDW5AABZW3VLYZ pushed (deleted): it can do everything in account 123456789012"},
		{&finding.Verification{Status: "live", Account: "123456789012", Reach: admin}, "critical",
			"CRITICAL: live AWS key AKIAROSDW5AABZW3VLYZ pushed (deleted): administrator: it can do everything"},
		{&finding.Verification{Status: "live", Account: "123456789012", Reach: &finding.Reach{Level: finding.ReachNone}}, "medium",
			"Live AWS key AKIAROSDW5AABZW3VLYZ pushed (deleted)"},
	} {
		if got := issueTitle(&finding.Finding{KeyID: "AKIAROSDW5AABZW3VLYZ", Severity: tc.severity, Verification: tc.v}, "deleted", "pushed"); got != tc.want {
			t.Errorf("issueTitle = %q, want %q", got, tc.want)
		}
	}
}

// TestLogFindings: one line per key found; a second line only where
// something was done, failed, or a live key was left alone: never for a
// dead key the responder had nothing to do with.
func TestLogFindings(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&b, nil))
	f := func(id, status, action, reason, errText string) *finding.Finding {
		return &finding.Finding{KeyID: id, Verification: &finding.Verification{Status: status},
			Response: &finding.Response{Action: action, Reason: reason, Error: errText}}
	}
	logFindings(log, Result{Repo: "acme/app", Findings: []*finding.Finding{
		f("AKIADELETED", "live", "deleted", "", ""),
		f("AKIADEAD", "invalid", "skipped", "not live (invalid)", ""),
		f("AKIAREFUSED", "live", "skipped", "refused: account 111122223333 is in deny_accounts", ""),
		f("AKIAFAILED", "live", "failed", "owner check: AccessDenied", "AccessDenied"),
		f("AKIAEXPOSED", "exposed", "skipped", "refused: account 111122223333 is a canary (honeytoken) account", ""),
	}})
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(m["msg"], " ", m["key_id"]))
	}
	want := []string{"key found AKIADELETED", "key acted on AKIADELETED", "key found AKIADEAD",
		"key found AKIAREFUSED", "live key left alone AKIAREFUSED", "key found AKIAFAILED", "KEY ACTION FAILED AKIAFAILED",
		"key found AKIAEXPOSED", "live key left alone AKIAEXPOSED"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
