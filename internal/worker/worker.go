// Package worker turns stored push deliveries into dead keys: it claims a
// delivery from the queue, fetches the pushed commits into a per-repository
// mirror, scans only what the push adds, verifies and responds, and reports
// back to GitHub with a commit status and, for a live key, an issue.
//
// Every field of a delivery is hostile: the repository's name is validated
// (ghrepo) before it becomes a path or an API path, the clone URL is built
// from it and the configured host (the payload's is never fetched), the
// token goes only to that host, and a GitHub App's installation is looked up
// for the repository, never taken from the payload.
//
// Nothing is lost: a delivery is held under a lease renewed while it is
// worked on, and finished or failed only by its holder; a failed delivery
// is retried with backoff and parked, with the reason, once it has failed
// too often; a panic fails the delivery instead of the worker; a delivery
// cut short by shutdown is given back at once. A pushed commit that no ref
// holds any more (force-pushed away) is fetched by its SHA, and one that
// cannot be fetched at all is raised loudly.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/awsnotice"
	"github.com/keyburn/keyburn/internal/check"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghalert"
	"github.com/keyburn/keyburn/internal/ghapp"
	"github.com/keyburn/keyburn/internal/ghpush"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/notify"
	"github.com/keyburn/keyburn/internal/pipeline"
	"github.com/keyburn/keyburn/internal/reposcan"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/source"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// Queue is where deliveries wait: the SQLite store (store.Store, one
// machine) or Amazon SQS (sqsqueue.Queue, a fleet of receivers and workers).
type Queue interface {
	// Claim leases the next ready delivery; one whose workers died on it
	// maxAttempts times is parked instead.
	Claim(ctx context.Context, lease time.Duration, maxAttempts int) (store.Delivery, bool, error)
	// Renew, Finish, Fail and Release act only under the caller's lease
	// (store.ErrLeaseLost otherwise).
	Renew(ctx context.Context, d store.Delivery, lease time.Duration) error
	Finish(ctx context.Context, d store.Delivery) error
	Fail(ctx context.Context, d store.Delivery, reason string, backoff time.Duration, maxAttempts int) error
	Release(ctx context.Context, d store.Delivery) error
}

// Options configures a Worker.
type Options struct {
	Queue Queue
	// State remembers where each repository's last scan ended, for
	// repository-scan jobs, and the issue opened for each key (nil: whole
	// histories, and an issue per finding).
	State     *store.Store
	Engine    engine.Options
	Verifier  *verify.Verifier   // nil: no verification
	Responder *respond.Responder // nil: no response
	GitHub    *github.Client     // nil: no report back
	Mirrors   string             // directory of the mirror cache
	// Host is the GitHub repositories are cloned from (default github.com);
	// Rewrites, the operator's, may send clone URLs elsewhere.
	Host     ghrepo.Host
	Rewrites []mirror.Rewrite
	// Owners limits the owners acted for (empty: all); deliveries for
	// others are acknowledged and ignored.
	Owners ghrepo.Owners
	Token  string // for fetching private repositories
	// App, when set, authenticates as a GitHub App: the installation that
	// covers each repository (looked up, never taken from the payload)
	// fetches and reports in place of Token and GitHub's own auth.
	App *ghapp.App
	Log *slog.Logger

	Lease    time.Duration // how long a claim holds; renewed every third of it (default 2 min)
	Deadline time.Duration // the longest one delivery may take (default 15 min)
	// MaxAttempts before a delivery is parked (default 12): with the
	// default backoff, retries span about 3.4 hours, to outlive a GitHub
	// or AWS outage.
	MaxAttempts int
	Backoff     time.Duration // first retry wait (default 10 s, doubling up to MaxBackoff)
	Idle        time.Duration // wait when the queue is empty (default 200 ms)
	// Wake, when set, ends an idle wait at once: the receiver signals it
	// after storing a delivery.
	Wake <-chan struct{}
	// Observe, when set, is told of every processed delivery (for metrics).
	// It may be called concurrently.
	Observe func(res Result, took time.Duration, err error)
	// Notify, when set, is given the findings of each processed delivery
	// once they are verified and acted on (the notification outbox).
	Notify func(ctx context.Context, fs []*finding.Finding, where notify.Where) error

	testOnlyProcess func(store.Delivery) // called first thing in Process
}

// Worker processes deliveries. Run several for concurrency: each claims its
// own deliveries.
type Worker struct{ o Options }

// New returns a Worker.
func New(o Options) *Worker {
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Deadline <= 0 {
		o.Deadline = 15 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 12
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
	if o.Host.Git == nil {
		o.Host, _ = ghrepo.NewHost("") // github.com: cannot fail
	}
	return &Worker{o: o}
}

// Run processes deliveries until stop ends. A delivery in progress then is
// finished while work allows; if work ends first, it is given back to the
// queue (not counted as an attempt) for another worker.
func (w *Worker) Run(stop, work context.Context) {
	for stop.Err() == nil {
		n, err := w.once(stop, work)
		if err != nil && stop.Err() == nil {
			w.o.Log.Error("queue", "err", err)
		}
		if n == 0 || err != nil {
			select {
			case <-stop.Done():
			case <-time.After(w.o.Idle):
			case <-w.o.Wake:
			}
		}
	}
}

// Once claims and processes at most one delivery; it returns how many it
// processed.
func (w *Worker) Once(ctx context.Context) (int, error) { return w.once(ctx, ctx) }

// settleTimeout bounds recording a delivery's outcome, which runs on a
// fresh context so that a shutdown cannot leave it unrecorded.
const settleTimeout = 10 * time.Second

func (w *Worker) once(stop, work context.Context) (int, error) {
	d, ok, err := w.o.Queue.Claim(stop, w.o.Lease, w.o.MaxAttempts)
	if err != nil || !ok {
		return 0, err
	}
	log := w.o.Log.With("delivery", d.ID, "event", d.Event, "attempt", d.Attempts)
	ctx, cancel := context.WithTimeout(work, w.o.Deadline)
	defer cancel()
	lost := make(chan struct{})
	renewed := make(chan struct{})
	go func() { // keep the lease while working
		defer close(renewed)
		t := time.NewTicker(max(w.o.Lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := w.o.Queue.Renew(ctx, d, w.o.Lease); errors.Is(err, store.ErrLeaseLost) {
					log.Error("lease lost: another worker has this delivery; stopping", "err", err)
					close(lost)
					cancel()
					return
				} else if err != nil && ctx.Err() == nil {
					log.Warn("renew lease", "err", err)
				}
			}
		}
	}()
	start := time.Now()
	res, perr := w.safeProcess(ctx, d)
	took := time.Since(start)
	cancel()
	<-renewed
	logFindings(log, res)
	if w.o.Observe != nil {
		w.o.Observe(res, took, perr)
	}
	settle, done := context.WithTimeout(context.WithoutCancel(work), settleTimeout)
	defer done()
	select {
	case <-lost:
		return 1, nil // the holder records the outcome
	default:
	}
	switch {
	case perr != nil && work.Err() != nil:
		log.Warn("shutting down: delivery given back", "err", perr, "took", took.Round(time.Millisecond).String())
		return 1, w.o.Queue.Release(settle, d)
	case perr != nil:
		attempts := d.Attempts
		if errors.Is(perr, ghpush.ErrNotPush) || errors.Is(perr, errMalformedJob) || errors.Is(perr, ghalert.ErrNotAlert) || errors.Is(perr, errNoGitHub) ||
			errors.Is(perr, awsnotice.ErrMalformed) || errors.Is(perr, errNoticeNotActed) {
			attempts = w.o.MaxAttempts // it will never work: park it now
		}
		backoff := min(w.o.Backoff<<min(d.Attempts-1, 10), MaxBackoff)
		log.Warn("delivery failed", "err", perr, "retry_in", backoff.String(), "parked", attempts >= w.o.MaxAttempts)
		d.Attempts = attempts
		return 1, w.o.Queue.Fail(settle, d, perr.Error(), backoff, w.o.MaxAttempts)
	}
	attrs := []any{"repo", res.Repo, "range", res.Range, "findings", len(res.Findings), "seconds", took.Seconds()}
	if res.Ignored != "" {
		attrs = append(attrs, "ignored", res.Ignored)
	}
	if res.Alert != "" {
		attrs = append(attrs, "alert", res.Alert)
	}
	log.Info("delivery done", attrs...)
	return 1, w.o.Queue.Finish(settle, d)
}

// safeProcess is Process with a panic turned into the delivery's failure:
// the worker lives on.
func (w *Worker) safeProcess(ctx context.Context, d store.Delivery) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while processing: %v", r)
			w.o.Log.Error("PANIC processing a delivery", "delivery", d.ID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	return w.Process(ctx, d)
}

// Result is what processing a delivery found.
type Result struct {
	Repo     string
	Range    string
	Findings []*finding.Finding
	// Ignored says why a delivery was acknowledged and not acted on.
	Ignored string
	// Unfetchable are pushed commits the mirror could not get: they may
	// hold a key nobody scanned.
	Unfetchable []string
	// Alert is what was done with a secret-scanning alert: "resolved as
	// revoked", or "left open: why".
	Alert string
}

// errMalformedJob marks a repository-scan job that can never be processed.
var errMalformedJob = errors.New("malformed repository-scan job")

// Process handles one delivery.
func (w *Worker) Process(ctx context.Context, d store.Delivery) (Result, error) {
	if w.o.testOnlyProcess != nil {
		w.o.testOnlyProcess(d)
	}
	switch d.Event {
	case "push":
		return w.processPush(ctx, d)
	case repoScanEvent:
		return w.processRepoScan(ctx, d)
	case AlertEvent:
		return w.processAlert(ctx, d)
	case NoticeEvent:
		return w.processNotice(ctx, d)
	}
	return Result{Ignored: "event " + d.Event}, nil
}

func (w *Worker) processPush(ctx context.Context, d store.Delivery) (Result, error) {
	p, name, err := ghpush.Parse(d.Payload)
	if err != nil {
		return Result{}, err
	}
	res := Result{Repo: name.String()}
	if !w.o.Owners.Allows(name.Owner) {
		res.Ignored = "owner " + name.Owner + " is not in the owner allowlist"
		w.o.Log.Warn("delivery ignored", "repo", name.String(), "reason", res.Ignored)
		return res, nil
	}
	if p.Deleted || p.After == ghpush.Zero {
		return res, nil // a deleted branch or tag adds nothing
	}
	token, gh, err := w.credentials(ctx, name)
	if err != nil {
		return res, err
	}
	dir := mirror.Path(w.o.Mirrors, name.String())
	missing, err := mirror.Fetch(ctx, dir, mirror.Source{URL: w.cloneURL(name), Token: token}, p.Wants())
	if err != nil {
		return res, fmt.Errorf("fetch %s: %w", name, err)
	}
	if len(missing) > 0 {
		res.Unfetchable = missing
		w.o.Log.Error("PUSHED COMMITS CANNOT BE FETCHED: they may hold a key nobody scanned", "repo", name.String(),
			"ref", p.Ref, "commits", strings.Join(missing, ","), "attempt", d.Attempts)
		if d.Attempts >= w.o.MaxAttempts && gh != nil {
			w.raiseUnfetchable(ctx, gh, name, p, missing)
		}
		if slices.Contains(missing, p.After) {
			return res, fmt.Errorf("fetch %s: the pushed commit %s is not on the server, even by its SHA", name, p.After)
		}
	}
	repo, err := source.OpenRepo(dir)
	if err != nil {
		return res, fmt.Errorf("open the mirror of %s: %w", name, err)
	}
	defer repo.Close()
	// A tag push's "after" is the tag object: what it adds is what the
	// tagged commit adds, and the status goes on that commit.
	head, err := repo.Resolve(p.After)
	if err != nil {
		return res, fmt.Errorf("scan %s %s: %w", name, p.After, err)
	}
	from := rangeFrom(repo, p)
	res.Range = from + ".." + p.After
	scan := func(ctx context.Context) (*engine.Result, error) {
		r, err := engine.ScanRevs(ctx, w.o.Engine, repo, from, head.String(), engine.GitOptions{}, reporter{w.o.Log})
		if err != nil {
			// Retried whole: a partial range is not reported.
			return nil, fmt.Errorf("scan %s %s: %w", name, res.Range, err)
		}
		return r, nil
	}
	var sinks []pipeline.Sink
	if gh != nil {
		sinks = append(sinks, pipeline.Sink{Name: "report to GitHub", Take: func(ctx context.Context, out *pipeline.Outcome) error {
			return w.report(ctx, gh, name, p, head.String(), out.Findings)
		}})
	}
	res.Findings, err = w.run(ctx, w.o.Log.With("repo", name.String()), notify.Where{Repository: name.String()}, scan, sinks...)
	return res, err
}

// run is every kind of delivery's one run (pipeline.Run): the delivery's
// scan, then the check stage (verification and response, when the worker
// verifies at all; news handed to the outbox), then its sinks (GitHub's
// status, issues, an alert's resolution). A scan that fails fails the
// delivery, which is retried. Once keys may have been acted on, nothing
// does: a failure to record or to report is logged, not retried, since
// retrying would act again.
func (w *Worker) run(ctx context.Context, log *slog.Logger, where notify.Where, scan func(context.Context) (*engine.Result, error), sinks ...pipeline.Sink) ([]*finding.Finding, error) {
	st := check.Stage{Verifier: w.o.Verifier, Responder: w.o.Responder}
	if w.o.Notify != nil {
		st.News = func(ctx context.Context, fs []*finding.Finding) error {
			return w.o.Notify(ctx, fs, where)
		}
	}
	out := pipeline.Run{Scan: scan, Check: st, Sinks: sinks}.Do(ctx)
	if out.Result == nil {
		return nil, out.ScanErr
	}
	if out.CheckErr != nil {
		log.Error("state or notifications could not be stored", "err", out.CheckErr)
	}
	if out.SinkErr != nil {
		log.Error("report to GitHub", "err", out.SinkErr)
	}
	return out.Findings, nil
}

// cloneURL is the repository's clone URL: built from its validated name and
// the configured host, then the operator's rewrites.
func (w *Worker) cloneURL(name ghrepo.Name) string {
	return mirror.Apply(w.o.Rewrites, w.o.Host.CloneURL(name))
}

// credentials are the token for fetching and the client for reporting: an
// App's installation token for the repository, or the configured ones.
func (w *Worker) credentials(ctx context.Context, name ghrepo.Name) (string, *github.Client, error) {
	if w.o.App == nil {
		return w.o.Token, w.o.GitHub, nil
	}
	t, err := w.o.App.RepoToken(ctx, name.Owner, name.Repo)
	if err != nil {
		return "", nil, err
	}
	gh := w.o.GitHub
	if gh != nil {
		gh = gh.WithAuthToken(t)
	}
	return t, gh, nil
}

// rangeFrom picks where what the push adds starts: before, for an update
// (a force push included: the range is what after has that before has
// not); for a new branch, the default branch; for a new default branch,
// nothing ("": its whole history).
func rangeFrom(repo *source.Repo, p ghpush.Push) string {
	if p.Before != ghpush.Zero && repo.HasCommit(p.Before) {
		return p.Before
	}
	def := "refs/heads/" + p.Repository.DefaultBranch
	if p.Repository.DefaultBranch != "" && p.Ref != def && repo.HasRef(def) {
		return def
	}
	return ""
}

// report posts a commit status on the pushed commit (head: a tag push's
// tag peeled) and an issue for each live key.
func (w *Worker) report(ctx context.Context, gh *github.Client, name ghrepo.Name, p ghpush.Push, head string, fs []*finding.Finding) error {
	state, desc := "success", "no AWS keys added"
	if len(fs) > 0 {
		state, desc = "failure", fmt.Sprintf("%d AWS key(s) added", len(fs))
	}
	if _, _, err := gh.Repositories.CreateStatus(ctx, name.Owner, name.Repo, head, &github.RepoStatus{
		State: github.String(state), Description: github.String(desc), Context: github.String("keyburn"),
	}); err != nil {
		return fmt.Errorf("commit status: %w", err)
	}
	return w.issues(ctx, gh, name, where{what: "a push to " + p.Ref, verb: "pushed"}, fs)
}

// raiseUnfetchable opens an issue for pushed commits that could not be
// fetched: nobody has scanned them.
func (w *Worker) raiseUnfetchable(ctx context.Context, gh *github.Client, name ghrepo.Name, p ghpush.Push, missing []string) {
	body := fmt.Sprintf("keyburn could not fetch %d commit(s) of a push to %s, even by SHA, so it could not scan them "+
		"for AWS keys:\n\n%s\n\nIf they were force-pushed away, they may still be visible to others. Scan them by hand "+
		"(`keyburn scan git --range`) and rotate any key they hold.", len(missing), codeSpan(p.Ref), codeSpan(strings.Join(missing, " ")))
	if _, _, err := gh.Issues.Create(ctx, name.Owner, name.Repo, &github.IssueRequest{
		Title: github.String("keyburn could not scan pushed commits"), Body: github.String(body),
	}); err != nil {
		w.o.Log.Error("report unfetchable commits", "repo", name.String(), "err", err)
	}
}

// issues opens, or updates, one issue per live key. It names the key (ID,
// fingerprint, owner, verdict, action) and what to do; where the key is
// only in a private repository (the API says which: the payload is not
// trusted for it), since in a public one the issue would tell everyone.
// where says what a key was found in, for an issue's body (what) and its
// title (verb: "pushed", or "found" for what was not a push).
type where struct{ what, verb string }

func (w *Worker) issues(ctx context.Context, gh *github.Client, name ghrepo.Name, what where, fs []*finding.Finding) error {
	private := false
	for _, f := range fs {
		if f.Verification == nil || f.Verification.Status != string(verify.Live) {
			continue
		}
		if !private {
			if r, _, err := gh.Repositories.Get(ctx, name.Owner, name.Repo); err == nil && r.GetPrivate() {
				private = true
			}
		}
		if err := w.issue(ctx, gh, name, what, f, private); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) issue(ctx context.Context, gh *github.Client, name ghrepo.Name, at where, f *finding.Finding, private bool) error {
	what := at.what
	action := "none"
	if f.Response != nil {
		action = f.Response.Action
	}
	var b strings.Builder
	fmt.Fprintf(&b, "keyburn found a **live** AWS access key in %s.\n\n| | |\n|---|---|\n", codeSpan(what))
	fmt.Fprintf(&b, "| key ID | %s |\n| fingerprint | %s |\n| account | %s |\n| owner | %s |\n| verdict | %s |\n| action | %s |\n",
		cell(f.KeyID), cell(f.Fingerprint()), cell(f.AccountID), cell(f.Verification.ARN), cell(f.Verification.Status), cell(action))
	if f.Verification.Reach != nil {
		fmt.Fprintf(&b, "| severity | %s |\n| reach | %s |\n", cell(f.Severity), cell(f.Verification.Reach.Summary()))
	}
	if f.Response != nil && f.Response.Evidence != nil {
		fmt.Fprintf(&b, "| CloudTrail | %s |\n", cell(f.Response.Evidence.Summary()))
	}
	if f.Response != nil && f.Response.Replacement != nil {
		fmt.Fprintf(&b, "| replacement key | %s, in AWS Secrets Manager as %s |\n", cell(f.Response.Replacement.KeyID), cell(f.Response.Replacement.Secret))
	}
	if private && len(f.Locations) > 0 {
		l := f.Locations[0]
		fmt.Fprintf(&b, "| file | %s line %d |\n| commit | %s |\n", cell(l.File), l.Line, cell(l.Commit))
	}
	b.WriteString("\nThe secret is not shown")
	if !private {
		b.WriteString(", nor where the key is: this repository is public")
	}
	b.WriteString(". What to do: make sure the key is deactivated and deleted in IAM (keyburn's action is above), " +
		"create a new key kept in a secret store, and remove this one from the code and from the history. " +
		"`keyburn scan git` on a clone names the file and commit.")
	title := issueTitle(f, action, at.verb)
	var num int
	if w.o.State != nil {
		var err error
		if num, err = w.o.State.IssueFor(ctx, name.String(), f.KeyID); err != nil {
			return err
		}
	}
	if num > 0 {
		if _, _, err := gh.Issues.Edit(ctx, name.Owner, name.Repo, num, &github.IssueRequest{Title: github.String(title), Body: github.String(b.String())}); err == nil {
			return nil
		}
		// Gone (deleted, or transferred): open a new one.
	}
	iss, _, err := gh.Issues.Create(ctx, name.Owner, name.Repo, &github.IssueRequest{Title: github.String(title), Body: github.String(b.String())})
	if err != nil {
		return fmt.Errorf("issue for %s: %w", f.KeyID, err)
	}
	if w.o.State != nil {
		return w.o.State.SetIssue(ctx, name.String(), f.KeyID, iss.GetNumber())
	}
	return nil
}

// codeSpan renders s as a Markdown code span whatever it holds: fenced by
// more backticks than it contains in a row, with line breaks and control
// characters shown, not obeyed, and its length capped.
func codeSpan(s string) string {
	const maxLen = 200
	if len([]rune(s)) > maxLen {
		s = string([]rune(s)[:maxLen]) + "…"
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, s)
	run, longest := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if s == "" {
		return "(none)"
	}
	return fence + " " + s + " " + fence
}

// cell is a code span for a table cell: a '|' in it would end the cell,
// so it is escaped as GitHub's tables require.
func cell(s string) string { return strings.ReplaceAll(codeSpan(s), "|", `\|`) }

// logFindings writes one line per finding of a delivery (where, which
// key, how sure, the verdict and the action), and one more per key acted
// on, with where the audit log has it. Secrets are never in them: a key
// is named by its ID and fingerprint.
func logFindings(log *slog.Logger, res Result) {
	for _, f := range res.Findings {
		attrs := []any{"repo", res.Repo, "key_id", f.KeyID, "fingerprint", f.Fingerprint(), "severity", f.Severity,
			"paired", f.Paired()}
		if len(f.Locations) > 0 {
			l := f.Locations[0]
			attrs = append(attrs, "commit", l.Commit, "path", l.File, "line", l.Line, "locations", len(f.Locations))
		}
		verdict := "not verified"
		if v := f.Verification; v != nil {
			verdict = v.Status
			if v.Error != "" {
				attrs = append(attrs, "verify_error", v.Error)
			}
			if v.ARN != "" {
				attrs = append(attrs, "owner", v.ARN)
			}
			if len(v.Quarantine) > 0 {
				attrs = append(attrs, "quarantine", strings.Join(v.Quarantine, ","))
			}
		}
		action := "none"
		if r := f.Response; r != nil {
			action = r.Action
		}
		attrs = append(attrs, "verdict", verdict, "action", action)
		level := slog.LevelWarn // a key in a push is worth attention
		if f.Verification != nil && f.Verification.Error != "" {
			level = slog.LevelError // not known to be dead
		}
		log.Log(context.Background(), level, "key found", attrs...)
		r := f.Response
		if r == nil {
			continue
		}
		a := respond.Action(r.Action)
		failed := r.Error != "" || a == respond.ActionFailed
		liveLeft := a == respond.ActionSkipped && verdict == string(verify.Live)
		if !failed && !liveLeft && (a == respond.ActionNone || a == respond.ActionSkipped) {
			continue // nothing was done, nor was there anything to do: the line above says so
		}
		acted := []any{"repo", res.Repo, "key_id", f.KeyID, "fingerprint", f.Fingerprint(), "action", r.Action}
		if r.Reason != "" {
			acted = append(acted, "reason", r.Reason)
		}
		if r.DueAt != "" {
			acted = append(acted, "delete_due", r.DueAt)
		}
		if rp := r.Replacement; rp != nil {
			acted = append(acted, "replacement", rp.KeyID, "replacement_secret", rp.Secret)
		}
		if v := f.Verification; v != nil && len(v.Quarantine) > 0 {
			acted = append(acted, "quarantine", finding.QuarantineAdvice(v.Quarantine, a == respond.ActionDeleted))
		}
		acted = append(acted, "audit", "keyburn scan audit --key "+f.KeyID)
		switch {
		case failed:
			log.Error("KEY ACTION FAILED", append(acted, "err", r.Error)...)
		case liveLeft:
			log.Warn("live key left alone", acted...) // refused, below the severity floor, deleted already
		default:
			log.Warn("key acted on", acted...)
		}
	}
}

type reporter struct{ log *slog.Logger }

func (r reporter) Skipped(path, reason string) { r.log.Info("skipped", "path", path, "reason", reason) }
func (r reporter) Failed(err error)            { r.log.Warn("scan", "err", err) }

// repoScanEvent is org.JobEvent: a repository to scan, queued by
// `scan github --queue` for a fleet of workers.
const repoScanEvent = "repo-scan"

// repoJob is the part of org.Job the worker reads: the name only. Its
// clone URL is never used.
type repoJob struct {
	FullName string `json:"full_name"`
}

// processRepoScan scans what a repository's refs add since its last scan
// (its whole history the first time), verifies and responds, and opens an
// issue for each live key.
func (w *Worker) processRepoScan(ctx context.Context, d store.Delivery) (Result, error) {
	var j repoJob
	if err := json.Unmarshal(d.Payload, &j); err != nil {
		return Result{}, fmt.Errorf("%w: %v", errMalformedJob, err)
	}
	name, err := ghrepo.Parse(j.FullName)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", errMalformedJob, err)
	}
	res := Result{Repo: name.String(), Range: "since the last scan"}
	if !w.o.Owners.Allows(name.Owner) {
		res.Ignored = "owner " + name.Owner + " is not in the owner allowlist"
		w.o.Log.Warn("job ignored", "repo", name.String(), "reason", res.Ignored)
		return res, nil
	}
	token, gh, err := w.credentials(ctx, name)
	if err != nil {
		return res, err
	}
	scan := func(ctx context.Context) (*engine.Result, error) {
		r, err := reposcan.Scan(ctx, reposcan.Repo{Name: name, Mirrors: w.o.Mirrors, Store: w.o.State, Engine: w.o.Engine,
			Reporter: reporter{w.o.Log}, Source: mirror.Source{URL: w.cloneURL(name), Token: token}})
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", name, err)
		}
		return r, nil
	}
	var sinks []pipeline.Sink
	if gh != nil {
		sinks = append(sinks, pipeline.Sink{Name: "issues", Take: func(ctx context.Context, out *pipeline.Outcome) error {
			return w.issues(ctx, gh, name, where{what: "a repository scan", verb: "found"}, out.Findings)
		}})
	}
	res.Findings, err = w.run(ctx, w.o.Log.With("repo", name.String()), notify.Where{Repository: name.String()}, scan, sinks...)
	return res, err
}

// issueTitle names the key and what was done; a root key's says it is
// critical, since it can do everything in its account.
func issueTitle(f *finding.Finding, action, verb string) string {
	if f.Verification != nil && f.Verification.Root {
		return fmt.Sprintf("CRITICAL: live AWS ROOT key %s %s (%s): it can do everything in account %s", f.KeyID, verb, action, f.Verification.Account)
	}
	if f.Severity == finding.SeverityCritical && f.Verification != nil && f.Verification.Reach != nil {
		what, _, _ := strings.Cut(f.Verification.Reach.Summary(), ";")
		return fmt.Sprintf("CRITICAL: live AWS key %s %s (%s): %s", f.KeyID, verb, action, what)
	}
	return fmt.Sprintf("Live AWS key %s %s (%s)", f.KeyID, verb, action)
}

// MaxBackoff caps the wait between two attempts of a delivery.
const MaxBackoff = time.Hour

// AlertEvent is GitHub's event for its own secret-scanning alerts.
const AlertEvent = "secret_scanning_alert"

// AlertResolved is Result.Alert for an alert resolved as revoked.
const AlertResolved = "resolved as revoked"

// AlertWouldResolve is Result.Alert for an alert a dry run left open that
// would have been resolved.
const AlertWouldResolve = "left open: a dry run (it would be resolved as revoked)"

// errNoGitHub marks an alert that cannot be acted on without the REST API.
var errNoGitHub = errors.New("a secret-scanning alert needs the GitHub API (a token or a GitHub App), and the worker has none")

// processAlert acts on a secret-scanning alert: it fetches the alert
// (with its secret) through the API, pairs the key, verifies and responds
// like any finding, resolves the alert as revoked once the key is out of
// use, and opens an issue for a live key that is not.
func (w *Worker) processAlert(ctx context.Context, d store.Delivery) (Result, error) {
	e, name, err := ghalert.Parse(d.Payload)
	if err != nil {
		return Result{}, err
	}
	res := Result{Repo: name.String(), Range: fmt.Sprintf("secret scanning alert #%d", e.Alert.Number)}
	if !w.o.Owners.Allows(name.Owner) {
		res.Ignored = "owner " + name.Owner + " is not in the owner allowlist"
		w.o.Log.Warn("delivery ignored", "repo", name.String(), "reason", res.Ignored)
		return res, nil
	}
	if ok, why := e.Wanted(); !ok {
		res.Ignored = why
		return res, nil
	}
	_, gh, err := w.credentials(ctx, name)
	if err != nil {
		return res, err
	}
	if gh == nil {
		return res, errNoGitHub
	}
	log := w.o.Log.With("repo", name.String(), "alert", e.Alert.Number)
	a, err := ghalert.Get(ctx, gh, name, e.Alert.Number)
	if err != nil {
		return res, err
	}
	p, err := ghalert.Prepare(ctx, gh, w.o.Engine, name, a, reporter{log})
	if err != nil {
		return res, err
	}
	res.Findings = p.Findings
	if p.Skip != "" {
		res.Alert = "left open: " + p.Skip
		log.Info("alert not acted on", "reason", p.Skip)
		return res, nil
	}
	if w.o.Verifier == nil {
		res.Alert = "left open: verification is off"
		return res, nil
	}
	resolve := pipeline.Sink{Name: "resolve the alert", Take: func(ctx context.Context, _ *pipeline.Outcome) error {
		out, err := p.Resolve(ctx, gh, ghalert.ResolveOptions{State: w.o.State, DryRun: w.o.Responder.DryRun()})
		switch {
		case err != nil:
			res.Alert = "left open: " + out.Why
		case out.Would:
			res.Alert = AlertWouldResolve
			log.Info("alert would be resolved as revoked (dry run)", "comment", out.Comment)
		case out.Resolved:
			res.Alert = AlertResolved
			log.Info("alert resolved as revoked", "comment", out.Comment)
		default:
			res.Alert = "left open: " + out.Why
			log.Warn("alert left open", "reason", out.Why)
		}
		return err
	}}
	// An issue for a live key the alert's run did not revoke; one it
	// revoked is told by the alert's resolution.
	issues := pipeline.Sink{Name: "issues", Take: func(ctx context.Context, out *pipeline.Outcome) error {
		var unrevoked []*finding.Finding
		for _, f := range out.Findings {
			if f.Response == nil || !respond.Action(f.Response.Action).Acted() {
				unrevoked = append(unrevoked, f)
			}
		}
		return w.issues(ctx, gh, name, where{what: res.Range, verb: "found by secret scanning"}, unrevoked)
	}}
	prepared := func(context.Context) (*engine.Result, error) { return &engine.Result{Findings: p.Findings}, nil }
	res.Findings, err = w.run(ctx, log, notify.Where{Repository: name.String()}, prepared, resolve, issues)
	return res, err
}

// NoticeEvent is an AWS credentials-exposed notice, read from the queue
// EventBridge sends them to.
const NoticeEvent = awsnotice.Event

// errNoticeNotActed parks a notice a receiver that does not act (the
// responder off, or a dry run) looked at: acted on later, once requeued
// ('keyburn scan audit --requeue'), by a responder that acts.
var errNoticeNotActed = errors.New("not acted on (the responder is off, or a dry run): kept parked, to be requeued once the responder acts")

// processNotice acts on AWS's own notice that keys leaked: each key is
// found in IAM and acted on, every rail held (check.Stage, respond.Vouch),
// without an STS verification (there is no secret). Another kind of event
// is acknowledged and dropped; a malformed one is parked. A notice whose
// keys were not all settled (IAM unreachable, an action failed) fails, to
// be retried with backoff and parked at last.
func (w *Worker) processNotice(ctx context.Context, d store.Delivery) (Result, error) {
	n, err := awsnotice.Parse(d.Payload)
	if errors.Is(err, awsnotice.ErrOther) {
		w.o.Log.Info("notice dropped", "reason", err.Error())
		return Result{Ignored: err.Error()}, nil
	}
	if err != nil {
		return Result{}, err
	}
	res := Result{Repo: "aws:" + n.Account, Range: "AWS Health notice " + n.EventARN}
	log := w.o.Log.With("account", n.Account, "notice", n.EventARN)
	if w.o.Responder == nil {
		log.Error("AWS NOTICE OF EXPOSED KEYS, NOT ACTED ON: the responder is off", "keys", strings.Join(n.Keys, ","))
	}
	scan := func(context.Context) (*engine.Result, error) { return &engine.Result{Findings: n.Findings()}, nil }
	res.Findings, err = w.run(ctx, log, notify.Where{Repository: "AWS account " + n.Account}, scan)
	if err != nil {
		return res, err
	}
	if w.o.Responder == nil || w.o.Responder.DryRun() {
		return res, errNoticeNotActed
	}
	var unsettled []string
	for _, f := range res.Findings {
		if why := awsnotice.Unsettled(f); why != "" {
			unsettled = append(unsettled, f.KeyID+": "+why)
		}
	}
	if len(unsettled) > 0 {
		return res, fmt.Errorf("notice %s: %s", n.EventARN, strings.Join(unsettled, "; "))
	}
	return res, nil
}
