package engine

import (
	"context"
	"errors"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
)

// scanChanges runs change sets (commits of a range, or the index) through
// the one loop, then pairs each key ID found alone with a secret in
// another blob of its set.
func scanChanges(ctx context.Context, opts Options, src source.Changes, rep source.Reporter, res *Result, coll *collector) error {
	var stats source.Stats
	src.Stats = &stats
	var lone []finding.Match
	err := scan(ctx, opts, src, rep, func(ms []finding.Match) {
		for _, m := range ms {
			if m.Secret.IsZero() && m.Location.File != source.CommitMessage {
				lone = append(lone, m)
				continue
			}
			coll.Add(m)
		}
	})
	res.Files += stats.Files.Load()
	res.Blobs += stats.Blobs.Load()
	res.BinaryBlobs += stats.Binary.Load()
	res.Bytes += stats.Bytes.Load()
	setOf := map[string]int{} // commit → its set (the index: "")
	for i, set := range src.Sets {
		setOf[set.Prov.Commit] = i
	}
	for _, m := range lone {
		if i, ok := setOf[m.Location.Commit]; ok {
			pairFrom(opts.Matcher, &m, src.Sets[i].Changes, blobText(src.Repo, src.MaxSize, rep))
		}
		coll.Add(m)
	}
	return err
}

// blobText reads a blob's text for pairing, nil when it has none (too
// large, binary, unreadable: reported as it was when scanned).
func blobText(repo *source.Repo, maxSize int64, rep source.Reporter) func(source.Change) []byte {
	if maxSize <= 0 {
		maxSize = source.DefaultMaxFileSize
	}
	return func(c source.Change) []byte {
		data, err := repo.Blob(c.Blob, maxSize)
		if errors.As(err, new(*source.BlobTooLargeError)) {
			return nil
		}
		if err != nil {
			rep.Failed(err)
			return nil
		}
		text, ok := source.Text(data)
		if !ok {
			return nil
		}
		return text
	}
}

// pairFrom gives a lone key ID m the first secret a naming keyword
// introduces in another blob of its set that holds no key ID of its own (a
// secret beside its own ID, even an allowlisted one, is that ID's); other
// secrets there are only tried (alternates).
func pairFrom(matcher *detect.Matcher, m *finding.Match, set []source.Change, text func(source.Change) []byte) {
	r := matcher.Rule(m.Rule)
	if r == nil || r.Secret == nil {
		return
	}
	for _, c := range set {
		if c.Path == m.Location.File || c.Blob.String() == m.Location.Blob {
			continue
		}
		t := text(c)
		if t == nil {
			continue
		}
		named, others := matcher.Secrets(r, t)
		if len(named) == 0 && len(others) == 0 {
			continue
		}
		ownIDs := len(named) > 0 && matcher.HoldsKeyID(t)
		if len(named) > 0 && !ownIDs {
			m.Secret = named[0].Secret
			for _, s := range named[1:min(len(named), r.MaxPairs)] {
				m.Alternates = append(m.Alternates, s.Secret)
			}
			m.Location.SecretFile = c.Path
			return
		}
		// Never across files without a name for the secret, nor to a
		// file with IDs of its own: those are only tried, and the ID
		// stays unpaired.
		if ownIDs {
			others = append(named, others...)
		}
		for _, s := range others {
			if len(m.Alternates) >= r.MaxPairs {
				break
			}
			m.Alternates = append(m.Alternates, s.Secret)
		}
	}
}
