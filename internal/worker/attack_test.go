package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghpush"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/rules"
)

// trap is a listener on loopback that must never be contacted: it records
// every request and whatever credentials came with it.
type trap struct {
	srv  *httptest.Server
	hits atomic.Int32
	mu   sync.Mutex
	auth []string
}

func newTrap(t *testing.T) *trap {
	tr := &trap{}
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.hits.Add(1)
		tr.mu.Lock()
		tr.auth = append(tr.auth, r.Header.Get("Authorization"))
		tr.mu.Unlock()
		http.Error(w, "trap", http.StatusNotFound)
	}))
	t.Cleanup(tr.srv.Close)
	return tr
}

func hostilePayload(t *testing.T, fullName, cloneURL, after string) []byte {
	t.Helper()
	var p map[string]any
	json.Unmarshal(pushPayload("refs/heads/main", ghpush.Zero, after, false), &p)
	repo := p["repository"].(map[string]any)
	repo["full_name"], repo["clone_url"] = fullName, cloneURL
	repo["git_url"], repo["ssh_url"], repo["html_url"] = cloneURL, cloneURL, cloneURL
	b, _ := json.Marshal(p)
	return b
}

// TestTokenGoesOnlyToTheConfiguredHost: whatever clone URL a signed payload
// names (a listener on loopback over http, file://, file:-x), the worker
// fetches from the URL built from the repository's name and the configured
// host, and the token goes there and nowhere else.
func TestTokenGoesOnlyToTheConfiguredHost(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	_, _, head := newRepo(t, root)
	backend := gitHandler(t, root)
	var gitAuth atomic.Value
	gitSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gitAuth.Store(r.Header.Get("Authorization"))
		backend.ServeHTTP(w, r)
	}))
	defer gitSrv.Close()
	evil := newTrap(t)
	local := filepath.Join(root, "acme/hello.git")
	set, _ := rules.Default()
	for _, clone := range []string{evil.srv.URL + "/evil/x.git", "file://" + local, "file:-x", "ext::sh -c touch% /tmp/pwned", ""} {
		t.Run(clone, func(t *testing.T) {
			st := openStore(t)
			w := New(Options{Queue: st, Engine: engine.Options{Matcher: detect.New(set)}, Mirrors: t.TempDir(), Token: "ghs_secret_token",
				Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: gitSrv.URL + "/"}}})
			gitAuth.Store("")
			if _, err := w.Process(ctx, store.Delivery{ID: "x", Event: "push", Payload: hostilePayload(t, "acme/hello", clone, head)}); err != nil {
				t.Fatalf("Process: %v", err)
			}
			if got := gitAuth.Load().(string); !strings.HasPrefix(got, "Basic ") {
				t.Errorf("the configured git server got no token (%q)", got)
			}
		})
	}
	if n := evil.hits.Load(); n != 0 {
		withAuth := 0
		for _, a := range evil.auth {
			if a != "" {
				withAuth++
			}
		}
		t.Errorf("the payload's clone URL was contacted %d times, %d of them with credentials", n, withAuth)
	}
}

// TestHostileNames: a repository name that would escape the mirror
// directory or the API path is refused, nothing is created outside the
// mirrors, and the delivery is parked at once (it can never work).
func TestHostileNames(t *testing.T) {
	ctx := context.Background()
	evil := newTrap(t)
	base := t.TempDir()
	mirrors := filepath.Join(base, "mirrors")
	set, _ := rules.Default()
	st := openStore(t)
	client := github.NewClient(nil)
	client.BaseURL.Scheme, client.BaseURL.Host = "http", strings.TrimPrefix(evil.srv.URL, "http://")
	w := New(Options{Queue: st, Engine: engine.Options{Matcher: detect.New(set)}, Mirrors: mirrors, GitHub: client, MaxAttempts: 5,
		Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: evil.srv.URL + "/"}}})
	for i, name := range []string{"../escaped", "acme/..", "acme/../../escaped", "/etc/passwd", "acme/x/../../../y"} {
		id := fmt.Sprintf("bad-%d", i)
		st.Enqueue(ctx, store.Delivery{ID: id, Event: "push", Payload: hostilePayload(t, name, "", strings.Repeat("a", 40))})
		if n, err := w.Once(ctx); n != 1 || err != nil {
			t.Fatalf("%s: Once = %d, %v", name, n, err)
		}
		d, _ := st.GetDelivery(ctx, id)
		if d.Status != store.Parked || !strings.Contains(d.LastError, "not a GitHub") {
			t.Errorf("%s: %s %q, want parked at once with the reason", name, d.Status, d.LastError)
		}
	}
	entries, _ := os.ReadDir(base)
	if len(entries) > 1 || evil.hits.Load() != 0 {
		t.Errorf("after hostile names: %v in %s, %d requests", entries, base, evil.hits.Load())
	}
}

// TestForcePushedAwayIsScanned: a commit with a key is pushed, then
// force-pushed away before the worker runs. No ref holds it, but the server
// still serves it by SHA (as GitHub does): the worker fetches it by SHA and
// finds the key. A commit the server does not have at all is raised, and on
// the last attempt reported in an issue.
func TestForcePushedAwayIsScanned(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	work, bare, base := newRepo(t, root)
	runGit(t, bare, "config", "uploadpack.allowAnySHA1InWant", "true")
	os.WriteFile(filepath.Join(work, "oops.env"), []byte("aws_access_key_id = AKIAROSDW5AABZW3VLYZ\naws_secret_access_key = 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\n"), 0o644)
	runGit(t, work, "add", "-A")
	runGit(t, work, "commit", "-q", "-m", "oops")
	leaked := runGit(t, work, "rev-parse", "HEAD")
	runGit(t, work, "push", "-q", bare, "main")
	runGit(t, work, "reset", "-q", "--hard", base)
	runGit(t, work, "push", "-q", "--force", bare, "main") // panicked, force-pushed

	gitSrv := gitServer(t, root)
	gh := &fakeGitHub{}
	api := httptest.NewServer(gh)
	defer api.Close()
	client := github.NewClient(nil)
	client.BaseURL.Scheme, client.BaseURL.Host = "http", strings.TrimPrefix(api.URL, "http://")
	set, _ := rules.Default()
	st := openStore(t)
	w := New(Options{Queue: st, Engine: engine.Options{Matcher: detect.New(set)}, Mirrors: t.TempDir(), GitHub: client, MaxAttempts: 2, Backoff: 1,
		Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: gitSrv.URL + "/"}}})
	res, err := w.Process(ctx, store.Delivery{ID: "p", Event: "push", Attempts: 1, Payload: pushPayload("refs/heads/main", base, leaked, false)})
	if err != nil || len(res.Findings) != 1 || res.Findings[0].KeyID != "AKIAROSDW5AABZW3VLYZ" {
		t.Fatalf("force-pushed-away commit: %+v, %v; want the key found", res, err)
	}

	gone := strings.Repeat("d", 40)
	st.Enqueue(ctx, store.Delivery{ID: "gone", Event: "push", Payload: pushPayload("refs/heads/main", base, gone, false)})
	var unfetched []string
	w.o.Observe = func(res Result, _ time.Duration, _ error) { unfetched = append(unfetched, res.Unfetchable...) }
	for range 2 {
		if n, err := w.Once(ctx); n != 1 || err != nil {
			t.Fatalf("Once = %d, %v", n, err)
		}
	}
	d, _ := st.GetDelivery(ctx, "gone")
	if d.Status != store.Parked || !strings.Contains(d.LastError, "even by its SHA") || len(unfetched) != 2 {
		t.Errorf("an unfetchable commit: %s %q, observed %v", d.Status, d.LastError, unfetched)
	}
	if len(gh.issues) != 1 || !strings.Contains(gh.issues[0]["body"].(string), gone) {
		t.Errorf("issues = %v, want one naming the commit nobody scanned", gh.issues)
	}
}

// TestPanicFailsTheDeliveryNotTheWorker: a delivery whose processing panics
// is failed with the reason, and the worker goes on with the next one.
func TestPanicFailsTheDeliveryNotTheWorker(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	w := New(Options{Queue: st, MaxAttempts: 3, Backoff: time.Hour,
		testOnlyProcess: func(d store.Delivery) {
			if d.ID == "boom" {
				var m map[string]int
				m["x"]++ // a nil map: a real runtime panic
			}
		}})
	st.Enqueue(ctx, store.Delivery{ID: "boom", Event: "ping", Payload: []byte(`{}`)})
	st.Enqueue(ctx, store.Delivery{ID: "fine", Event: "ping", Payload: []byte(`{}`)})
	for range 2 {
		if n, err := w.Once(ctx); n != 1 || err != nil {
			t.Fatalf("Once = %d, %v", n, err)
		}
	}
	boom, _ := st.GetDelivery(ctx, "boom")
	fine, _ := st.GetDelivery(ctx, "fine")
	if boom.Status != store.Queued || boom.Attempts != 1 || !strings.Contains(boom.LastError, "panic") || fine.Status != store.Done {
		t.Errorf("after a panic: boom %s %q (attempt %d), fine %s", boom.Status, boom.LastError, boom.Attempts, fine.Status)
	}
}

// TestLeaseRenewedWhileWorking: a delivery that takes longer than its lease
// is not claimed by another worker meanwhile, and its holder finishes it.
func TestLeaseRenewedWhileWorking(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	release := make(chan struct{})
	w := New(Options{Queue: st, Lease: 300 * time.Millisecond, testOnlyProcess: func(store.Delivery) { <-release }})
	st.Enqueue(ctx, store.Delivery{ID: "slow", Event: "ping", Payload: []byte(`{}`)})
	done := make(chan error, 1)
	go func() { _, err := w.Once(ctx); done <- err }()
	for range 5 { // 5 × 200 ms: more than three leases
		time.Sleep(200 * time.Millisecond)
		if d, ok, err := st.Claim(ctx, time.Minute, 5); ok || err != nil {
			t.Fatalf("another worker claimed the delivery being worked on: %+v, %v", d, err)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d, _ := st.GetDelivery(ctx, "slow"); d.Status != store.Done {
		t.Errorf("slow delivery: %s %q", d.Status, d.LastError)
	}
}

// TestShutdownGivesBack: a delivery in progress when work ends is given
// back to the queue at once, not counted as an attempt, not left running.
func TestShutdownGivesBack(t *testing.T) {
	st := openStore(t)
	started := make(chan struct{})
	w := New(Options{Queue: st, testOnlyProcess: func(store.Delivery) { close(started) }})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	w.o.Rewrites = []mirror.Rewrite{{From: "https://github.com/", To: hang.URL + "/"}}
	w.o.Mirrors = t.TempDir()
	st.Enqueue(context.Background(), store.Delivery{ID: "inflight", Event: "push", Payload: pushPayload("refs/heads/main", ghpush.Zero, strings.Repeat("b", 40), false)})
	stop, stopClaiming := context.WithCancel(context.Background())
	work, stopWork := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { w.Run(stop, work); close(ran) }()
	<-started
	stopClaiming()
	time.Sleep(100 * time.Millisecond) // the fetch hangs: the grace period runs out
	stopWork()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop")
	}
	d, _ := st.GetDelivery(context.Background(), "inflight")
	if d.Status != store.Queued || d.Attempts != 0 {
		t.Errorf("after shutdown: %s, attempt %d; want queued again, no attempt counted", d.Status, d.Attempts)
	}
}

// TestOwnerAllowlist: a push to an owner not on the list is acknowledged
// and ignored: nothing is fetched.
func TestOwnerAllowlist(t *testing.T) {
	evil := newTrap(t)
	st := openStore(t)
	w := New(Options{Queue: st, Owners: []string{"acme-corp"}, Mirrors: t.TempDir(),
		Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: evil.srv.URL + "/"}}})
	res, err := w.Process(context.Background(), store.Delivery{ID: "o", Event: "push", Payload: pushPayload("refs/heads/main", ghpush.Zero, strings.Repeat("c", 40), false)})
	if err != nil || !strings.Contains(res.Ignored, "allowlist") || evil.hits.Load() != 0 {
		t.Errorf("a push to acme: %+v, %v, %d requests; want ignored", res, err, evil.hits.Load())
	}
}

// TestIssuesOnePerKey: a live key gets one issue, updated when it is seen
// again; the issue names the key and its fingerprint, and where it is only
// in a private repository (as the API says), with a hostile path shown as
// code, not obeyed.
func TestIssuesOnePerKey(t *testing.T) {
	ctx := context.Background()
	gh := &fakeGitHub{}
	api := httptest.NewServer(gh)
	defer api.Close()
	client := github.NewClient(nil)
	client.BaseURL.Scheme, client.BaseURL.Host = "http", strings.TrimPrefix(api.URL, "http://")
	st := openStore(t)
	w := New(Options{Queue: st, State: st})
	name := ghrepoName(t, "acme/hello")
	hostile := "x` <img src=x onerror=alert(1)>\n# @everyone ``[link](http://evil) | extra cell"
	f := &finding.Finding{Rule: "aws-access-key", KeyID: "AKIAROSDW5AABZW3VLYZ", AccountID: "100000000000",
		Locations:    []finding.Location{{File: hostile, Line: 3, Commit: strings.Repeat("a", 40)}},
		Verification: &finding.Verification{Status: "live", ARN: "arn:aws:iam::100000000000:user/ci"}}
	for range 2 {
		if err := w.issues(ctx, client, name, where{what: "a push to refs/heads/main", verb: "pushed"}, []*finding.Finding{f}); err != nil {
			t.Fatal(err)
		}
	}
	if len(gh.issues) != 1 || len(gh.edits) != 1 {
		t.Fatalf("%d issues created, %d updated; want 1 and 1", len(gh.issues), len(gh.edits))
	}
	public := gh.issues[0]["body"].(string)
	if !strings.Contains(public, f.KeyID) || !strings.Contains(public, f.Fingerprint()) || strings.Contains(public, "onerror") {
		t.Errorf("a public repository's issue:\n%s\nwant the key ID and fingerprint, not the path", public)
	}

	gh.private = true
	st2 := openStore(t)
	w2 := New(Options{Queue: st2, State: st2})
	if err := w2.issues(ctx, client, name, where{what: "a push", verb: "pushed"}, []*finding.Finding{f}); err != nil {
		t.Fatal(err)
	}
	private := gh.issues[1]["body"].(string)
	if !strings.Contains(private, "line 3") || !strings.Contains(private, "``` x` <img") || !strings.Contains(private, `\| extra cell`) {
		t.Errorf("a private repository's issue:\n%s\nwant the path, as a code span longer than its backtick runs", private)
	}
	for _, line := range strings.Split(private, "\n") {
		if strings.HasPrefix(line, "# @everyone") {
			t.Errorf("the path's line break reached the Markdown: %q", line)
		}
	}
}

func ghrepoName(t *testing.T, s string) ghrepo.Name {
	t.Helper()
	n, err := ghrepo.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRepoJobURLIgnored: a repository-scan job (from SQS) is hostile input
// too: its clone_url is never fetched, and a bad name is parked at once.
func TestRepoJobURLIgnored(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	newRepo(t, root)
	gitSrv := gitServer(t, root)
	evil := newTrap(t)
	set, _ := rules.Default()
	st := openStore(t)
	w := New(Options{Queue: st, State: st, Engine: engine.Options{Matcher: detect.New(set)}, Mirrors: t.TempDir(), Token: "ghs_job_token",
		Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: gitSrv.URL + "/"}}})
	job := []byte(`{"full_name":"acme/hello","clone_url":"` + evil.srv.URL + `/evil.git"}`)
	if _, err := w.Process(ctx, store.Delivery{ID: "j", Event: repoScanEvent, Payload: job}); err != nil {
		t.Fatalf("job: %v", err)
	}
	st.Enqueue(ctx, store.Delivery{ID: "bad", Event: repoScanEvent, Payload: []byte(`{"full_name":"../../etc","clone_url":"` + evil.srv.URL + `"}`)})
	w.Once(ctx)
	if d, _ := st.GetDelivery(ctx, "bad"); d.Status != store.Parked || !strings.Contains(d.LastError, "malformed repository-scan job") {
		t.Errorf("a job with a bad name: %s %q, want parked at once", d.Status, d.LastError)
	}
	if n := evil.hits.Load(); n != 0 {
		t.Errorf("a job's clone_url was contacted %d times", n)
	}
}
