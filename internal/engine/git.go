package engine

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
)

// GitOptions configures a scan of git history.
type GitOptions struct {
	// ReachableOnly leaves out objects that no reference leads to.
	ReachableOnly bool
	// MaxBlobSize skips larger blobs (reported); 0 means the file default.
	MaxBlobSize int64
	// GoGitOnly reads objects with go-git even when git is installed. By
	// default, objects are read by git cat-file processes in parallel
	// (source.NativeBlobs), which is three times faster on a large history.
	GoGitOnly bool
	// Stats, when set, receives a whole-history scan's counts as it goes
	// (blobs and bytes read), for a progress display.
	Stats *source.Stats
}

func (g GitOptions) native() bool { return !g.GoGitOnly && source.HasGit() }

// Labels used as the file of findings in messages rather than files.
const (
	commitMessage = source.CommitMessage
	tagMessage    = "(tag message)"
	danglingBlob  = "(unreachable blob)"
)

// blobHits maps a blob to the matches found in it (locations hold lines and
// columns only; the path and commit come from attribution).
type blobHits map[plumbing.Hash][]finding.Match

// ScanHistory scans a repository's whole history: every blob in its object
// store once (reachable or not), every commit and tag message, then
// attributes each blob with a finding to the commit that added it.
func ScanHistory(ctx context.Context, opts Options, path string, gopts GitOptions, rep source.Reporter) (*Result, error) {
	repo, err := source.OpenRepo(path)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	maxSize := gopts.MaxBlobSize
	if maxSize <= 0 {
		maxSize = source.DefaultMaxFileSize
	}
	res := &Result{}
	var own source.Stats
	stats := &own
	if gopts.Stats != nil {
		stats = gopts.Stats
	}
	// Archives opened by default (small ones, FSOptions.ArchiveMaxSize)
	// stay closed in a whole history: every version of every fixture zip
	// is a blob, and opening them cost a history scan 4 to 5% (localstack,
	// 34k commits) for nothing found. A depth given opens them.
	depth := opts.FS.ArchiveDepth
	if opts.FS.ArchiveMaxSize > 0 {
		depth = 0
	}
	src := &source.History{Repo: repo, Native: gopts.native(), Procs: nativeProcs(), Workers: opts.workers(), MaxSize: maxSize,
		ArchiveDepth: depth, ArchiveMaxSize: opts.FS.ArchiveMaxSize, SkipBinaries: opts.FS.SkipBinaries, Stats: stats}
	hits := blobHits{}
	err = scan(ctx, opts, src, rep, func(ms []finding.Match) {
		h := plumbing.NewHash(ms[0].Location.Blob)
		hits[h] = append(hits[h], ms...) // an archive's members come one by one
	})
	res.Blobs, res.Bytes, res.BinaryBlobs = stats.Blobs.Load(), stats.Bytes.Load(), stats.Binary.Load()
	graph := src.Graph
	if err != nil || graph == nil {
		if err == nil {
			err = fmt.Errorf("scan %s: the commit graph could not be read", path)
		}
		return res, err
	}
	for _, p := range repo.Submodules() {
		rep.Skipped(p, "submodule: not followed (scan its repository on its own)")
	}
	if len(graph.Shallow) > 0 {
		rep.Skipped(path, fmt.Sprintf("shallow clone: history before %d commit(s) is not in the repository", len(graph.Shallow)))
	}
	reportMissing(ctx, repo, path, rep)

	coll := newCollector(opts)
	// Commit and tag messages.
	for _, c := range graph.Commits {
		unreachable := !graph.Reachable[c.Hash]
		if unreachable && gopts.ReachableOnly {
			continue
		}
		for _, m := range Matches(opts.Matcher, source.Whole([]byte(c.Message), source.Provenance{Path: commitMessage}), opts.decodeDepth()) {
			m.Location.Commit, m.Location.Author, m.Location.Date = c.Hash.String(), c.Author, date(c.When)
			m.Location.Unreachable = unreachable
			coll.Add(m)
		}
	}
	for _, t := range repo.Tags(graph, rep) {
		for _, m := range Matches(opts.Matcher, source.Whole([]byte(t.Message), source.Provenance{Path: tagMessage}), opts.decodeDepth()) {
			m.Location.Ref = "refs/tags/" + t.Name
			m.Location.Commit = t.Target.String()
			m.Location.Author = t.Tagger.Name + " <" + t.Tagger.Email + ">"
			m.Location.Date = date(t.Tagger.When)
			coll.Add(m)
		}
	}
	if err := ctx.Err(); err != nil {
		coll.finish(res)
		return res, err
	}

	// Attribution, for the blobs with findings only.
	want := map[plumbing.Hash]bool{}
	for h := range hits {
		want[h] = true
	}
	var intros map[plumbing.Hash][]source.Introduction
	if len(want) > 0 && gopts.native() {
		intros, err = repo.NativeIntroductions(ctx, graph, want, rep)
		if err != nil {
			rep.Failed(err)
			intros = repo.Introductions(graph, want, rep)
		}
	} else if len(want) > 0 {
		intros = repo.Introductions(graph, want, rep)
	}
	a := attributor{repo: repo, graph: graph, m: opts.Matcher, rep: rep, maxSize: maxSize,
		refs: map[plumbing.Hash][]string{}, changes: map[plumbing.Hash]commitChanges{}}
	for h, ms := range hits {
		loc, intro, ok := a.locate(h, intros[h])
		if !ok {
			continue
		}
		if loc.Unreachable && gopts.ReachableOnly {
			continue
		}
		for _, m := range ms {
			l := loc
			l.Line, l.Column, l.SecretLine = m.Location.Line, m.Location.Column, m.Location.SecretLine
			l.Encoding, l.Binary = m.Location.Encoding, m.Location.Binary
			if strings.HasPrefix(m.Location.File, "!") {
				l.File += m.Location.File // a member of the archive at loc.File
			}
			m.Location = l
			if m.Secret.IsZero() && intro != nil {
				a.pairAcross(&m, intro, h)
			}
			coll.Add(m)
		}
	}
	coll.finish(res)
	res.Commits = int64(len(graph.Commits))
	return res, nil
}

func date(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// attributor turns a blob's introductions into a location, and pairs a lone
// key ID with a secret from another file of the same commit.
type attributor struct {
	repo    *source.Repo
	graph   *source.Graph
	m       *detect.Matcher
	rep     source.Reporter
	maxSize int64
	refs    map[plumbing.Hash][]string
	changes map[plumbing.Hash]commitChanges
	index   map[plumbing.Hash][]string // read when a blob has no commit
	indexed bool
}

// locate picks the earliest introduction from a reachable commit, else the
// earliest from an unreachable one, else names the blob alone.
func (a *attributor) locate(h plumbing.Hash, intros []source.Introduction) (finding.Location, *source.Introduction, bool) {
	// The earliest introduction, preferring one a reference leads to, and
	// one at a path the allowlist does not name (the same blob at two
	// paths is a finding wherever one of them is not allowlisted).
	var best *source.Introduction
	bestRank := 4
	for i := range intros {
		rank := 0
		if !a.graph.Reachable[intros[i].Commit.Hash] {
			rank++
		}
		if a.m.PathAllowed(intros[i].Path) {
			rank += 2
		}
		if rank < bestRank {
			best, bestRank = &intros[i], rank
		}
	}
	if best == nil {
		// No commit has it: staged (in the index), or dangling.
		if !a.indexed {
			a.index, a.indexed = a.repo.IndexPaths(), true
		}
		if paths := a.index[h]; len(paths) > 0 {
			p := paths[0]
			for _, q := range paths {
				if !a.m.PathAllowed(q) {
					p = q
					break
				}
			}
			return finding.Location{File: p, Blob: h.String(), Staged: true}, nil, true
		}
		return finding.Location{File: danglingBlob, Blob: h.String(), Unreachable: true}, nil, true
	}
	c := best.Commit
	loc := finding.Location{File: best.Path, Commit: c.Hash.String(), Author: c.Author, Date: date(c.When),
		Blob: h.String(), Unreachable: !a.graph.Reachable[c.Hash]}
	refs, ok := a.refs[c.Hash]
	if !ok {
		refs = a.graph.RefsContaining(c.Hash)
		a.refs[c.Hash] = refs
	}
	loc.Refs = refs
	loc.Ref = preferredRef(refs)
	return loc, best, true
}

// preferredRef picks a branch if any, else the first reference.
func preferredRef(refs []string) string {
	for _, r := range refs {
		if strings.HasPrefix(r, "refs/heads/") {
			return r
		}
	}
	if len(refs) > 0 {
		return refs[0]
	}
	return ""
}

// commitChanges are the blobs a commit adds, with their paths.
type commitChanges struct {
	paths []source.Introduction
	blobs []plumbing.Hash
}

func (a *attributor) changesOf(c *source.Commit) commitChanges {
	if ch, ok := a.changes[c.Hash]; ok {
		return ch
	}
	var parent plumbing.Hash
	if len(c.Parents) > 0 {
		if pc, ok := a.graph.Commits[c.Parents[0]]; ok {
			parent = pc.Tree
		}
	}
	paths, blobs, err := a.repo.Changes(c, parent)
	if err != nil {
		a.rep.Failed(err)
	}
	ch := commitChanges{paths, blobs}
	a.changes[c.Hash] = ch
	return ch
}

// pairAcross looks for m's secret in the other files its commit added.
func (a *attributor) pairAcross(m *finding.Match, intro *source.Introduction, self plumbing.Hash) {
	ch := a.changesOf(intro.Commit)
	set := make([]source.Change, len(ch.blobs))
	for i, h := range ch.blobs {
		set[i] = source.Change{Path: ch.paths[i].Path, Blob: h}
	}
	m.Location.Blob = self.String()
	pairFrom(a.m, m, set, blobText(a.repo, a.maxSize, a.rep))
}

// nativeProcs is how many git cat-file processes read blobs at once: one per
// core (a third process on two cores gained nothing measurable).
func nativeProcs() int { return runtime.GOMAXPROCS(0) }

// reportMissing says what a partial clone's history names but does not
// hold: one failure with the count (a scan that could not read everything
// is not clean), each absent object as skipped (listed with -v). Nothing is
// fetched.
func reportMissing(ctx context.Context, repo *source.Repo, path string, rep source.Reporter) {
	if !repo.PartialClone() {
		return
	}
	n, listed, err := repo.MissingObjects(ctx)
	if err != nil {
		rep.Failed(fmt.Errorf("%s is a partial clone, and what it lacks could not be counted: %w", path, err))
		return
	}
	if n == 0 {
		return
	}
	for _, h := range listed {
		rep.Skipped("object "+h, "absent from this partial clone")
	}
	rep.Failed(fmt.Errorf("%s is a partial clone: %d object(s) its history names are not here, and were not scanned "+
		"(git fetch --refetch, or a full clone, brings them; -v lists them)", path, n))
}
