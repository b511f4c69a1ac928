package worker

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghpush"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/notify"
	"github.com/keyburn/keyburn/internal/pipeline"
	"github.com/keyburn/keyburn/internal/source"
	"github.com/keyburn/keyburn/internal/store"
)

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
