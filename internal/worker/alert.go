package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghalert"
	"github.com/keyburn/keyburn/internal/notify"
	"github.com/keyburn/keyburn/internal/pipeline"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/store"
)

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
