package detect

import (
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
// cost stays linear in the number of IDs.
const (
	noKeywordFactor  = 4
	noKeywordPenalty = 256
	beforePenalty    = 32
	nearestPerSide   = 8
)

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
		c := Candidate{Rule: r, KeyID: id.Value, KeySpan: id.Span, Joined: id.Joined}
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
		t.Keyword = keywordBefore(data, t.Span, r.SecretKeywords)
		if !r.Secret.MatchString(t.Value) || !looksSecret(t.Value, r.SecretMinEntropy, t.Keyword != "") {
			continue
		}
		secs = append(secs, t)
	}
	if len(secs) > 0 {
		assign(r, ids, secs, out)
	}
	attachSessionTokens(data, ids, toks, out)
	return out
}

func assign(r *rules.Rule, ids []IDMatch, secs []Token, out []Candidate) {
	pairs := make([]scored, 0, len(ids)*2*nearestPerSide)
	for i, id := range ids {
		// secs is in order of position: take the nearest ones on each side.
		k := sort.Search(len(secs), func(j int) bool { return secs[j].Span.Start >= id.Span.End })
		for j := max(0, k-nearestPerSide); j < min(len(secs), k+nearestPerSide); j++ {
			pairs = append(pairs, scored{id: i, sec: j, score: score(id.Span, secs[j])})
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
	for _, p := range pairs {
		if primary[p.id] < 0 {
			primary[p.id] = p.sec
		}
	}
	for _, p := range pairs {
		c := &out[p.id]
		s := secs[p.sec]
		switch {
		case p.sec == primary[p.id]:
			c.Secret, c.SecretSpan = newSecret(s.Value), s.Span
		case len(c.Alternates) < r.MaxPairs-1:
			c.Alternates = append(c.Alternates, Alternate{Secret: newSecret(s.Value), Span: s.Span})
		}
	}
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
