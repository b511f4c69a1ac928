// Package engine joins the stages for one run: it takes chunks from a source,
// runs the detector on them with bounded concurrency, and collects the
// findings. It holds no state between runs and does no output of its own.
package engine

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"strings"

	"github.com/sourcegraph/conc"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
)

// Options configures a run.
type Options struct {
	Matcher *detect.Matcher
	// Concurrency is how many files are read and scanned at once; 0 means
	// twice GOMAXPROCS, as reading overlaps with scanning.
	Concurrency int
	FS          source.FSOptions
	// DecodeDepth is how many layers of encoding (base64, percent) are
	// decoded: 0 means DefaultDecodeDepth, a negative number none.
	DecodeDepth int
	// Stats, when set, receives a scan of files' counts as it goes (files
	// and bytes read), for a progress display.
	Stats *source.Stats
}

// DefaultDecodeDepth decodes base64 inside base64 (a docker config.json
// inside a Kubernetes Secret), and no deeper.
const DefaultDecodeDepth = 2

func (o Options) decodeDepth() int {
	switch {
	case o.DecodeDepth < 0:
		return 0
	case o.DecodeDepth == 0:
		return DefaultDecodeDepth
	}
	return o.DecodeDepth
}

func (o Options) workers() int {
	if o.Concurrency > 0 {
		return o.Concurrency
	}
	return 2 * runtime.GOMAXPROCS(0)
}

// Result is what a run found and read.
type Result struct {
	Findings     []*finding.Finding
	Files        int64 // files scanned
	Bytes        int64 // bytes scanned
	AllowedPaths int64 // files left out by a path allowlist
	Blobs        int64 // git: blobs scanned
	BinaryBlobs  int64 // git: blobs skipped as binary
	Commits      int64 // git: commits in the repository or range
}

// scan is the engine's one loop, for every source: each chunk the source
// yields goes through the detector, on the source's own goroutines, and its
// matches to sink, from one goroutine (sink needs no lock).
func scan(ctx context.Context, opts Options, src source.Source, rep source.Reporter, sink func([]finding.Match)) error {
	ch := make(chan []finding.Match, opts.workers())
	var collector conc.WaitGroup
	collector.Go(func() {
		for ms := range ch {
			sink(ms)
		}
	})
	err := src.Each(ctx, rep, func(c source.Chunk) {
		if ms := Matches(opts.Matcher, c, opts.decodeDepth()); len(ms) > 0 {
			ch <- ms
		}
	})
	close(ch)
	collector.Wait()
	return err
}

// ScanPaths scans the files and directories under roots. Files that cannot be
// read go to rep and the run goes on. On cancellation it returns what it found
// so far with ctx's error.
func ScanPaths(ctx context.Context, opts Options, roots []string, rep source.Reporter) (*Result, error) {
	// Allowlisted paths are matched relative to the repository that holds
	// each root (or the root itself), whatever way the root was typed, and
	// left out before they are read.
	bases := map[string]rootBase{}
	for _, r := range roots {
		bases[r] = newRootBase(r)
	}
	stats := opts.Stats
	if stats == nil {
		stats = &source.Stats{}
	}
	// An archive's copies are opened once; its members' matches are kept
	// to be reported again under each copy's path.
	copies := &source.ArchiveCopies{}
	src := source.Files{Roots: roots, Options: opts.FS, Workers: opts.workers(), Stats: stats, Copies: copies,
		Skip: func(f source.File) bool { return opts.Matcher.PathAllowed(bases[f.Root].rel(f.Path)) }}
	coll := finding.NewCollector() // paths were matched before reading
	var members []finding.Match
	err := scan(ctx, opts, src, rep, func(ms []finding.Match) {
		for _, m := range ms {
			coll.Add(m)
			if strings.Contains(m.Location.File, "!") {
				members = append(members, m)
			}
		}
	})
	for _, c := range copies.Copies() {
		for _, n := range copies.Notes(c.Of) {
			if p, ok := c.Rename(n.Path); ok {
				rep.Skipped(p, n.Reason)
			}
		}
		for _, m := range members {
			if p, ok := c.Rename(m.Location.File); ok {
				m.Location.File = p
				coll.Add(m)
			}
		}
	}
	return &Result{Findings: coll.Findings(), Files: stats.Files.Load(), Bytes: stats.Bytes.Load(), AllowedPaths: stats.Allowed.Load()}, err
}

// ScanReader scans everything r yields, naming it name in findings (standard
// input is "-").
func ScanReader(ctx context.Context, opts Options, r io.Reader, name string, rep source.Reporter) (*Result, error) {
	var stats source.Stats
	coll := finding.NewCollector()
	err := scan(ctx, opts, source.Stream{R: r, Name: name, Options: opts.FS, Stats: &stats}, rep, func(ms []finding.Match) {
		for _, m := range ms {
			coll.Add(m)
		}
	})
	return &Result{Findings: coll.Findings(), Files: stats.Files.Load(), Bytes: stats.Bytes.Load()}, err
}

// Matches runs the detector on one chunk and locates its candidates, and
// on what the chunk's encoded text decodes to, depth layers deep.
// It may be called concurrently.
func Matches(m *detect.Matcher, c source.Chunk, depth int) []finding.Match {
	// Configuration (by name or by its first line) gets the thorough
	// treatment: every base64 run decoded, named secrets without a key ID.
	config := !c.Prov.Binary && len(c.Data) <= decodeAllMax && (configLike(c.Prov.Path) || c.AtStart && looksConfig(c.Data))
	out := plainMatches(m, c, config)
	// A binary's strings are scanned as they are, and its UTF-16LE
	// strings where a key ID stands in that form; decoding is for text.
	if depth > 0 && !c.Prov.Binary {
		out = append(out, decodedMatches(m, c, depth, config)...)
	}
	return append(out, wideMatches(m, c)...)
}

// plainMatches runs the detector on the chunk's text as it is; with lone,
// a chunk without key IDs is searched for secrets named as AWS secrets.
func plainMatches(m *detect.Matcher, c source.Chunk, lone bool) []finding.Match {
	cands, anyID := m.ScanIDs(detect.Chunk{Data: c.Data, AtStart: c.AtStart, AtEnd: c.AtEnd})
	if len(cands) == 0 {
		// Not where an allowlisted ID stands (a placeholder, the
		// documentation's example): its secret is as fake.
		if lone && !anyID {
			return loneMatches(m, c)
		}
		return nil
	}
	out := make([]finding.Match, 0, len(cands))
	lines := newLiner(c.Data, c.Line, c.Column)
	for _, cand := range cands {
		if !c.Owns(cand.KeySpan.Start) {
			continue
		}
		line, col := lines.at(cand.KeySpan.Start)
		loc := finding.Location{File: c.Prov.Path, Line: line, Column: col,
			Commit: c.Prov.Commit, Author: c.Prov.Author, Date: c.Prov.Date, Ref: c.Prov.Ref, Binary: c.Prov.Binary}
		if !c.Prov.Blob.IsZero() {
			loc.Blob = c.Prov.Blob.String()
		}
		if !cand.Secret.IsZero() {
			loc.SecretLine, _ = lines.at(cand.SecretSpan.Start)
		}
		if cand.Joined {
			loc.Encoding = "concatenation"
		}
		m := finding.Match{Rule: cand.Rule.ID, Severity: severity(cand), KeyID: cand.KeyID,
			AccountID: cand.AccountID, Temporary: cand.Temporary, Secret: cand.Secret,
			SessionToken: cand.SessionToken, Location: loc}
		for _, a := range cand.Alternates {
			m.Alternates = append(m.Alternates, a.Secret)
		}
		out = append(out, m)
	}
	return out
}

// loneMatches reports the secrets named as AWS secret access keys in a
// chunk without key IDs: "secret without key ID", medium.
func loneMatches(m *detect.Matcher, c source.Chunk) []finding.Match {
	var out []finding.Match
	lines := newLiner(c.Data, c.Line, c.Column)
	for _, s := range m.LoneSecrets(c.Data) {
		if !c.Owns(s.Span.Start) {
			continue
		}
		line, col := lines.at(s.Span.Start)
		loc := finding.Location{File: c.Prov.Path, Line: line, Column: col, SecretLine: line,
			Commit: c.Prov.Commit, Author: c.Prov.Author, Date: c.Prov.Date, Ref: c.Prov.Ref}
		if !c.Prov.Blob.IsZero() {
			loc.Blob = c.Prov.Blob.String()
		}
		out = append(out, finding.Match{Rule: s.Rule.ID, Severity: "medium", Secret: s.Secret, Location: loc})
	}
	return out
}

// severity says how sure the detector is, before any verification (a key
// verified live is ranked by what it can do, in check):
//   - low: an account no real key is in (000000000000, AWS's documentation
//     account 123456789012); a key ID another scanner's allow comment marks
//     (gitleaks:allow …); a test fixture by its path is made low where
//     the path is known (finding.Collector: history blobs get theirs
//     after the scan);
//   - one level lower than the rule's: an ID put together from string
//     literals (an evasion, or a test that builds a key on purpose), or a
//     secret paired by proximity alone, with no keyword naming it;
//   - the rule's (high for AWS keys): a pair a keyword or the structure
//     makes. An ID found alone is lowered once findings are merged.
func severity(c detect.Candidate) string {
	sev := c.Rule.Severity
	switch {
	case fakeAccounts[c.AccountID], c.Marked:
		return "low"
	case c.Joined, !c.Secret.IsZero() && c.Weak:
		return lowerSeverity(sev)
	}
	return sev
}

// fakeAccounts hold no real key: an emulator's default account and AWS's
// documentation account (a mock STS answer decodes to them).
var fakeAccounts = map[string]bool{"000000000000": true, "123456789012": true}

func lowerSeverity(sev string) string {
	switch sev {
	case "high":
		return "medium"
	default:
		return "low"
	}
}

// liner turns offsets into 1-based lines and columns, counting newlines
// once from the last offset asked for when offsets come in order. Columns on
// the chunk's first line count from the column the chunk starts at.
type liner struct {
	data      []byte
	firstLine int
	firstCol  int
	off, line int // line holds data[off]
}

func newLiner(data []byte, firstLine, firstCol int) *liner {
	return &liner{data: data, firstLine: firstLine, firstCol: max(1, firstCol), line: firstLine}
}

func (l *liner) at(off int) (line, col int) {
	if off < l.off {
		l.off, l.line = 0, l.firstLine
	}
	l.line += bytes.Count(l.data[l.off:off], []byte("\n"))
	l.off = off
	nl := bytes.LastIndexByte(l.data[:off], '\n')
	if nl < 0 {
		return l.line, l.firstCol + off
	}
	return l.line, off - nl
}
