// Package worker turns stored push deliveries into dead keys: it claims a
// delivery from the queue, fetches the pushed commits into a per-repository
// mirror, scans only what the push adds, verifies and responds, and reports
// back to GitHub with a commit status and, for a live key, an issue.
//
// A delivery that fails is retried with backoff and parked, with the reason,
// once it has failed too often; one whose worker died is claimed again when
// its lease runs out. Nothing is lost.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/check"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghapp"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// Rewrite replaces a URL prefix (see mirror.Rewrite).
type Rewrite = mirror.Rewrite

// ParseRewrite parses FROM=TO.
func ParseRewrite(s string) (Rewrite, error) { return mirror.ParseRewrite(s) }

// Queue is where deliveries wait: the SQLite store (store.Store, one
// machine) or Amazon SQS (sqsqueue.Queue, a fleet of receivers and workers).
type Queue interface {
	Claim(ctx context.Context, lease time.Duration) (store.Delivery, bool, error)
	Finish(ctx context.Context, d store.Delivery) error
	Fail(ctx context.Context, d store.Delivery, reason string, backoff time.Duration, maxAttempts int) error
}

// Options configures a Worker.
type Options struct {
	Queue Queue
	// State remembers where each repository's last scan ended, for
	// repository-scan jobs (nil: such jobs scan whole histories).
	State     *store.Store
	Engine    engine.Options
	Verifier  *verify.Verifier   // nil: no verification
	Responder *respond.Responder // nil: no response
	GitHub    *github.Client     // nil: no report back
	Mirrors   string             // directory of the mirror cache
	Rewrites  []Rewrite
	Token     string // for fetching private repositories
	// App, when set, authenticates as a GitHub App: each push's installation
	// token fetches and reports in place of Token and GitHub's own auth.
	App *ghapp.App
	Log *slog.Logger

	Lease       time.Duration // how long a claimed delivery is held (default 10 min)
	MaxAttempts int           // before a delivery is parked (default 5)
	Backoff     time.Duration // first retry wait (default 10 s, doubling)
	Idle        time.Duration // wait when the queue is empty (default 200 ms)
	// Wake, when set, ends an idle wait at once: the receiver signals it
	// after storing a delivery.
	Wake <-chan struct{}
	// Observe, when set, is told of every processed delivery (for metrics).
	// It may be called concurrently.
	Observe func(res Result, took time.Duration, err error)
}

// Worker processes deliveries. Run several for concurrency: each claims its
// own deliveries.
type Worker struct{ o Options }

// New returns a Worker.
func New(o Options) *Worker {
	if o.Lease <= 0 {
		o.Lease = 10 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 10 * time.Second
	}
	if o.Idle <= 0 {
		o.Idle = 200 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Worker{o: o}
}

// Run processes deliveries until ctx ends. A delivery in progress when ctx
// ends is finished first when it can be (its own steps honour ctx).
func (w *Worker) Run(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := w.Once(ctx)
		if err != nil {
			w.o.Log.Error("queue", "err", err)
		}
		if n == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(w.o.Idle):
			case <-w.o.Wake:
			}
		}
	}
}

// Once claims and processes at most one delivery; it returns how many it
// processed.
func (w *Worker) Once(ctx context.Context) (int, error) {
	d, ok, err := w.o.Queue.Claim(ctx, w.o.Lease)
	if err != nil || !ok {
		return 0, err
	}
	log := w.o.Log.With("delivery", d.ID, "event", d.Event, "attempt", d.Attempts)
	start := time.Now()
	res, perr := w.Process(ctx, d)
	if w.o.Observe != nil {
		w.o.Observe(res, time.Since(start), perr)
	}
	if perr != nil {
		backoff := w.o.Backoff << min(d.Attempts-1, 10)
		log.Warn("delivery failed", "err", perr, "retry_in", backoff)
		if err := w.o.Queue.Fail(ctx, d, perr.Error(), backoff, w.o.MaxAttempts); err != nil {
			return 1, err
		}
		return 1, nil
	}
	log.Info("delivery done", "repo", res.Repo, "range", res.Range, "findings", len(res.Findings), "took", time.Since(start))
	return 1, w.o.Queue.Finish(ctx, d)
}

// Push is the part of a push payload the worker reads. before and after are
// the truth; commits[] is neither complete (it stops at 20) nor needed.
type Push struct {
	Ref        string `json:"ref"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Created    bool   `json:"created"`
	Deleted    bool   `json:"deleted"`
	Forced     bool   `json:"forced"`
	Repository struct {
		FullName      string `json:"full_name"`
		CloneURL      string `json:"clone_url"`
		DefaultBranch string `json:"default_branch"`
		Owner         struct {
			Login string `json:"login"`
			Name  string `json:"name"`
		} `json:"owner"`
		Name string `json:"name"`
	} `json:"repository"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
}

// Result is what processing a delivery found.
type Result struct {
	Repo     string
	Range    string
	Findings []*finding.Finding
}

const zeroSHA = "0000000000000000000000000000000000000000"

var (
	shaRE  = regexp.MustCompile(`^[0-9a-f]{40}$`)
	repoRE = regexp.MustCompile(`^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$`)
)

// Process handles one delivery.
func (w *Worker) Process(ctx context.Context, d store.Delivery) (Result, error) {
	switch d.Event {
	case "push":
	case repoScanEvent:
		return w.processRepoScan(ctx, d)
	default:
		return Result{}, nil
	}
	var p Push
	if err := json.Unmarshal(d.Payload, &p); err != nil {
		return Result{}, fmt.Errorf("push payload: %w", err)
	}
	res := Result{Repo: p.Repository.FullName}
	if !repoRE.MatchString(p.Repository.FullName) || !shaRE.MatchString(p.After) || !shaRE.MatchString(p.Before) {
		return res, fmt.Errorf("push payload: bad repository name or commit hashes")
	}
	if p.Deleted || p.After == zeroSHA {
		return res, nil // a deleted branch or tag adds nothing
	}
	token, gh := w.o.Token, w.o.GitHub
	if w.o.App != nil && p.Installation.ID != 0 {
		t, err := w.o.App.Token(ctx, p.Installation.ID)
		if err != nil {
			return res, err
		}
		token = t
		if gh != nil {
			gh = gh.WithAuthToken(t)
		}
	}
	mirror, err := w.fetch(ctx, p, token)
	if err != nil {
		return res, err
	}
	res.Range = w.rangeOf(mirror, p)
	r, err := engine.ScanRange(ctx, w.o.Engine, mirror, res.Range, engine.GitOptions{}, reporter{w.o.Log})
	if err != nil {
		return res, fmt.Errorf("scan %s %s: %w", p.Repository.FullName, res.Range, err)
	}
	res.Findings = r.Findings
	if w.o.Verifier != nil {
		if err := check.Run(ctx, res.Findings, w.o.Verifier, w.o.Responder); err != nil {
			w.o.Log.Error("state", "repo", p.Repository.FullName, "err", err)
		}
	}
	if gh != nil {
		if err := w.report(ctx, gh, p, res.Findings); err != nil {
			// The scan and the response are done: a failed report is
			// logged, not retried (retrying would act again).
			w.o.Log.Error("report to GitHub", "repo", p.Repository.FullName, "err", err)
		}
	}
	return res, nil
}

// rangeOf picks what the push adds: before..after for an update (a force
// push included: the range is what after has that before has not); for a new
// branch, what it has over the default branch; for a new default branch, its
// whole history.
func (w *Worker) rangeOf(mirror string, p Push) string {
	if p.Before != zeroSHA && hasCommit(mirror, p.Before) {
		return p.Before + ".." + p.After
	}
	def := "refs/heads/" + p.Repository.DefaultBranch
	if p.Repository.DefaultBranch != "" && p.Ref != def && hasRef(mirror, def) {
		return def + ".." + p.After
	}
	return ".." + p.After
}

func hasCommit(mirror, sha string) bool {
	r, err := git.PlainOpen(mirror)
	if err != nil {
		return false
	}
	_, err = r.CommitObject(plumbing.NewHash(sha))
	return err == nil
}

func hasRef(mirror, ref string) bool {
	r, err := git.PlainOpen(mirror)
	if err != nil {
		return false
	}
	_, err = r.Reference(plumbing.ReferenceName(ref), true)
	return err == nil
}

// fetch brings the pushed commits into the repository's mirror, cloning it
// the first time.
func (w *Worker) fetch(ctx context.Context, p Push, token string) (string, error) {
	u := mirror.Apply(w.o.Rewrites, p.Repository.CloneURL)
	if u == "" {
		return "", errors.New("push payload: no clone URL")
	}
	dir := mirror.Path(w.o.Mirrors, p.Repository.FullName)
	if err := mirror.Fetch(ctx, dir, u, token); err != nil {
		return "", fmt.Errorf("fetch %s: %w", p.Repository.FullName, err)
	}
	if !hasCommit(dir, p.After) {
		return "", fmt.Errorf("fetch %s: the pushed commit %s is not on the server (yet)", p.Repository.FullName, p.After)
	}
	return dir, nil
}

// report posts a commit status on the pushed commit and, for each live key,
// an issue naming file, line, key ID, verdict and action (never the secret).
func (w *Worker) report(ctx context.Context, gh *github.Client, p Push, fs []*finding.Finding) error {
	owner, name, _ := strings.Cut(p.Repository.FullName, "/")
	state, desc := "success", "no AWS keys added"
	if len(fs) > 0 {
		state, desc = "failure", fmt.Sprintf("%d AWS key(s) added", len(fs))
	}
	if _, _, err := gh.Repositories.CreateStatus(ctx, owner, name, p.After, &github.RepoStatus{
		State: github.String(state), Description: github.String(desc), Context: github.String("keyburn"),
	}); err != nil {
		return fmt.Errorf("commit status: %w", err)
	}
	return w.issues(ctx, gh, owner, name, p, fs)
}

// issues opens an issue for each live key.
func (w *Worker) issues(ctx context.Context, gh *github.Client, owner, name string, p Push, fs []*finding.Finding) error {
	for _, f := range fs {
		if f.Verification == nil || f.Verification.Status != string(verify.Live) {
			continue
		}
		l := f.Locations[0]
		action := "none"
		if f.Response != nil {
			action = f.Response.Action
		}
		body := fmt.Sprintf("keyburn found a **live** AWS access key in a push to `%s`.\n\n"+
			"| | |\n|---|---|\n| key ID | `%s` |\n| account | `%s` |\n| owner | `%s` |\n| file | `%s` line %d |\n| commit | %s |\n| verdict | %s |\n| action | %s |\n\n"+
			"The secret is not shown. Even a deleted key must be taken out of the code: "+
			"create a new key kept in a secret store, and remove this one from the file and from the history.",
			p.Ref, f.KeyID, f.AccountID, f.Verification.ARN, l.File, l.Line, l.Commit, f.Verification.Status, action)
		if _, _, err := gh.Issues.Create(ctx, owner, name, &github.IssueRequest{
			Title: github.String(fmt.Sprintf("Live AWS key %s pushed (%s)", f.KeyID, action)),
			Body:  github.String(body),
		}); err != nil {
			return fmt.Errorf("issue for %s: %w", f.KeyID, err)
		}
	}
	return nil
}

type reporter struct{ log *slog.Logger }

func (r reporter) Skipped(path, reason string) { r.log.Info("skipped", "path", path, "reason", reason) }
func (r reporter) Failed(err error)            { r.log.Warn("scan", "err", err) }

// repoScanEvent is org.JobEvent: a repository to scan, queued by
// `scan github --queue` for a fleet of workers.
const repoScanEvent = "repo-scan"

// repoJob is org.Job.
type repoJob struct {
	FullName string `json:"full_name"`
	CloneURL string `json:"clone_url"`
}

// processRepoScan scans what a repository's refs add since its last scan
// (its whole history the first time), verifies and responds, and opens an
// issue for each live key.
func (w *Worker) processRepoScan(ctx context.Context, d store.Delivery) (Result, error) {
	var j repoJob
	if err := json.Unmarshal(d.Payload, &j); err != nil || !repoRE.MatchString(j.FullName) {
		return Result{}, fmt.Errorf("repository-scan job: malformed: %v", err)
	}
	res := Result{Repo: j.FullName, Range: "since the last scan"}
	dir := mirror.Path(w.o.Mirrors, j.FullName)
	if err := mirror.Fetch(ctx, dir, mirror.Apply(w.o.Rewrites, j.CloneURL), w.o.Token); err != nil {
		return res, fmt.Errorf("fetch %s: %w", j.FullName, err)
	}
	var seen []string
	if w.o.State != nil {
		var err error
		if seen, _, err = w.o.State.RepoTips(ctx, j.FullName); err != nil {
			return res, err
		}
	}
	r, tips, err := engine.ScanSince(ctx, w.o.Engine, dir, seen, engine.GitOptions{}, reporter{w.o.Log})
	if err != nil {
		return res, fmt.Errorf("scan %s: %w", j.FullName, err)
	}
	res.Findings = r.Findings
	if w.o.Verifier != nil {
		if err := check.Run(ctx, res.Findings, w.o.Verifier, w.o.Responder); err != nil {
			w.o.Log.Error("state", "repo", j.FullName, "err", err)
		}
	}
	if w.o.State != nil {
		if err := w.o.State.SetRepoTips(ctx, j.FullName, tips); err != nil {
			return res, err
		}
	}
	if w.o.GitHub != nil {
		owner, name, _ := strings.Cut(j.FullName, "/")
		var p Push
		p.Ref = "(repository scan)"
		p.Repository.FullName = j.FullName
		if err := w.issues(ctx, w.o.GitHub, owner, name, p, res.Findings); err != nil {
			w.o.Log.Error("report to GitHub", "repo", j.FullName, "err", err)
		}
	}
	return res, nil
}
