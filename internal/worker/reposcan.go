package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keyburn/keyburn/internal/check"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/notify"
	"github.com/keyburn/keyburn/internal/pipeline"
	"github.com/keyburn/keyburn/internal/reposcan"
	"github.com/keyburn/keyburn/internal/store"
)

// errMalformedJob marks a repository-scan job that can never be processed.
var errMalformedJob = errors.New("malformed repository-scan job")

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
	var scanned *reposcan.Scanned
	scan := func(ctx context.Context) (*engine.Result, error) {
		r, err := reposcan.Scan(ctx, reposcan.Repo{Name: name, Mirrors: w.o.Mirrors, Store: w.o.State, Engine: w.o.Engine,
			Reporter: reporter{w.o.Log}, Source: mirror.Source{URL: w.cloneURL(name), Token: token}})
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", name, err)
		}
		scanned = r
		return r.Result, nil
	}
	var sinks []pipeline.Sink
	if gh != nil {
		sinks = append(sinks, pipeline.Sink{Name: "issues", Take: func(ctx context.Context, out *pipeline.Outcome) error {
			return w.issues(ctx, gh, name, where{what: "a repository scan", verb: "found"}, out.Findings)
		}})
	}
	// Last: where the scan ended is remembered only once every key it
	// found is checked; otherwise the next job reads these commits again.
	sinks = append(sinks, pipeline.Sink{Name: "remember where the scan ended", Take: func(ctx context.Context, out *pipeline.Outcome) error {
		for _, f := range out.Checked {
			if why := check.Unsettled(f); why != "" {
				w.o.Log.Warn("scan not remembered: a key is not settled, the next scan of the repository reads these commits again",
					"repo", name.String(), "key_id", f.KeyID, "why", why)
				return nil
			}
		}
		return scanned.Remember(ctx)
	}})
	res.Findings, err = w.run(ctx, w.o.Log.With("repo", name.String()), notify.Where{Repository: name.String()}, scan, sinks...)
	return res, err
}
