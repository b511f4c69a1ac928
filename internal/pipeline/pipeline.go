// Package pipeline is keyburn's one run from a source to its reports, for
// every caller: the CLI's scans (a directory, a history, the staged
// changes, an organisation, its secret-scanning alerts, AWS's notices)
// and the receiver's deliveries (a push, a repository job, an alert, an
// AWS notice). Each caller only
// chooses: which scan (an engine entry on the source it picked), which
// baseline, which check stage, which findings it keeps, and where the
// findings go (its sinks). The order, and what happens when a part fails,
// are the pipeline's, the same on every path:
//
//  1. the scan; one that returns no result ends the run (nothing to check);
//     one that fails part-way still hands on what it found, since a key
//     found is acted on however the rest of the scan went;
//  2. the baseline drops accepted findings, before anything is verified
//     (an accepted key costs no STS call and is never acted on);
//  3. the check stage verifies, acts and records news (check.Stage: the
//     key locks, leases and shared verdicts of a fleet hold here);
//  4. Keep narrows what is reported (--only-verified), after the check;
//  5. every sink in turn; one that fails does not stop the others (a
//     report that cannot be written does not hold back a notification).
package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
)

// A Checker is the stage after the scan: check.Stage, or a caller's
// wrapper that opens what the stage needs only when it has work.
type Checker interface {
	Run(ctx context.Context, fs []*finding.Finding) error
}

// A Sink takes a run's findings once they are checked: a report written,
// a commit status, issues, an alert resolved, notifications sent.
type Sink struct {
	Name string // what it does, for its errors: "write results"
	Take func(ctx context.Context, out *Outcome) error
}

// Run is one run: the caller's choices.
type Run struct {
	// Scan reads the chosen source through the engine. A nil result ends
	// the run; a result with an error is a partial scan, carried on.
	Scan     func(ctx context.Context) (*engine.Result, error)
	Baseline finding.Baseline
	Check    Checker // nil: nothing verified or acted on
	// Keep, when set, picks the findings reported, once checked.
	Keep  func([]*finding.Finding) []*finding.Finding
	Sinks []Sink
}

// Outcome is what a run did.
type Outcome struct {
	// Result is the scan's (counts, and its findings as found); nil when
	// the scan returned none.
	Result *engine.Result
	// Findings are what is reported: the scan's, less the baseline's,
	// checked, and kept.
	Findings []*finding.Finding
	Checked  []*finding.Finding // every finding the check stage saw, before Keep
	Accepted int                // left out by the baseline
	ScanErr  error              // the scan did not finish (Result is partial) or did not start
	CheckErr error              // the check stage could not record or could not start
	SinkErr  error              // each sink's failure, named
}

// Complete says whether the run did everything it was asked to.
func (o *Outcome) Complete() bool {
	return o.ScanErr == nil && o.CheckErr == nil && o.SinkErr == nil
}

// Do runs r.
func (r Run) Do(ctx context.Context) *Outcome {
	out := &Outcome{}
	if r.Scan == nil {
		out.ScanErr = errors.New("pipeline: no scan given")
		return out
	}
	out.Result, out.ScanErr = r.Scan(ctx)
	if out.Result == nil {
		if out.ScanErr == nil {
			out.ScanErr = errors.New("pipeline: the scan returned no result and no error")
		}
		return out
	}
	out.Findings, out.Accepted = r.Baseline.Filter(out.Result.Findings)
	if r.Check != nil {
		out.CheckErr = r.Check.Run(ctx, out.Findings)
	}
	out.Checked = out.Findings
	if r.Keep != nil {
		out.Findings = r.Keep(out.Findings)
	}
	var errs []error
	for _, s := range r.Sinks {
		if err := s.Take(ctx, out); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	out.SinkErr = errors.Join(errs...)
	return out
}

// CheckFunc is a function as a Checker.
type CheckFunc func(ctx context.Context, fs []*finding.Finding) error

// Run calls f.
func (f CheckFunc) Run(ctx context.Context, fs []*finding.Finding) error { return f(ctx, fs) }
