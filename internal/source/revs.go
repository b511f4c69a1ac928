package source

import (
	"container/heap"
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Tips returns the commits the repository's references point at (tags
// peeled), each once.
func (repo *Repo) Tips() ([]plumbing.Hash, error) {
	refs, err := repo.R.References()
	if err != nil {
		return nil, fmt.Errorf("list references: %w", err)
	}
	seen := map[plumbing.Hash]bool{}
	var tips []plumbing.Hash
	_ = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() != plumbing.HashReference {
			return nil
		}
		h, err := Peel(repo.R, ref.Hash())
		if err == nil && !seen[h] {
			seen[h] = true
			tips = append(tips, h)
		}
		return nil
	})
	return tips, nil
}

// TreeOf returns a commit's tree.
func (repo *Repo) TreeOf(commit plumbing.Hash) (plumbing.Hash, error) {
	c, err := repo.R.CommitObject(commit)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return c.TreeHash, nil
}

// Resolve turns a revision (a hash, a branch, a tag, HEAD, HEAD~2 …) into a
// commit. A hash that names an annotated tag (what GitHub's push event
// gives as "after" for a tag push) is peeled to the commit it tags.
func (repo *Repo) Resolve(rev string) (plumbing.Hash, error) {
	var h plumbing.Hash
	if plumbing.IsHash(rev) {
		// go-git's ResolveRevision refuses a tag object's hash.
		h = plumbing.NewHash(rev)
	} else {
		r, err := repo.R.ResolveRevision(plumbing.Revision(rev))
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("resolve %q: %w", rev, err)
		}
		h = *r
	}
	c, err := Peel(repo.R, h)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %q: %w", rev, err)
	}
	return c, nil
}

// maxTagDepth bounds a chain of tags (a tag of a tag …) that Peel follows.
const maxTagDepth = 16

// Peel follows annotated tags from h, tags of tags included, to the commit
// they name; a commit is itself. A tag of a tree or a blob is an error, as
// is a chain longer than maxTagDepth.
func Peel(r *git.Repository, h plumbing.Hash) (plumbing.Hash, error) {
	for range maxTagDepth {
		if _, err := r.CommitObject(h); err == nil {
			return h, nil
		}
		t, err := r.TagObject(h)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("%s is not a commit, nor a tag of one: %w", h, err)
		}
		if t.TargetType != plumbing.CommitObject && t.TargetType != plumbing.TagObject {
			return plumbing.ZeroHash, fmt.Errorf("tag %s names a %s, not a commit", h, t.TargetType)
		}
		h = t.Target
	}
	return plumbing.ZeroHash, fmt.Errorf("%s: a chain of more than %d tags", h, maxTagDepth)
}

// MergeBases returns the best common ancestors of two commits, as git
// merge-base --all does.
func (repo *Repo) MergeBases(a, b plumbing.Hash) ([]plumbing.Hash, error) {
	ca, err := repo.R.CommitObject(a)
	if err != nil {
		return nil, fmt.Errorf("merge base: %w", err)
	}
	cb, err := repo.R.CommitObject(b)
	if err != nil {
		return nil, fmt.Errorf("merge base: %w", err)
	}
	bases, err := ca.MergeBase(cb)
	if err != nil {
		return nil, fmt.Errorf("merge base of %s and %s: %w", a, b, err)
	}
	var out []plumbing.Hash
	for _, c := range bases {
		out = append(out, c.Hash)
	}
	return out, nil
}

// RangeCommits returns the commits reachable from any of tos but from none
// of froms, newest first, walking both sides at once by committer date (as
// git does for A..B) and stopping when only commits reachable from froms are
// left.
func (repo *Repo) RangeCommits(froms, tos []plumbing.Hash) ([]*Commit, error) {
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
	var out []*Commit
	emitted := map[plumbing.Hash]bool{}
	for q.Len() > 0 && !q.allLeft(flags) {
		x := heap.Pop(q).(queued)
		f := flags[x.c.Hash]
		if f == right && !emitted[x.c.Hash] {
			emitted[x.c.Hash] = true
			out = append(out, &Commit{Hash: x.c.Hash, Tree: x.c.TreeHash, Parents: x.c.ParentHashes,
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
