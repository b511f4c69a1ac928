//go:build bench

// Command org measures an organisation scan on loopback: -repos generated
// repositories (bench/genrepo histories) served by git http-backend behind a
// GitHub-shaped API, scanned once from nothing and once more incrementally,
// with the machine's cores busy. It prints both times and their ratio.
//
//	go build -o genrepo ./bench/genrepo && go run ./bench/org -genrepo ./genrepo
//
// With -webhook and -state (bench/org-run gives them when PostgreSQL is
// installed) it then times fleets of 1, 2 and 3 receivers taking the same
// jobs from a shared PostgreSQL; BENCH_VERBOSE=1 shows their logs.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/gittest"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/org"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/rules"
)

func main() {
	genrepo := flag.String("genrepo", "", "the genrepo binary")
	n := flag.Int("repos", 50, "repositories")
	commits := flag.Int("commits", 300, "commits per repository")
	webhook := flag.String("webhook", "", "the keyburn-webhook binary: measure a fleet of 1, 2 and 3 receivers taking the jobs from a shared PostgreSQL (with -state)")
	state := flag.String("state", "", "with -webhook: a postgres:// URL in which {db} names a database per fleet size, fleet1 to fleet3")
	flag.Parse()
	if *genrepo == "" {
		fail(fmt.Errorf("-genrepo is required"))
	}
	dir, err := os.MkdirTemp("", "keyburn-org-bench")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "git")
	var repos []map[string]any
	for i := range *n {
		name := fmt.Sprintf("repo%02d", i)
		bare := filepath.Join(root, "acme", name+".git")
		if out, err := gittest.Command(dir, "init", "-q", "--bare", "-b", "main", bare).CombinedOutput(); err != nil {
			fail(fmt.Errorf("%v: %s", err, out))
		}
		gen := exec.Command(*genrepo, "-commits", fmt.Sprint(*commits), "-files", "200")
		imp := gittest.Command(bare, "fast-import", "--quiet")
		imp.Stdin, _ = gen.StdoutPipe()
		if err := gen.Start(); err != nil {
			fail(err)
		}
		if out, err := imp.CombinedOutput(); err != nil {
			fail(fmt.Errorf("fast-import: %v: %s", err, out))
		}
		gen.Wait()
		repos = append(repos, map[string]any{"name": name, "full_name": "acme/" + name, "clone_url": "https://github.com/acme/" + name + ".git",
			"pushed_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
	}
	backend, err := gittest.HTTPBackend(root)
	if err != nil {
		fail(err)
	}
	gitSrv := httptest.NewServer(backend)
	defer gitSrv.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(repos) // one page
	}))
	defer api.Close()
	client, _ := github.NewClient(nil).WithEnterpriseURLs(api.URL+"/", api.URL+"/")
	set, _ := rules.Default()
	st, err := store.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		fail(err)
	}
	defer st.Close()
	o := org.Options{Client: client, Org: "acme", Mirrors: filepath.Join(dir, "mirrors"), Store: st, Parallel: 2,
		Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: gitSrv.URL + "/"}},
		Engine:   engine.Options{Matcher: detect.New(set)}}
	ctx := context.Background()
	t0 := time.Now()
	first, err := org.Scan(ctx, o)
	if err == nil {
		_, _, err = first.Remember(ctx, nil) // as the CLI does once the findings are checked
	}
	if err != nil {
		fail(err)
	}
	d1 := time.Since(t0)
	t0 = time.Now()
	second, err := org.Scan(ctx, o)
	if err == nil {
		_, _, err = second.Remember(ctx, nil)
	}
	if err != nil {
		fail(err)
	}
	d2 := time.Since(t0)
	// Once more, as if every repository had been pushed to (with nothing
	// new): each is fetched and its refs compared with the last scan's.
	for _, r := range repos {
		r["pushed_at"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	}
	t0 = time.Now()
	third, err := org.Scan(ctx, o)
	if err == nil {
		_, _, err = third.Remember(ctx, nil)
	}
	if err != nil {
		fail(err)
	}
	d3 := time.Since(t0)
	// A full rescan of the fetched mirrors (nothing remembered), beside
	// what `scan git` does on each mirror in turn.
	full := o
	full.Store = nil
	t0 = time.Now()
	fourth, err := org.Scan(ctx, full)
	if err != nil {
		fail(err)
	}
	d4 := time.Since(t0)
	t0 = time.Now()
	gitKeys := map[string]bool{}
	for _, r := range repos {
		res, err := engine.ScanHistory(ctx, o.Engine, mirror.Path(o.Mirrors, r["full_name"].(string)), engine.GitOptions{}, nopReporter{})
		if err != nil {
			fail(err)
		}
		for _, f := range res.Findings {
			gitKeys[f.KeyID] = true
		}
	}
	d5 := time.Since(t0)
	fmt.Printf("organisation of %d repositories x %d commits, %d at once:\n", *n, *commits, o.Parallel)
	fmt.Printf("  first run              %7.3f s  (%d scanned, %d findings)\n", d1.Seconds(), first.Scanned, len(first.Findings))
	fmt.Printf("  second run, pushed_at  %7.3f s  (%d unchanged, not fetched): %.0fx faster\n", d2.Seconds(), second.Unchanged, d1.Seconds()/d2.Seconds())
	fmt.Printf("  second run, fetching   %7.3f s  (%d unchanged after fetching): %.0fx faster (target >= 20x)\n", d3.Seconds(), third.Unchanged, d1.Seconds()/d3.Seconds())
	orgKeys := map[string]bool{}
	for _, f := range fourth.Findings {
		orgKeys[f.KeyID] = true
	}
	same := len(orgKeys) == len(gitKeys)
	for k := range orgKeys {
		same = same && gitKeys[k]
	}
	fmt.Printf("  full rescan of mirrors %7.3f s  against scan git on each mirror in turn %.3f s: %.2fx (target <= 1.15x); key IDs %d and %d, the same: %v\n",
		d4.Seconds(), d5.Seconds(), d4.Seconds()/d5.Seconds(), len(orgKeys), len(gitKeys), same)
	if *webhook != "" && *state != "" {
		// The receivers verify what they find (the generated histories
		// hold keys): against moto on loopback, which knows none of them.
		m, stop, err := awstest.Run()
		if err != nil {
			fail(fmt.Errorf("the fleet runs need moto_server: %w", err))
		}
		defer stop()
		for size := 1; size <= 3; size++ {
			fleet(ctx, *webhook, strings.ReplaceAll(*state, "{db}", fmt.Sprintf("fleet%d", size)), size, o, dir, api.URL, gitSrv.URL, m.URL, len(repos))
		}
	}
}

// fleet queues one job per repository in the shared state (as scan github
// --queue state does), starts size receivers with one worker each on it,
// and times them until every job is done: each worker fetches its
// repositories from nothing.
func fleet(ctx context.Context, bin, url string, size int, o org.Options, dir, apiURL, gitURL, awsURL string, n int) {
	st, err := store.Open(url)
	if err != nil {
		fail(err)
	}
	defer st.Close()
	if _, err := org.Enqueue(ctx, o, st); err != nil {
		fail(err)
	}
	t0 := time.Now()
	for i := range size {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail(err)
		}
		addr := l.Addr().String()
		l.Close()
		cmd := exec.Command(bin, "--listen", addr, "--state", url, "--workers", "1", "--respond", "off",
			"--mirrors", filepath.Join(dir, fmt.Sprintf("fleet%d-%d", size, i)), "--github-api", apiURL,
			"--github-url", "https://github.com", "--git-url-rewrite", "https://github.com/="+gitURL+"/",
			"--aws-endpoint", awsURL)
		cmd.Env = append(os.Environ(), "KEYBURN_WEBHOOK_SECRET=bench")
		if os.Getenv("BENCH_VERBOSE") != "" {
			cmd.Stderr = os.Stderr // the receivers' logs
		}
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
	}
	for deadline := time.Now().Add(30 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		depth, err := st.QueueDepth(ctx)
		if err != nil {
			fail(err)
		}
		if depth[store.Done] == n {
			d := time.Since(t0)
			fmt.Printf("  fleet of %d receiver(s), one worker each, sharing PostgreSQL: %d repository jobs in %.1f s: %.0f jobs/min\n",
				size, n, d.Seconds(), float64(n)/d.Minutes())
			return
		}
		if depth[store.Parked] > 0 {
			fail(fmt.Errorf("fleet of %d: %d jobs parked", size, depth[store.Parked]))
		}
	}
	fail(fmt.Errorf("fleet of %d: not done in 30 minutes", size))
}

type nopReporter struct{}

func (nopReporter) Skipped(string, string) {}
func (nopReporter) Failed(error)           {}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/org:", err)
	os.Exit(1)
}
