package org

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/gittest"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/pgtest"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/worker"
	"github.com/keyburn/keyburn/rules"
)

type repoSpec struct {
	name            string
	fork, archived  bool
	files           []string // one commit each
	missingOnServer bool
}

// fakeAPI serves /orgs/acme/repos in pages of 2, answering the first call
// with a secondary rate limit and the first call for page 2 with a primary
// one.
type fakeAPI struct {
	mu      sync.Mutex
	repos   []map[string]any
	calls   map[string]int
	baseURL string
	gitRoot string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/orgs/acme/repos" {
		http.NotFound(w, r)
		return
	}
	page := r.URL.Query().Get("page")
	if page == "" {
		page = "1"
	}
	f.mu.Lock()
	f.calls[page]++
	n := f.calls[page]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case page == "1" && n == 1:
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(403)
		fmt.Fprint(w, `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits"}`)
		return
	case page == "2" && n == 1:
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", fmt.Sprint(time.Now().Add(time.Second).Unix()))
		w.WriteHeader(403)
		fmt.Fprint(w, `{"message":"API rate limit exceeded for installation.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`)
		return
	}
	var p int
	fmt.Sscan(page, &p)
	f.mu.Lock()
	defer f.mu.Unlock()
	lo, hi := (p-1)*2, min(len(f.repos), p*2)
	if hi < len(f.repos) {
		w.Header().Set("Link", fmt.Sprintf(`<%s/orgs/acme/repos?page=%d>; rel="next"`, f.baseURL, p+1))
	}
	json.NewEncoder(w).Encode(f.repos[lo:hi])
}

func setup(t *testing.T, specs []repoSpec) (Options, *fakeAPI) {
	t.Helper()
	root := t.TempDir()
	for _, s := range specs {
		if s.missingOnServer {
			continue
		}
		gittest.Run(t, root, "init", "-q", "--bare", "-b", "main", "acme/"+s.name+".git")
		work := t.TempDir()
		gittest.Run(t, work, "init", "-q", "-b", "main")
		for i, body := range s.files {
			os.WriteFile(filepath.Join(work, fmt.Sprintf("f%d.env", i)), []byte(body), 0o644)
			gittest.Run(t, work, "add", "-A")
			gittest.Run(t, work, "commit", "-q", "-m", fmt.Sprint(i))
		}
		gittest.Run(t, work, "push", "-q", filepath.Join(root, "acme", s.name+".git"), "main")
	}
	backend, err := gittest.HTTPBackend(root)
	if err != nil {
		t.Fatal(err)
	}
	gitSrv := httptest.NewServer(backend)
	t.Cleanup(gitSrv.Close)
	api := &fakeAPI{calls: map[string]int{}, gitRoot: root}
	for _, s := range specs {
		api.repos = append(api.repos, map[string]any{"name": s.name, "full_name": "acme/" + s.name, "fork": s.fork,
			"archived": s.archived, "clone_url": "https://github.com/acme/" + s.name + ".git"})
	}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	api.baseURL = apiSrv.URL
	client, err := github.NewClient(nil).WithEnterpriseURLs(apiSrv.URL+"/", apiSrv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	client.BaseURL, _ = client.BaseURL.Parse(apiSrv.URL + "/")
	set, _ := rules.Default()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return Options{Client: client, Org: "acme", Mirrors: t.TempDir(), Store: st, Parallel: 2,
		Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: gitSrv.URL + "/"}},
		Engine:   engine.Options{Matcher: detect.New(set)}}, api
}

const (
	k1 = "aws_access_key_id = AKIAROSDW5AABZW3VLYZ\naws_secret_access_key = 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\n"
	k2 = "aws_access_key_id = AKIABOTYWKPD2H3RV7SD\naws_secret_access_key = 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\n"
)

func TestScanOrganisation(t *testing.T) {
	o, api := setup(t, []repoSpec{
		{name: "alpha", files: []string{k1, "removed\n"}},
		{name: "beta", files: []string{"clean\n", k1 + k2}},
		{name: "broken", missingOnServer: true},
		{name: "delta", archived: true, files: []string{k2}},
		{name: "gamma", fork: true, files: []string{k2}},
	})
	var waits []string
	var mu sync.Mutex
	o.Wait = func(d time.Duration, why string) { mu.Lock(); waits = append(waits, why); mu.Unlock() }
	var failed []error
	o.Reporter = reporter{&failed, &mu}
	ctx := context.Background()
	res, err := Scan(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Repos != 3 || res.Scanned != 2 || res.Failed != 1 {
		t.Errorf("repos %d, scanned %d, failed %d; want 3, 2, 1 (fork and archived left out)", res.Repos, res.Scanned, res.Failed)
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Error(), "acme/broken") {
		t.Errorf("failures = %v, want the broken repository named", failed)
	}
	if strings.Join(waits, ",") != "secondary rate limit,primary rate limit" {
		t.Errorf("rate-limit waits = %v", waits)
	}
	if api.calls["1"] != 2 || api.calls["2"] != 2 {
		t.Errorf("API calls per page = %v, want 2 each (one limited, one answered)", api.calls)
	}
	// k1 is in alpha and beta: one finding with both locations.
	byKey := map[string]int{}
	for _, f := range res.Findings {
		byKey[f.KeyID] = len(f.Locations)
	}
	if byKey["AKIAROSDW5AABZW3VLYZ"] != 2 || byKey["AKIABOTYWKPD2H3RV7SD"] != 1 || len(res.Findings) != 2 {
		t.Errorf("findings by key (locations) = %v", byKey)
	}

	// Nothing is remembered until the findings are checked: a run that
	// stops here scans everything again.
	again, err := Scan(ctx, o)
	if err != nil || again.Scanned != 2 || len(again.Findings) != 2 {
		t.Fatalf("a run after one that remembered nothing: scanned %d, findings %d, %v; want 2, 2", again.Scanned, len(again.Findings), err)
	}
	// A key the check could not finish with (k2, in beta alone) holds
	// beta back; alpha, whose keys are settled, is remembered.
	if n, held, err := again.Remember(ctx, func(keyID string) bool { return keyID == "AKIABOTYWKPD2H3RV7SD" }); n != 1 || held != 1 || err != nil {
		t.Fatalf("Remember = %d remembered, %d held, %v; want 1, 1", n, held, err)
	}
	held, err := Scan(ctx, o)
	if err != nil || held.Scanned != 1 || held.Unchanged != 1 || len(held.Findings) != 2 {
		t.Fatalf("after holding beta back: scanned %d, unchanged %d, findings %d, %v; want beta scanned again with both its keys", held.Scanned, held.Unchanged, len(held.Findings), err)
	}
	if _, _, err := held.Remember(ctx, nil); err != nil {
		t.Fatal(err)
	}

	// The second run reads nothing new: fetched, nothing beyond the
	// remembered tips.
	res2, err := Scan(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	res2.Remember(ctx, nil)
	if res2.Unchanged != 2 || res2.Scanned != 0 || len(res2.Findings) != 0 {
		t.Errorf("second run: unchanged %d, scanned %d, findings %d; want 2, 0, 0", res2.Unchanged, res2.Scanned, len(res2.Findings))
	}

	// A new commit in beta is scanned, and only it.
	api.mu.Lock()
	api.calls = map[string]int{"1": 9, "2": 9} // no more rate limits
	api.mu.Unlock()
	work := t.TempDir()
	gittest.Run(t, work, "clone", "-q", filepath.Join(api.gitRoot, "acme/beta.git"), ".")
	os.WriteFile(filepath.Join(work, "new.env"), []byte(k2), 0o644)
	gittest.Run(t, work, "add", "-A")
	gittest.Run(t, work, "commit", "-q", "-m", "new")
	gittest.Run(t, work, "push", "-q", "origin", "main")
	res3, err := Scan(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res3.Scanned != 1 || res3.Unchanged != 1 || len(res3.Findings) != 1 || res3.Findings[0].KeyID != "AKIABOTYWKPD2H3RV7SD" {
		t.Errorf("third run: scanned %d, unchanged %d, findings %d", res3.Scanned, res3.Unchanged, len(res3.Findings))
	}
	res3.Remember(ctx, nil)

	// With GitHub's pushed_at older than the last scan, nothing is fetched.
	api.mu.Lock()
	for _, r := range api.repos {
		r["pushed_at"] = "2001-01-01T00:00:00Z"
		r["clone_url"] = "https://github.com/acme/not-there.git" // a fetch would fail
	}
	api.mu.Unlock()
	res4, err := Scan(ctx, o)
	if err != nil || res4.Unchanged != 2 || res4.Failed != 1 {
		t.Errorf("pushed_at run: unchanged %d, failed %d, %v; want 2 unchanged (not fetched), broken still failing", res4.Unchanged, res4.Failed, err)
	}
}

func TestShardsSplitTheRepositories(t *testing.T) {
	names := []string{}
	for i := range 40 {
		names = append(names, fmt.Sprintf("acme/repo%d", i))
	}
	seen := map[string]int{}
	for shard := range 3 {
		for _, n := range names {
			if shardOf(n, 3) == shard {
				seen[n]++
			}
		}
	}
	for _, n := range names {
		if seen[n] != 1 {
			t.Fatalf("%s is in %d shards, want exactly 1", n, seen[n])
		}
	}
	if shardOf("acme/repo1", 3) != shardOf("acme/repo1", 3) {
		t.Fatal("shards are not deterministic")
	}
}

type reporter struct {
	failed *[]error
	mu     *sync.Mutex
}

func (r reporter) Skipped(string, string) {}
func (r reporter) Failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.failed = append(*r.failed, err)
}

// TestJobsForAFleet queues one job per repository and has a webhook worker
// take them: each repository is scanned, and a second round finds nothing
// new.
func TestJobsForAFleet(t *testing.T) {
	o, api := setup(t, []repoSpec{
		{name: "alpha", files: []string{k1}},
		{name: "beta", files: []string{k2}},
	})
	api.calls = map[string]int{"1": 9, "2": 9} // no rate limits here
	ctx := context.Background()
	n, err := Enqueue(ctx, o, o.Store)
	if err != nil || n != 2 {
		t.Fatalf("Enqueue = %d, %v", n, err)
	}
	var found []string
	var mu sync.Mutex
	w := worker.New(worker.Options{Queue: o.Store, State: o.Store, Engine: o.Engine, Mirrors: t.TempDir(), Rewrites: o.Rewrites,
		Observe: func(res worker.Result, _ time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("job failed: %v", err)
			}
			for _, f := range res.Findings {
				found = append(found, res.Repo+":"+f.KeyID)
			}
		}})
	for range 2 {
		if n, err := w.Once(ctx); n != 1 || err != nil {
			t.Fatalf("Once = %d, %v", n, err)
		}
	}
	sort.Strings(found)
	if strings.Join(found, ",") != "acme/alpha:AKIAROSDW5AABZW3VLYZ,acme/beta:AKIABOTYWKPD2H3RV7SD" {
		t.Errorf("found %v", found)
	}
	if n, _ := w.Once(ctx); n != 0 {
		t.Errorf("a job was left on the queue")
	}
}

// TestListErrors: GitHub's refusals come back in its words with what to
// try: the token for 401, the token's access for 403, the name or the other
// kind of owner for 404.
func TestListErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		o      Options
		want   string
	}{
		{401, `{"message":"Bad credentials"}`, Options{Org: "acme"}, "list the repositories of organisation acme: GitHub answered 401 Bad credentials (check the token in GITHUB_TOKEN"},
		{403, `{"message":"Resource not accessible by integration"}`, Options{Org: "acme"}, "403 Resource not accessible by integration (the token lacks access"},
		{404, `{"message":"Not Found"}`, Options{Org: "alice"}, "404 Not Found (no such organisation that this token can see: check the name, or try --user alice in place of --org)"},
		{404, `{"message":"Not Found"}`, Options{User: "acme"}, "no such user that this token can see: check the name, or try --org acme in place of --user"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		client, _ := github.NewClient(nil).WithEnterpriseURLs(srv.URL+"/", srv.URL+"/")
		tc.o.Client = client
		_, err := List(context.Background(), tc.o)
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "[]") {
			t.Errorf("%d for %+v: error %v, want one with %q", tc.status, tc.o, err, tc.want)
		}
	}
}

// TestEnqueueIntoTheSharedState: scan github --queue state puts one job per
// repository in the state's own queue; a worker process sharing the
// PostgreSQL state claims each once.
func TestEnqueueIntoTheSharedState(t *testing.T) {
	o, _ := setup(t, []repoSpec{{name: "alpha", files: []string{k1}}, {name: "beta", files: []string{"clean\n"}}})
	url := pgtest.Private(t)
	st, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	n, err := Enqueue(ctx, o, st)
	if err != nil || n != 2 {
		t.Fatalf("Enqueue = %d, %v; want 2 jobs", n, err)
	}
	worker, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	var got []string
	for range 3 {
		d, ok, err := worker.Claim(ctx, time.Minute, 3)
		if err != nil || !ok {
			break
		}
		var job Job
		if err := json.Unmarshal(d.Payload, &job); err != nil || d.Event != JobEvent {
			t.Fatalf("claimed %s %q: %v", d.Event, d.Payload, err)
		}
		got = append(got, job.FullName)
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "acme/alpha,acme/beta" {
		t.Errorf("jobs claimed: %v", got)
	}
}

// TestRescanFromAnotherMachine: two machines share one PostgreSQL state,
// each with a mirror cache of its own. The second's first scan of the
// organisation is incremental: it fetches (its cache is empty) but scans
// nothing the first machine scanned, and finds nothing again.
func TestRescanFromAnotherMachine(t *testing.T) {
	o, _ := setup(t, []repoSpec{{name: "alpha", files: []string{k1}}, {name: "beta", files: []string{"clean\n", k2}}})
	url := pgtest.Private(t)
	ctx := context.Background()
	machine := func() Options {
		st, err := store.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		m := o
		m.Store, m.Mirrors = st, t.TempDir()
		return m
	}
	first, err := Scan(ctx, machine())
	if err != nil || first.Scanned != 2 || len(first.Findings) != 2 {
		t.Fatalf("first machine: scanned %d, findings %d, %v; want 2, 2", first.Scanned, len(first.Findings), err)
	}
	if _, _, err := first.Remember(ctx, nil); err != nil {
		t.Fatal(err)
	}
	second, err := Scan(ctx, machine())
	if err != nil || second.Unchanged != 2 || second.Scanned != 0 || len(second.Findings) != 0 {
		t.Errorf("second machine: unchanged %d, scanned %d, findings %d, %v; want 2, 0, 0", second.Unchanged, second.Scanned, len(second.Findings), err)
	}
}
