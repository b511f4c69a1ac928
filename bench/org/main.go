//go:build bench

// Command org measures an organisation scan on loopback: -repos generated
// repositories (bench/genrepo histories) served by git http-backend behind a
// GitHub-shaped API, scanned once from nothing and once more incrementally,
// with the machine's cores busy. It prints both times and their ratio.
//
//	go build -o genrepo ./bench/genrepo && go run ./bench/org -genrepo ./genrepo
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/go-github/v62/github"

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
	if err != nil {
		fail(err)
	}
	d1 := time.Since(t0)
	t0 = time.Now()
	second, err := org.Scan(ctx, o)
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
}

type nopReporter struct{}

func (nopReporter) Skipped(string, string) {}
func (nopReporter) Failed(error)           {}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/org:", err)
	os.Exit(1)
}
