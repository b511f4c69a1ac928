package engine

import (
	"container/heap"
	"context"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
)

// ScanRange scans only what B adds over A (spec "A..B"): the blobs that the
// commits reachable from B but not from A add, and their messages. Its cost
// grows with the range, not with the history.
func ScanRange(ctx context.Context, opts Options, path, spec string, gopts GitOptions, rep source.Reporter) (*Result, error) {
	from, to, ok := strings.Cut(spec, "..")
	if !ok || to == "" {
		return nil, fmt.Errorf("range %q: want A..B", spec)
	}
	repo, err := source.OpenRepo(path)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	return ScanRevs(ctx, opts, repo, from, to, gopts, rep)
}

// ScanRevs is ScanRange on an open repository, with the range's two ends
// apart: what to adds over from ("" from: to's whole history).
func ScanRevs(ctx context.Context, opts Options, repo *source.Repo, from, to string, gopts GitOptions, rep source.Reporter) (*Result, error) {
	toHash, err := resolve(repo, to)
	if err != nil {
		return nil, err
	}
	var fromHash plumbing.Hash
	if from != "" {
		if fromHash, err = resolve(repo, from); err != nil {
			return nil, err
		}
	}
	var froms []plumbing.Hash
	if !fromHash.IsZero() {
		froms = append(froms, fromHash)
	}
	commits, err := rangeCommits(repo, froms, []plumbing.Hash{toHash})
	if err != nil {
		return nil, err
	}
	return scanCommits(ctx, opts, repo, commits, gopts, rep)
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
	var froms, tos []plumbing.Hash
	for _, s := range seen {
		h := plumbing.NewHash(s)
		if _, err := repo.R.CommitObject(h); err == nil {
			froms = append(froms, h)
		}
	}
	tipSet := map[plumbing.Hash]bool{}
	refs, err := repo.R.References()
	if err != nil {
		return nil, nil, fmt.Errorf("list references: %w", err)
	}
	_ = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference {
			return nil
		}
		h := ref.Hash()
		if t, err := repo.R.TagObject(h); err == nil {
			h = t.Target
		}
		if _, err := repo.R.CommitObject(h); err == nil && !tipSet[h] {
			tipSet[h] = true
			tos = append(tos, h)
		}
		return nil
	})
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
	commits, err := rangeCommits(repo, froms, tos)
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
	cs := newChangeScanner(opts, repo, gopts.MaxBlobSize, rep, res, coll)
	// Oldest first, so that a blob is attributed to the first commit of the
	// range that added it.
	for i := len(commits) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			coll.finish(res)
			return res, err
		}
		c := commits[i]
		stamp := func(m *finding.Match) {
			m.Location.Commit, m.Location.Author, m.Location.Date = c.Hash.String(), c.Author, date(c.When)
		}
		for _, m := range Matches(opts.Matcher, source.Whole([]byte(c.Message), source.Provenance{Path: commitMessage})) {
			stamp(&m)
			coll.Add(m)
		}
		var parentTree plumbing.Hash
		if len(c.Parents) > 0 {
			if pc, err := repo.R.CommitObject(c.Parents[0]); err == nil {
				parentTree = pc.TreeHash
			} else {
				rep.Failed(fmt.Errorf("commit %s: parent %s: %w", c.Hash, c.Parents[0], err))
			}
		}
		paths, blobs, err := repo.Changes(c, parentTree)
		if err != nil {
			rep.Failed(err)
			continue
		}
		set := make([]added, len(blobs))
		for j, h := range blobs {
			set[j] = added{path: paths[j].Path, blob: h}
		}
		cs.scan(set, stamp)
	}
	coll.finish(res)
	return res, nil
}

// resolve turns a revision (a hash, a branch, a tag, HEAD, HEAD~2 …) into a
// commit.
func resolve(repo *source.Repo, rev string) (plumbing.Hash, error) {
	h, err := repo.R.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %q: %w", rev, err)
	}
	c, err := repo.R.CommitObject(*h)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %q: not a commit: %w", rev, err)
	}
	return c.Hash, nil
}

// rangeCommits returns the commits reachable from any of tos but from none
// of froms, newest first, walking both sides at once by committer date (as
// git does for A..B) and stopping when only commits reachable from froms are
// left.
func rangeCommits(repo *source.Repo, froms, tos []plumbing.Hash) ([]*source.Commit, error) {
	const (
		left  = 1 // reachable from from
		right = 2 // reachable from to
	)
	flags := map[plumbing.Hash]int{}
	q := &commitQueue{}
	push := func(h plumbing.Hash, f int) error {
		if flags[h]&f == f {
			return nil
		}
		c, err := repo.R.CommitObject(h)
		if err != nil {
			return fmt.Errorf("read commit %s: %w", h, err)
		}
		flags[h] |= f
		heap.Push(q, queued{c: c, flags: f})
		return nil
	}
	for _, to := range tos {
		if err := push(to, right); err != nil {
			return nil, err
		}
	}
	for _, from := range froms {
		if err := push(from, left); err != nil {
			return nil, err
		}
	}
	var out []*source.Commit
	emitted := map[plumbing.Hash]bool{}
	for q.Len() > 0 && !q.allLeft(flags) {
		x := heap.Pop(q).(queued)
		f := flags[x.c.Hash]
		if f == right && !emitted[x.c.Hash] {
			emitted[x.c.Hash] = true
			out = append(out, &source.Commit{Hash: x.c.Hash, Tree: x.c.TreeHash, Parents: x.c.ParentHashes,
				Author: x.c.Author.Name + " <" + x.c.Author.Email + ">", When: x.c.Committer.When, Message: x.c.Message})
		}
		for _, p := range x.c.ParentHashes {
			if err := push(p, f); err != nil {
				if f&left != 0 {
					continue // a shallow or damaged left side only widens the range
				}
				return out, err
			}
		}
	}
	// A commit emitted before its left flag arrived (clock skew) is in
	// both: drop it.
	kept := out[:0]
	for _, c := range out {
		if flags[c.Hash]&left == 0 {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

type queued struct {
	c     *object.Commit
	flags int
}

type commitQueue []queued

func (q commitQueue) Len() int           { return len(q) }
func (q commitQueue) Less(i, j int) bool { return q[i].c.Committer.When.After(q[j].c.Committer.When) }
func (q commitQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)        { *q = append(*q, x.(queued)) }
func (q *commitQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// allLeft reports whether every queued commit is reachable from the left
// side, so that nothing further back can be in the range.
func (q commitQueue) allLeft(flags map[plumbing.Hash]int) bool {
	for _, x := range q {
		if flags[x.c.Hash]&1 == 0 {
			return false
		}
	}
	return true
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
	cs := newChangeScanner(opts, repo, maxSize, rep, res, coll)
	cs.asFiles = true
	set := make([]added, len(files))
	for i, f := range files {
		set[i] = added{path: f.Path, blob: f.Blob}
	}
	if ctx.Err() == nil {
		cs.scan(set, func(*finding.Match) {})
	}
	coll.finish(res)
	return res, ctx.Err()
}
