package detect

import (
	"bytes"
	"cmp"
	"slices"
	"sort"
	"strings"

	"github.com/keyburn/keyburn/rules"
)

// Pairing ranks, for each key ID, the secrets of the chunk by a score (lower
// is better):
//
//	score = gap                                  if a keyword stands just before the secret
//	score = gap × noKeywordFactor + noKeywordPenalty   otherwise
//	      + beforePenalty if the secret comes before the ID
//
// where gap is the number of bytes between the two. Then every ID takes its
// best secret that no other ID has taken, best pairs first (so that a file
// with many ID/secret pairs pairs each ID with its own secret); an ID left
// without one takes its best secret even if shared. The next best become its
// alternates. Only the nearest secrets on each side are considered, so the
// cost stays linear in the number of IDs, and only within a cap
// (withinCap: a few lines without a keyword, a block after one, further
// after a keyword that names the secret). A secret claimed by one ID is not
// another's: an ID whose every candidate is claimed stays unpaired, and
// tries them as alternates only.
//
// A secret across the end of a block ('}' or a blank line) scores
// blockPenalty more: two objects that each name the secret first must not
// cross. A secret in another INI section than the ID ([default] … [prod]), or
// named with another prefix (PROD_AWS_ACCESS_KEY_ID and
// STAGING_AWS_SECRET_ACCESS_KEY; both named with a prefix), scores
// otherPenalty more: it is another credential's.
const (
	noKeywordFactor  = 4
	noKeywordPenalty = 256
	beforePenalty    = 32
	otherPenalty     = 1 << 16
	nearestPerSide   = 8
	// blockPenalty: a block ends between the two (a '}' or a blank
	// line): the secret is likelier another object's. Less than
	// otherPenalty, more than any gap within the block caps (8 KiB).
	blockPenalty = 1 << 15
)

// blockEnds reports whether a block ends between spans a and b: a closing
// brace, or a blank line.
func blockEnds(data []byte, a, b Span) bool {
	lo, hi := min(a.End, b.End), max(a.Start, b.Start)
	if hi <= lo {
		return false
	}
	gap := data[lo:hi]
	return bytes.IndexByte(gap, '}') >= 0 || bytes.Contains(gap, []byte("\n\n")) || bytes.Contains(gap, []byte("\n\r\n"))
}

// sessionKeywords are words that, just before a token, mark it as a session
// token.
var sessionKeywords = []string{"session", "security_token", "token"}

type scored struct {
	id, sec int
	score   int
}

func pair(data []byte, r *rules.Rule, ids []IDMatch, toks []Token) []Candidate {
	out := make([]Candidate, len(ids))
	for i, id := range ids {
		c := Candidate{Rule: r, KeyID: id.Value, KeySpan: id.Span, Joined: id.Joined, Marked: markedByOtherScanner(data, id.Span.Start)}
		if r.AccountDecode {
			c.AccountID, _ = AccountID(id.Value)
		}
		for _, p := range r.TemporaryPrefixes {
			if strings.HasPrefix(id.Value, p) {
				c.Temporary = true
			}
		}
		out[i] = c
	}
	if r.Secret == nil {
		return out
	}
	var secs []Token
	for _, t := range toks {
		if t.Allowed != "" || len(t.Value) != r.SecretLength {
			continue
		}
		if !r.Secret.MatchString(t.Value) {
			continue
		}
		t.Keyword, t.Named = keywordsBefore(data, t.Span, r.SecretKeywords)
		if !looksSecret(t.Value, r.SecretMinEntropy, t.Keyword != "") || !secretShape(data, t) {
			continue
		}
		secs = append(secs, t)
	}
	if len(secs) > 0 {
		assign(data, r, ids, secs, out)
	}
	attachSessionTokens(data, ids, toks, out)
	return out
}

func assign(data []byte, r *rules.Rule, ids []IDMatch, secs []Token, out []Candidate) {
	pairs := make([]scored, 0, len(ids)*2*nearestPerSide)
	sections := sectionStarts(data)
	secPrefix := make([]string, len(secs))
	for j, t := range secs {
		secPrefix[j] = namePrefix(data, t.Span.Start)
	}
	// A name carries a pair past the block only when the text holds one
	// key ID: with several, a far secret may be any one's.
	oneID := true
	for _, id := range ids[1:] {
		oneID = oneID && id.Value == ids[0].Value
	}
	for i, id := range ids {
		idPrefix := namePrefix(data, id.Span.Start)
		// secs is in order of position: take the nearest ones on each side.
		k := sort.Search(len(secs), func(j int) bool { return secs[j].Span.Start >= id.Span.End })
		for j := max(0, k-nearestPerSide); j < min(len(secs), k+nearestPerSide); j++ {
			if !withinCap(data, id.Span, secs[j].Span, secs[j].Keyword != "" || secs[j].Named, secs[j].Named && oneID) ||
				!withinCap(data, id.Span, secs[j].Span, false, false) && ownedElsewhere(data, id.Span, secs[j].Span) {
				continue
			}
			sc := score(id.Span, secs[j])
			if idPrefix != "" && secPrefix[j] != "" && idPrefix != secPrefix[j] || between(sections, id.Span, secs[j].Span) {
				sc += otherPenalty
			}
			if blockEnds(data, id.Span, secs[j].Span) {
				sc += blockPenalty
			}
			pairs = append(pairs, scored{id: i, sec: j, score: sc})
		}
	}
	slices.SortFunc(pairs, func(a, b scored) int {
		return cmp.Or(cmp.Compare(a.score, b.score), cmp.Compare(a.id, b.id), cmp.Compare(a.sec, b.sec))
	})
	primary := make([]int, len(ids))
	for i := range primary {
		primary[i] = -1
	}
	taken := make([]bool, len(secs))
	for _, p := range pairs {
		if primary[p.id] < 0 && !taken[p.sec] {
			primary[p.id], taken[p.sec] = p.sec, true
		}
	}
	// A secret claimed by one ID is not free for another, unless both are
	// the same key ID written twice (AWS_ACCESS_KEY and AWS_ACCESS_KEY_ID).
	for _, p := range pairs {
		if primary[p.id] < 0 && sameIDHolds(ids, primary, p) {
			primary[p.id] = p.sec
		}
	}
	for _, p := range pairs {
		c := &out[p.id]
		s := secs[p.sec]
		switch {
		case p.sec == primary[p.id]:
			c.Secret, c.SecretSpan = newSecret(s.Value), s.Span
			c.Weak = s.Keyword == "" && !s.Named
		case len(c.Alternates) < r.MaxPairs-1:
			c.Alternates = append(c.Alternates, Alternate{Secret: newSecret(s.Value), Span: s.Span})
		}
	}
}

// sameIDHolds reports whether the secret of p is the primary of another
// occurrence of the same key ID.
func sameIDHolds(ids []IDMatch, primary []int, p scored) bool {
	for i, sec := range primary {
		if sec == p.sec && ids[i].Value == ids[p.id].Value {
			return true
		}
	}
	return false
}

// secretShape is the whole-token test: a run that is a slice of a longer
// token, reads as an identifier, or sits in a URL or an ARN is no secret.
// A run a naming keyword introduces (aws_secret_access_key = …) is not
// judged by how it reads.
func secretShape(data []byte, t Token) bool {
	return wholeSecret(data, t.Span) && (t.Named || !readsAsIdentifier(t.Value) && !readsAsPath(t.Value))
}

func score(id Span, t Token) int {
	var gap, pen int
	if t.Span.Start >= id.End {
		gap = t.Span.Start - id.End
	} else {
		gap = max(0, id.Start-t.Span.End)
		pen = beforePenalty
	}
	if t.Keyword != "" {
		return gap + pen
	}
	return gap*noKeywordFactor + noKeywordPenalty + pen
}

// attachSessionTokens gives each temporary key ID the best-scored long token,
// preferring one after a session keyword.
func attachSessionTokens(data []byte, ids []IDMatch, toks []Token, out []Candidate) {
	for i := range out {
		if !out[i].Temporary {
			continue
		}
		best, bestScore := -1, 0
		for j, t := range toks {
			if t.Allowed != "" || len(t.Value) < sessionTokenMinLen {
				continue
			}
			t.Keyword = keywordBefore(data, t.Span, sessionKeywords)
			s := score(ids[i].Span, t)
			if best < 0 || s < bestScore {
				best, bestScore = j, s
			}
		}
		if best >= 0 {
			// A token is base64: keep its '=' padding, which ends the run.
			t := toks[best]
			end := t.Span.End
			for end < len(data) && end-t.Span.End < 3 && data[end] == '=' {
				end++
			}
			out[i].SessionToken = newSecret(t.Value + string(data[t.Span.End:end]))
			out[i].TokenSpan = Span{t.Span.Start, end}
		}
	}
}

// sectionStarts returns where the INI section headers of data begin (a
// line that starts with '[' and ends with ']').
func sectionStarts(data []byte) []int {
	var out []int
	for off := 0; off < len(data); {
		i := bytes.IndexByte(data[off:], '[')
		if i < 0 {
			break
		}
		i += off
		off = i + 1
		if i > 0 && data[i-1] != '\n' {
			continue
		}
		end := bytes.IndexByte(data[i:min(len(data), i+256)], '\n')
		if end < 0 {
			end = min(len(data), i+256) - i
		}
		if line := bytes.TrimRight(data[i:i+end], " \t\r"); len(line) > 2 && line[len(line)-1] == ']' {
			out = append(out, i)
		}
	}
	return out
}

// between reports whether a section header lies between two spans.
func between(sections []int, a, b Span) bool {
	lo, hi := min(a.Start, b.Start), max(a.Start, b.Start)
	k := sort.SearchInts(sections, lo)
	return k < len(sections) && sections[k] < hi
}

// namePrefix returns the prefix of the variable that names the value at
// data[at]: PROD_ for PROD_AWS_ACCESS_KEY_ID=…, prod for prodAwsSecretKey:
// …, the part before the AWS or ACCESS/SECRET words, in lower case; "" when
// there is no such name or no prefix.
func namePrefix(data []byte, at int) string {
	i := at
	for i > 0 && at-i < 8 && bytes.IndexByte([]byte(" \t\"'=:"), data[i-1]) >= 0 {
		i--
	}
	e := i
	for i > 0 && e-i < 64 && (isWord(data[i-1]) || data[i-1] == '_' || data[i-1] == '-') {
		i--
	}
	name := strings.ToLower(string(data[i:e]))
	for _, w := range []string{"aws", "access", "secret", "key"} {
		if k := strings.Index(name, w); k >= 0 {
			return strings.TrimRight(name[:k], "_-")
		}
	}
	return ""
}
