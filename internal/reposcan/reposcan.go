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

// Scan fetches the repository's mirror, scans what its refs add since
// the last scan the store remembers (its whole history, every object once,
// the first time) and remembers where this scan ended.
func Scan(ctx context.Context, r Repo) (*engine.Result, error) {
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
		return res, fmt.Errorf("scan %s: %w", r.Name, err)
	}
	if r.Store != nil && ctx.Err() == nil {
		if err := r.Store.SetRepoTips(ctx, r.Name.String(), tips); err != nil {
			return res, err
		}
	}
	return res, nil
}

type nopReporter struct{}

func (nopReporter) Skipped(string, string) {}
func (nopReporter) Failed(error)           {}
