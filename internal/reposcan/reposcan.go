// Package reposcan scans one GitHub repository by its mirror, remembering
// where each scan ended so that the next reads only what is new: the scan
// organisation scans run for each repository and the receiver's workers run
// for a repository-scan job. It does not list repositories or verify keys.
package reposcan

import (
	"context"
	"fmt"

	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/source"
	"github.com/keyburn/keyburn/internal/store"
)

// Repo is one repository's scan, as organisation scans and the
// receiver's repository-scan jobs both run it.
type Repo struct {
	Name     ghrepo.Name
	Mirrors  string        // the mirror cache
	Source   mirror.Source // where the mirror is fetched from (built from Name by the caller)
	Store    *store.Store  // remembers where each scan ended (nil: the whole history each time)
	Engine   engine.Options
	Reporter source.Reporter
}

// Scanned is one scan's result, and where it ended: the caller remembers
// that (Remember) only once the scan's findings are checked. A run that
// dies between the scan and the check, or a check that could not finish
// (AWS unreachable), leaves the store as it was: the next scan reads the
// same commits again and finds the same keys.
type Scanned struct {
	*engine.Result
	repo Repo
	tips []string
}

// Remember stores where the scan ended, for the next scan to go on from.
func (s *Scanned) Remember(ctx context.Context) error {
	if s.repo.Store == nil {
		return nil
	}
	return s.repo.Store.SetRepoTips(ctx, s.repo.Name.String(), s.tips)
}

// Scan fetches the repository's mirror and scans what its refs add since
// the last scan the store remembers (its whole history, every object once,
// the first time). It does not remember where this scan ended: see
// Scanned.Remember.
func Scan(ctx context.Context, r Repo) (*Scanned, error) {
	rep := r.Reporter
	if rep == nil {
		rep = nopReporter{}
	}
	dir := mirror.Path(r.Mirrors, r.Name.String())
	if _, err := mirror.Fetch(ctx, dir, r.Source, nil); err != nil {
		return nil, err
	}
	var seen []string
	if r.Store != nil {
		var err error
		if seen, _, err = r.Store.RepoTips(ctx, r.Name.String()); err != nil {
			return nil, err
		}
	}
	res, tips, err := engine.ScanSince(ctx, r.Engine, dir, seen, engine.GitOptions{}, rep)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", r.Name, err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return &Scanned{Result: res, repo: r, tips: tips}, nil
}

type nopReporter struct{}

func (nopReporter) Skipped(string, string) {}
func (nopReporter) Failed(error)           {}
