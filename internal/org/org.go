// Package org scans every repository of a GitHub organisation (or user):
// it lists them with go-github (paginated, rate limits waited out), keeps a
// mirror of each with go-git, scans each history, and de-duplicates keys
// across the organisation. A second run scans only what is new since the
// first, as the store remembers where each repository's scan ended.
package org

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/sourcegraph/conc/pool"

	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/reposcan"
	"github.com/keyburn/keyburn/internal/source"
	"github.com/keyburn/keyburn/internal/store"
)

// Options configures an organisation scan.
type Options struct {
	Client *github.Client
	Org    string // an organisation, or
	User   string // a user
	// Repos are path.Match patterns on the repository name (empty: all).
	Repos    []string
	Forks    bool // include forks
	Archived bool // include archived repositories
	// Shard i of n (0-based i) takes a deterministic share of the
	// repositories, so that n machines split an organisation.
	Shard, Shards int

	Mirrors string
	// Host is where repositories are cloned from (zero: github.com): a
	// clone URL is built from the repository's name, never taken from the
	// API's answer. Rewrites, the operator's, may send it elsewhere.
	Host     ghrepo.Host
	Rewrites []mirror.Rewrite
	Token    string
	Engine   engine.Options
	Store    *store.Store // remembers scans for incremental runs (nil: full scans)
	Parallel int          // repositories fetched and scanned at once (default 2)

	// Progress, when set, hears about each repository as it ends; Wait about
	// rate-limit waits. Both may be called concurrently.
	Progress func(p Progress)
	Wait     func(d time.Duration, why string)
	Reporter source.Reporter
}

// Progress is the state of a run after a repository ends.
type Progress struct {
	Repo        string
	Done, Total int
	Bytes       int64
	Findings    int
	Skipped     bool // nothing new since the last scan
	Err         error
}

// Result is an organisation scan's outcome.
type Result struct {
	Findings   []*finding.Finding // one per key across the organisation
	Repos      int                // repositories in this shard
	Scanned    int                // scanned (fully or incrementally)
	Unchanged  int                // nothing new since the last scan
	Failed     int                // could not be fetched or scanned
	Commits    int64
	Bytes      int64
	PerRepo    map[string]int // findings per repository
	Incomplete bool

	scanned []scannedRepo // to remember, once checked
}

// scannedRepo is a repository's scan waiting to be remembered, with the
// key IDs it found.
type scannedRepo struct {
	s    *reposcan.Scanned
	keys []string
}

// Remember stores where each repository's scan ended, for the next run to
// go on from, except for a repository that found a key unsettled(keyID)
// says the check could not finish with (nil: none): the next run scans its
// commits again. Call it once the findings are checked. It returns how
// many repositories it remembered and how many it held back.
func (r *Result) Remember(ctx context.Context, unsettled func(keyID string) bool) (remembered, held int, err error) {
	var errs []error
	for _, sr := range r.scanned {
		if unsettled != nil && slices.ContainsFunc(sr.keys, unsettled) {
			held++
			continue
		}
		if err := sr.s.Remember(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		remembered++
	}
	return remembered, held, errors.Join(errs...)
}

// listError says why the repositories could not be listed, in GitHub's
// words (its message, not the API's raw error), and what to try.
func listError(o Options, err error) error {
	who, flag, other := "organisation "+o.Org, "--org", "--user "+o.Org
	if o.User != "" {
		who, flag, other = "user "+o.User, "--user", "--org "+o.User
	}
	var gh *github.ErrorResponse
	if !errors.As(err, &gh) || gh.Response == nil {
		return fmt.Errorf("list the repositories of %s: %w", who, err)
	}
	msg := gh.Message
	if msg == "" {
		msg = http.StatusText(gh.Response.StatusCode)
	}
	var hint string
	switch gh.Response.StatusCode {
	case http.StatusUnauthorized:
		hint = "check the token in GITHUB_TOKEN (expired, revoked, or for another GitHub host), or the GitHub App flags"
	case http.StatusForbidden:
		hint = "the token lacks access: it needs to read the repositories (repo scope, or Contents: read for a fine-grained token or App)"
	case http.StatusNotFound:
		hint = "no such " + strings.SplitN(who, " ", 2)[0] + " that this token can see: check the name, or try " + other + " in place of " + flag
	}
	e := fmt.Errorf("list the repositories of %s: GitHub answered %d %s", who, gh.Response.StatusCode, msg)
	if hint != "" {
		e = fmt.Errorf("%w (%s)", e, hint)
	}
	return e
}

// List returns the repositories of the organisation or user, all pages,
// filtered, in name order, waiting out rate limits.
func List(ctx context.Context, o Options) ([]*github.Repository, error) {
	var all []*github.Repository
	page := 1
	for page != 0 {
		var repos []*github.Repository
		var resp *github.Response
		err := retryRateLimit(ctx, o.Wait, func() error {
			var err error
			if o.Org != "" {
				repos, resp, err = o.Client.Repositories.ListByOrg(ctx, o.Org, &github.RepositoryListByOrgOptions{
					Type: "all", ListOptions: github.ListOptions{Page: page, PerPage: 100}})
			} else {
				repos, resp, err = o.Client.Repositories.ListByUser(ctx, o.User, &github.RepositoryListByUserOptions{
					Type: "owner", ListOptions: github.ListOptions{Page: page, PerPage: 100}})
			}
			return err
		})
		if err != nil {
			return nil, listError(o, err)
		}
		all = append(all, repos...)
		page = resp.NextPage
	}
	var out []*github.Repository
	for _, r := range all {
		if (r.GetFork() && !o.Forks) || (r.GetArchived() && !o.Archived) || !matches(o.Repos, r.GetName()) {
			continue
		}
		if o.Shards > 1 && shardOf(r.GetFullName(), o.Shards) != o.Shard {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetFullName() < out[j].GetFullName() })
	return out, nil
}

func matches(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// shardOf assigns a repository to one of n shards by a hash of its name:
// the same on every machine, and stable as repositories come and go.
func shardOf(fullName string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(fullName))
	return int(h.Sum32() % uint32(n))
}

// maxRateWaits bounds how often one call waits for a rate limit.
const maxRateWaits = 5

// retryRateLimit runs call, waiting out primary and secondary rate limits
// (never hammering: it waits until the reset, or the Retry-After).
func retryRateLimit(ctx context.Context, notify func(time.Duration, string), call func() error) error {
	for i := 0; ; i++ {
		err := call()
		var wait time.Duration
		var why string
		var rl *github.RateLimitError
		var abuse *github.AbuseRateLimitError
		switch {
		case errors.As(err, &rl):
			wait, why = time.Until(rl.Rate.Reset.Time)+time.Second, "primary rate limit"
		case errors.As(err, &abuse):
			wait, why = abuse.GetRetryAfter(), "secondary rate limit"
			if wait <= 0 {
				wait = time.Minute
			}
		default:
			return err
		}
		if i >= maxRateWaits {
			return err
		}
		wait = max(wait, time.Second)
		if notify != nil {
			notify(wait, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// Scan lists, fetches and scans the repositories. A repository that fails is
// reported and the run goes on. Where each scan ended is remembered by
// Result.Remember, once the findings are checked.
func Scan(ctx context.Context, o Options) (*Result, error) {
	repos, err := List(ctx, o)
	if err != nil {
		return nil, err
	}
	res := &Result{Repos: len(repos), PerRepo: map[string]int{}}
	var mu sync.Mutex
	var all []*finding.Finding
	var done atomic.Int32
	p := pool.New().WithMaxGoroutines(max(1, o.Parallel))
	for _, r := range repos {
		p.Go(func() {
			prog := o.scanOne(ctx, r)
			prog.Done, prog.Total = int(done.Add(1)), len(repos)
			mu.Lock()
			switch {
			case prog.Err != nil:
				res.Failed++
			case prog.Skipped:
				res.Unchanged++
			default:
				res.Scanned++
			}
			res.Bytes += prog.Bytes
			res.PerRepo[r.GetFullName()] = prog.Findings
			all = append(all, prog.found...)
			if prog.scanned != nil {
				sr := scannedRepo{s: prog.scanned}
				for _, f := range prog.found {
					sr.keys = append(sr.keys, f.KeyID)
				}
				res.scanned = append(res.scanned, sr)
			}
			mu.Unlock()
			if o.Progress != nil {
				o.Progress(prog.Progress)
			}
		})
	}
	p.Wait()
	res.Findings = finding.Merge(all) // one finding per key across the organisation
	res.Incomplete = ctx.Err() != nil
	return res, ctx.Err()
}

type repoResult struct {
	Progress
	found   []*finding.Finding
	scanned *reposcan.Scanned
}

func (o Options) scanOne(ctx context.Context, r *github.Repository) repoResult {
	name := r.GetFullName()
	out := repoResult{Progress: Progress{Repo: name}}
	fail := func(err error) repoResult {
		out.Err = err
		if o.Reporter != nil {
			o.Reporter.Failed(fmt.Errorf("%s: %w", name, err))
		}
		return out
	}
	var seen []string
	var scannedAt time.Time
	if o.Store != nil {
		var err error
		if seen, scannedAt, err = o.Store.RepoTips(ctx, name); err != nil {
			return fail(err)
		}
	}
	// GitHub says when the repository last received a push: nothing since
	// the last scan means nothing to fetch. (A minute of slack covers a push
	// during that scan.)
	if seen != nil && r.PushedAt != nil && r.PushedAt.Before(scannedAt.Add(-time.Minute)) {
		out.Skipped = true
		return out
	}
	valid, err := ghrepo.Parse(name)
	if err != nil {
		return fail(err)
	}
	host := o.Host
	if host.Git == nil {
		host, _ = ghrepo.NewHost("") // github.com: cannot fail
	}
	res, err := reposcan.Scan(ctx, reposcan.Repo{Name: valid, Mirrors: o.Mirrors, Store: o.Store, Engine: o.Engine, Reporter: o.Reporter,
		Source: mirror.Source{URL: mirror.Apply(o.Rewrites, host.CloneURL(valid)), Token: o.Token}})
	if err != nil {
		return fail(err)
	}
	if seen != nil && res.Commits == 0 {
		out.Skipped = true
	}
	for _, f := range res.Findings {
		for i := range f.Locations {
			f.Locations[i].File = name + "/" + f.Locations[i].File
		}
	}
	out.found, out.Findings, out.Bytes, out.scanned = res.Findings, len(res.Findings), res.Bytes, res
	return out
}

// Job is a repository to scan, as put on a queue for the webhook's workers
// (event "repo-scan").
type Job struct {
	FullName      string `json:"full_name"`
	CloneURL      string `json:"clone_url"`
	DefaultBranch string `json:"default_branch"`
}

// JobEvent is the event name of repository-scan jobs.
const JobEvent = "repo-scan"

// Enqueuer takes deliveries: the SQLite store or an SQS queue.
type Enqueuer interface {
	Enqueue(ctx context.Context, d store.Delivery) error
}

// Enqueue lists the repositories and puts one job per repository on q, for
// a fleet of workers to scan. It returns how many it queued. A job's ID names
// the repository and the minute, so that a FIFO queue drops a repeat.
func Enqueue(ctx context.Context, o Options, q Enqueuer) (int, error) {
	repos, err := List(ctx, o)
	if err != nil {
		return 0, err
	}
	stamp := time.Now().UTC().Format("20060102T1504")
	n := 0
	for _, r := range repos {
		body, _ := json.Marshal(Job{FullName: r.GetFullName(), CloneURL: r.GetCloneURL(), DefaultBranch: r.GetDefaultBranch()})
		err := q.Enqueue(ctx, store.Delivery{ID: JobEvent + "/" + r.GetFullName() + "/" + stamp, Event: JobEvent, Payload: body})
		if err != nil && !errors.Is(err, store.ErrDuplicate) {
			return n, err
		}
		n++
	}
	return n, nil
}
