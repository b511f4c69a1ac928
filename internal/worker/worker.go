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
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
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
	"github.com/keyburn/keyburn/internal/respond"
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
	testOnlyWait    func(time.Duration)  // in place of Run's waits
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
	fails := 0 // in a row: a queue that keeps failing is tried less and less often
	for stop.Err() == nil {
		n, err := w.once(stop, work)
		switch {
		case err != nil && stop.Err() == nil:
			fails++
			w.o.Log.Error("queue", "err", err, "retry_in", queueWait(w.o.Idle, fails).String())
		case err == nil:
			fails = 0
		}
		if n == 0 || err != nil {
			wait := queueWait(w.o.Idle, fails)
			if w.o.testOnlyWait != nil {
				w.o.testOnlyWait(wait)
				continue
			}
			select {
			case <-stop.Done():
			case <-time.After(wait):
			case <-w.o.Wake:
			}
		}
	}
}

// maxQueueWait bounds the wait before trying a failing queue again.
const maxQueueWait = 30 * time.Second

// queueWait is how long a worker waits before claiming again: the idle
// wait, and, once the queue has failed more than steadyFails times in a
// row, twice as long for each failure beyond, up to maxQueueWait (a
// mistyped queue URL or a state that is down is then tried, and logged,
// twice a minute, not five times a second; a passing hiccup costs
// nothing).
func queueWait(idle time.Duration, fails int) time.Duration {
	d := idle
	for i := steadyFails; i < fails && d < maxQueueWait; i++ {
		d *= 2
	}
	if fails <= steadyFails {
		return d
	}
	return min(d, maxQueueWait)
}

// steadyFails is how many failures in a row are retried at the idle wait.
const steadyFails = 3

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
		log.Error("after the check: a report or a record failed", "err", out.SinkErr)
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

// MaxBackoff caps the wait between two attempts of a delivery.
const MaxBackoff = time.Hour
