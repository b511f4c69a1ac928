package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/keyburn/keyburn/internal/source"
)

// Range is a revision range as git reads it.
type Range struct {
	From, To string
	// Symmetric is A...B: what either end has that the other lacks.
	Symmetric bool
	// NewBranch: From was the zero SHA (GitHub's "before" of a new
	// branch, pre-push's remote SHA): what To has that no other reference
	// has.
	NewBranch bool
	// Deleted: To was the zero SHA (a deleted branch): nothing is added.
	Deleted bool
}

// ZeroSHA is the all-zero commit ID that git and GitHub use for "no commit".
const ZeroSHA = "0000000000000000000000000000000000000000"

// ParseRange reads a range as git does: A..B, A.. (A..HEAD), ..B
// (HEAD..B), A...B (symmetric), A... and ...B; either end may be the zero
// SHA, for a new branch or a deleted one.
func ParseRange(spec string) (Range, error) {
	var r Range
	var ok bool
	if r.From, r.To, ok = strings.Cut(spec, "..."); ok {
		r.Symmetric = true
	} else if r.From, r.To, ok = strings.Cut(spec, ".."); !ok {
		return Range{}, fmt.Errorf("range %q: want A..B, A.., ..B or A...B (as git log takes them)", spec)
	}
	if strings.Contains(r.To, "..") {
		return Range{}, fmt.Errorf("range %q: more than one '..'", spec)
	}
	if r.From == "" {
		r.From = "HEAD"
	}
	if r.To == "" {
		r.To = "HEAD"
	}
	switch {
	case r.To == ZeroSHA:
		r.Deleted = true
	case r.From == ZeroSHA:
		if r.Symmetric {
			return Range{}, fmt.Errorf("range %q: the zero SHA has no symmetric difference", spec)
		}
		r.From, r.NewBranch = "", true
	}
	return r, nil
}

// ScanRange scans only what a range adds (spec as ParseRange reads it): the
// blobs that its commits add, and their messages. Its cost grows with the
// range, not with the history.
func ScanRange(ctx context.Context, opts Options, path, spec string, gopts GitOptions, rep source.Reporter) (*Result, error) {
	rg, err := ParseRange(spec)
	if err != nil {
		return nil, err
	}
	repo, err := source.OpenRepo(path)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	switch {
	case rg.Deleted:
		return &Result{}, nil
	case rg.NewBranch:
		to, err := repo.Resolve(rg.To)
		if err != nil {
			return nil, err
		}
		// Every other reference's commits are known already.
		tips, err := repo.Tips()
		if err != nil {
			return nil, err
		}
		var froms []plumbing.Hash
		for _, h := range tips {
			if h != to {
				froms = append(froms, h)
			}
		}
		return scanHashes(ctx, opts, repo, froms, []plumbing.Hash{to}, gopts, rep)
	case rg.Symmetric:
		a, err := repo.Resolve(rg.From)
		if err != nil {
			return nil, err
		}
		b, err := repo.Resolve(rg.To)
		if err != nil {
			return nil, err
		}
		bases, err := repo.MergeBases(a, b)
		if err != nil {
			return nil, err
		}
		return scanHashes(ctx, opts, repo, bases, []plumbing.Hash{a, b}, gopts, rep)
	}
	return ScanRevs(ctx, opts, repo, rg.From, rg.To, gopts, rep)
}

// scanHashes scans the commits reachable from tos but from none of froms.
func scanHashes(ctx context.Context, opts Options, repo *source.Repo, froms, tos []plumbing.Hash, gopts GitOptions, rep source.Reporter) (*Result, error) {
	commits, err := repo.RangeCommits(froms, tos)
	if err != nil {
		return nil, err
	}
	return scanCommits(ctx, opts, repo, commits, gopts, rep)
}

// ScanRevs is ScanRange on an open repository, with the range's two ends
// apart: what to adds over from ("" from: to's whole history).
func ScanRevs(ctx context.Context, opts Options, repo *source.Repo, from, to string, gopts GitOptions, rep source.Reporter) (*Result, error) {
	toHash, err := repo.Resolve(to)
	if err != nil {
		return nil, err
	}
	var fromHash plumbing.Hash
	if from != "" {
		if fromHash, err = repo.Resolve(from); err != nil {
			return nil, err
		}
	}
	var froms []plumbing.Hash
	if !fromHash.IsZero() {
		froms = append(froms, fromHash)
	}
	return scanHashes(ctx, opts, repo, froms, []plumbing.Hash{toHash}, gopts, rep)
}

// ScanSince scans what a repository's references add over the commits seen
// before (the tips a previous scan returned), and returns the tips to
// remember for the next time. Unknown seen commits (gone after a force push)
// are ignored. With none seen, it is ScanHistory: the whole history, every
// object once, by the fast reader.
func ScanSince(ctx context.Context, opts Options, path string, seen []string, gopts GitOptions, rep source.Reporter) (*Result, []string, error) {
	repo, err := source.OpenRepo(path)
	if err != nil {
		return nil, nil, err
	}
	defer repo.Close()
	var froms []plumbing.Hash
	for _, s := range seen {
		h := plumbing.NewHash(s)
		if repo.HasCommit(s) {
			froms = append(froms, h)
		}
	}
	tos, err := repo.Tips()
	if err != nil {
		return nil, nil, err
	}
	var tips []string
	for _, h := range tos {
		tips = append(tips, h.String())
	}
	if len(tos) == 0 {
		return &Result{}, tips, nil // an empty repository
	}
	if len(froms) == 0 {
		res, err := ScanHistory(ctx, opts, path, gopts, rep)
		return res, tips, err
	}
	commits, err := repo.RangeCommits(froms, tos)
	if err != nil {
		return nil, nil, err
	}
	res, err := scanCommits(ctx, opts, repo, commits, gopts, rep)
	return res, tips, err
}

// scanCommits scans the blobs the commits add (oldest commit first, each
// blob once) and the commits' messages.
func scanCommits(ctx context.Context, opts Options, repo *source.Repo, commits []*source.Commit, gopts GitOptions, rep source.Reporter) (*Result, error) {
	res := &Result{Commits: int64(len(commits))}
	coll := newCollector(opts)
	// Oldest first, so that a blob is attributed to the first commit of the
	// range that added it.
	sets := make([]source.ChangeSet, 0, len(commits))
	for i := len(commits) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			coll.finish(res)
			return res, err
		}
		c := commits[i]
		var parentTree plumbing.Hash
		if len(c.Parents) > 0 {
			var err error
			if parentTree, err = repo.TreeOf(c.Parents[0]); err != nil {
				rep.Failed(fmt.Errorf("commit %s: parent %s: %w", c.Hash, c.Parents[0], err))
			}
		}
		paths, blobs, err := repo.Changes(c, parentTree)
		if err != nil {
			rep.Failed(err)
		}
		set := source.ChangeSet{Prov: source.Provenance{Commit: c.Hash.String(), Author: c.Author, Date: date(c.When)}, Message: c.Message}
		for j, h := range blobs {
			set.Changes = append(set.Changes, source.Change{Path: paths[j].Path, Blob: h})
		}
		sets = append(sets, set)
	}
	err := scanChanges(ctx, opts, source.Changes{Repo: repo, Sets: sets, MaxSize: gopts.MaxBlobSize, ArchiveDepth: opts.FS.ArchiveDepth, ArchiveMaxSize: opts.FS.ArchiveMaxSize, SkipBinaries: opts.FS.SkipBinaries}, rep, res, coll)
	coll.finish(res)
	return res, err
}

// ScanStaged scans what the next commit would add: the staged files that
// differ from HEAD, whole (so line numbers are the file's), and pairs a key ID
// in one staged file with a secret in another.
func ScanStaged(ctx context.Context, opts Options, path string, maxSize int64, rep source.Reporter) (*Result, error) {
	repo, err := source.OpenRepo(path)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	var files []source.StagedFile
	if source.HasGit() {
		files, err = repo.NativeStaged(ctx)
	} else {
		files, err = repo.Staged()
	}
	if err != nil {
		return nil, err
	}
	if maxSize <= 0 {
		maxSize = source.DefaultMaxFileSize
	}
	res := &Result{}
	coll := newCollector(opts)
	set := source.ChangeSet{}
	for _, f := range files {
		set.Changes = append(set.Changes, source.Change{Path: f.Path, Blob: f.Blob})
	}
	if err := scanChanges(ctx, opts, source.Changes{Repo: repo, Sets: []source.ChangeSet{set}, MaxSize: maxSize, AsFiles: true, ArchiveDepth: opts.FS.ArchiveDepth, ArchiveMaxSize: opts.FS.ArchiveMaxSize, SkipBinaries: opts.FS.SkipBinaries}, rep, res, coll); err != nil && ctx.Err() == nil {
		return nil, err
	}
	coll.finish(res)
	return res, ctx.Err()
}
