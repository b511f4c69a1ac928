package engine

import (
	"errors"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
)

// added is a blob added at a path: a file of a commit's changes, or of the
// index.
type added struct {
	path string
	blob plumbing.Hash
}

// changeScanner is the one loop for blobs added together — each commit of a
// range, or the index against HEAD: each blob read once (size checked from
// its header first), decoded, matched and collected, and a key ID alone in
// one blob paired with a secret in another blob of the same set.
type changeScanner struct {
	opts    Options
	repo    *source.Repo
	maxSize int64
	rep     source.Reporter
	res     *Result
	coll    *collector
	seen    map[plumbing.Hash]bool
	// asFiles counts the blobs as files and reports binary ones, as the
	// staged hook does; otherwise they count as blobs of a history.
	asFiles bool
}

func newChangeScanner(opts Options, repo *source.Repo, maxSize int64, rep source.Reporter, res *Result, coll *collector) *changeScanner {
	if maxSize <= 0 {
		maxSize = source.DefaultMaxFileSize
	}
	return &changeScanner{opts: opts, repo: repo, maxSize: maxSize, rep: rep, res: res, coll: coll, seen: map[plumbing.Hash]bool{}}
}

// scan scans the set; stamp adds what the set knows (commit, author, date)
// to each match.
func (s *changeScanner) scan(set []added, stamp func(*finding.Match)) {
	texts := make([][]byte, len(set))
	var lone []finding.Match
	for i, a := range set {
		if s.seen[a.blob] {
			continue // scanned with an earlier set
		}
		s.seen[a.blob] = true
		text := s.read(a, true)
		if text == nil {
			continue
		}
		texts[i] = text
		for _, m := range Matches(s.opts.Matcher, source.Whole(text, source.Provenance{Path: a.path})) {
			m.Location.Blob = a.blob.String()
			stamp(&m)
			if m.Secret.IsZero() {
				lone = append(lone, m)
				continue
			}
			s.coll.Add(m)
		}
	}
	for _, m := range lone {
		pairFrom(s.opts.Matcher, &m, set, func(i int) []byte {
			if texts[i] == nil && s.seen[set[i].blob] {
				texts[i] = s.read(set[i], false) // read for an earlier set
			}
			return texts[i]
		})
		s.coll.Add(m)
	}
}

// read returns a blob's text, or nil when it is too large, binary or
// unreadable; count says whether this read scans it (counted, reported).
func (s *changeScanner) read(a added, count bool) []byte {
	data, err := s.repo.Blob(a.blob, s.maxSize)
	var tooBig *source.BlobTooLargeError
	switch {
	case errors.As(err, &tooBig):
		if count {
			s.rep.Skipped(a.path, tooBig.Error())
		}
		return nil
	case err != nil:
		if count {
			s.rep.Failed(err)
		}
		return nil
	}
	text, ok := source.Text(data)
	switch {
	case !ok && count && s.asFiles:
		s.rep.Skipped(a.path, "binary")
	case !ok && count:
		s.res.BinaryBlobs++
	case count && s.asFiles:
		s.res.Files++
		s.res.Bytes += int64(len(text))
	case count:
		s.res.Blobs++
		s.res.Bytes += int64(len(text))
	}
	if !ok {
		return nil
	}
	return text
}

// pairFrom gives a lone key ID m the first secret found in another blob of
// its set (text(i) is blob i's text, nil when it has none).
func pairFrom(matcher *detect.Matcher, m *finding.Match, set []added, text func(i int) []byte) {
	r := matcher.Rule(m.Rule)
	if r == nil || r.Secret == nil {
		return
	}
	for i, a := range set {
		if a.path == m.Location.File || a.blob.String() == m.Location.Blob {
			continue
		}
		t := text(i)
		if t == nil {
			continue
		}
		if secs := matcher.Secrets(r, t); len(secs) > 0 {
			m.Secret = secs[0].Secret
			for _, s := range secs[1:min(len(secs), r.MaxPairs)] {
				m.Alternates = append(m.Alternates, s.Secret)
			}
			m.Location.SecretFile = a.path
			return
		}
	}
}
