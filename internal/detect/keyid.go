package detect

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/keyburn/keyburn/rules"
)

// anchored is a rule's key ID pattern compiled to match only at the start of
// its input, so that each candidate start position is tried on its own, and
// the literals searched for to find the rule's keywords.
type anchored struct {
	re      *regexp.Regexp
	anchors []anchor
}

// anchor is a literal searched for in one pass; each hit may be one of the
// keywords that contain it, at the given offset.
type anchor struct {
	lit []byte
	in  []keywordAt
}

type keywordAt struct {
	kw  []byte
	off int // where lit starts inside kw
}

func newAnchored(r *rules.Rule) anchored {
	re := regexp.MustCompile(`^(?:` + r.KeyID.String() + `)`)
	re.Longest()
	return anchored{re: re, anchors: chooseAnchors(r.Keywords)}
}

// minAnchor is the shortest literal worth a search pass of its own.
const minAnchor = 2

// chooseAnchors picks few literals that together occur in every keyword, so
// that one search pass serves several keywords: for AKIA, ASIA, ABIA and
// ACCA it picks "IA" and "ACCA", two passes instead of four (and "IA" is
// rare in text: about 70 per MB of source code). Greedily, it takes the
// substring found in the most keywords not yet covered, the longest on ties.
func chooseAnchors(keywords [][]byte) []anchor {
	left := map[string]bool{}
	for _, k := range keywords {
		left[string(k)] = true
	}
	var out []anchor
	for len(left) > 0 {
		best, bestN := "", 0
		for k := range left {
			for i := 0; i < len(k); i++ {
				for j := i + min(minAnchor, len(k)); j <= len(k); j++ {
					sub := k[i:j]
					n := 0
					for k2 := range left {
						if strings.Contains(k2, sub) {
							n++
						}
					}
					if n > bestN || n == bestN && (len(sub) > len(best) || len(sub) == len(best) && sub < best) {
						best, bestN = sub, n
					}
				}
			}
		}
		a := anchor{lit: []byte(best)}
		for _, k := range keywords {
			// Every occurrence of the literal in the keyword is a place the
			// keyword may start from.
			for off := 0; ; {
				i := strings.Index(string(k[off:]), best)
				if i < 0 {
					break
				}
				a.in = append(a.in, keywordAt{kw: k, off: off + i})
				off += i + 1
			}
			delete(left, string(k))
		}
		// Only the keywords that contain it were covered; put back the rest.
		for _, k := range keywords {
			if !strings.Contains(string(k), best) && !covered(out, k) {
				left[string(k)] = true
			}
		}
		out = append(out, a)
	}
	return out
}

func covered(as []anchor, k []byte) bool {
	for _, a := range as {
		if bytes.Contains(k, a.lit) {
			return true
		}
	}
	return false
}

// findIDs appends the key IDs of rule r found in c to ids: it searches for
// each anchor, checks which keyword the hit belongs to, and tries the pattern
// there.
func (m *Matcher) findIDs(r *rules.Rule, c Chunk, ids []IDMatch) []IDMatch {
	data := c.Data
	an := m.anchors[r]
	for _, a := range an.anchors {
		for off := 0; off < len(data); {
			i := bytes.Index(data[off:], a.lit)
			if i < 0 {
				break
			}
			off += i + 1
			for _, ka := range a.in {
				h := off - 1 - ka.off // where the keyword would start
				if h < 0 || h+len(ka.kw) > len(data) || !bytes.Equal(data[h:h+len(ka.kw)], ka.kw) {
					continue
				}
				n := len(ids)
				if ids = m.matchAt(r, an, c, h, len(ka.kw), ids); len(ids) == n {
					ids = m.joinedAt(r, an, c, h, ids)
				}
			}
		}
	}
	return ids
}

// matchAt tries the rule's pattern around a keyword found at data[h:h+kwLen].
// A match must contain the keyword, so it starts in [h-(MaxKeyIDLen-kwLen), h];
// only starts on a boundary are tried, and the first that matches wins.
func (m *Matcher) matchAt(r *rules.Rule, an anchored, c Chunk, h, kwLen int, ids []IDMatch) []IDMatch {
	data := c.Data
	lo := max(0, h-(r.MaxKeyIDLen-kwLen))
	hi := min(len(data), h+r.MaxKeyIDLen)
	for s := lo; s <= h; s++ {
		if !boundaryBefore(data, s) {
			continue
		}
		loc := an.re.FindIndex(data[s:hi])
		if loc == nil {
			continue
		}
		e := s + loc[1]
		if e < h+kwLen || !boundaryAfter(data, e) {
			continue
		}
		// Leave a match at an inner edge to the chunk that holds it with
		// its context.
		if (!c.AtStart && s < 3) || (!c.AtEnd && e >= len(data)) {
			continue
		}
		return append(ids, IDMatch{Rule: r, Value: string(data[s:e]), Span: Span{s, e}})
	}
	return ids
}

// maxJoined bounds the string literals joinedAt puts together.
const maxJoined = 8

// joinedAt tries a key ID split across string literals joined by +, . or ..
// (PHP, Lua), or put side by side (C, Python): "AKIA" + "…" (the rest of it).
// The keyword must open a literal that is too short to hold the ID. A
// joined ID is an evasion: the caller reports it with less confidence.
func (m *Matcher) joinedAt(r *rules.Rule, an anchored, c Chunk, h int, ids []IDMatch) []IDMatch {
	data := c.Data
	if h == 0 || !isQuote(data[h-1]) || (!c.AtStart && h < 3) {
		return ids
	}
	var joined []byte
	q, i, end, parts := data[h-1], h, 0, 0
	for ; parts < maxJoined && len(joined) <= r.MaxKeyIDLen; parts++ {
		j := i
		for j < len(data) && data[j] != q && data[j] != '\n' && data[j] != '\\' && j-i <= r.MaxKeyIDLen {
			j++
		}
		if j >= len(data) || data[j] != q {
			break
		}
		joined = append(joined, data[i:j]...)
		end = j + 1
		k := skipBlank(data, end)
		switch {
		case k+1 < len(data) && data[k] == '.' && data[k+1] == '.':
			k += 2
		case k < len(data) && (data[k] == '+' || data[k] == '.'):
			k++
		}
		if k = skipBlank(data, k); k >= len(data) || !isQuote(data[k]) {
			parts++
			break
		}
		q, i = data[k], k+1
	}
	if parts < 2 || (!c.AtEnd && end >= len(data)-1) {
		return ids
	}
	loc := an.re.FindIndex(joined)
	if loc == nil || !boundaryAfter(joined, loc[1]) {
		return ids
	}
	return append(ids, IDMatch{Rule: r, Value: string(joined[:loc[1]]), Span: Span{h, end}, Joined: true})
}

func isQuote(b byte) bool { return b == '"' || b == '\'' || b == '`' }

// skipBlank skips spaces, tabs and line breaks (a concatenation may span
// lines).
func skipBlank(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// A key ID is a placeholder when its last placeholderTail characters use at
// most placeholderDistinct distinct ones (AKIAXXXXXXXXXXXXXXXX,
// AKIAEXAMPLEAAAAAAAAA). In a real key ID those characters are random: eight
// of them from 32 take two or fewer values about once in 10^9.
const (
	placeholderTail     = 8
	placeholderDistinct = 2
)

// allowID returns why id is a known non-secret, or "".
func (m *Matcher) allowID(data []byte, id IDMatch) string {
	for _, re := range m.set.AllowKeyIDs {
		if re.MatchString(id.Value) {
			return "allowlisted key ID (" + re.String() + ")"
		}
	}
	if len(id.Value) >= placeholderTail && distinct(id.Value[len(id.Value)-placeholderTail:]) <= placeholderDistinct {
		return "placeholder key ID"
	}
	if id.Rule.AccountDecode && len(id.Value) > 4 && longestRun(id.Value[4:]) >= placeholderRun {
		return "placeholder key ID (an alphabet run)"
	}
	if id.Rule.AccountDecode && len(id.Value) > 4 {
		if why := placeholderShape(id.Value[4:]); why != "" {
			return "placeholder key ID (" + why + ")"
		}
	}
	if bytes.Contains(lineAround(data, id.Span.Start), allowComment) {
		return "keyburn:allow comment"
	}
	return ""
}

// placeholderRun is the length of a run of consecutive characters
// (ABCDEF…, 234567…) that marks a placeholder AWS key ID: in a random one
// such a run of 6 happens about once in 3 million. (Other rules' IDs may
// have any shape, and are left alone.)
const placeholderRun = 6

// longestRun returns the length of the longest run of characters each one
// after the other in the alphabet (ABCD, 2345).
func longestRun(s string) int {
	best, run := 1, 1
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1]+1 {
			run++
			best = max(best, run)
		} else {
			run = 1
		}
	}
	return best
}

func distinct(s string) int {
	var seen [256]bool
	n := 0
	for i := 0; i < len(s); i++ {
		if !seen[s[i]] {
			seen[s[i]] = true
			n++
		}
	}
	return n
}

// keyboardRows are the letter rows of a QWERTY keyboard: six keys of one in
// a row mark a typed placeholder (QWERTYUIOP…).
var keyboardRows = []string{"QWERTYUIOP", "ASDFGHJKL", "ZXCVBNM"}

// placeholderWords are words a placeholder key ID spells (random base32
// spells one of six letters about once in 200,000 IDs; twice, never).
var placeholderWords = []string{"NOTAREAL", "NOTREAL", "FAKEKEY", "DUMMYKEY", "TESTKEY", "EXAMPLEKEY", "PLACEHOLDER", "REDACTED"}

// placeholderRepeats are words that, twice in an ID, make it a placeholder
// (FAKEFAKEFAKE…, TESTTEST…).
var placeholderRepeats = []string{"FAKE", "TEST", "MOCK", "DUMMY", "SAMPLE", "XXXX"}

// placeholderVariety: a random AWS key ID's 16 characters after the
// prefix use 5 or fewer distinct characters about once in 10^9.
const placeholderVariety = 5

// placeholderShape says why the characters after an AWS key ID's prefix
// look typed rather than random, or "".
func placeholderShape(tail string) string {
	for _, row := range keyboardRows {
		for i := 0; i+6 <= len(row); i++ {
			if strings.Contains(tail, row[i:i+6]) {
				return "a keyboard row"
			}
		}
	}
	for _, w := range placeholderWords {
		if strings.Contains(tail, w) {
			return "it spells " + w
		}
	}
	for _, w := range placeholderRepeats {
		if strings.Count(tail, w) >= 2 {
			return w + " repeated"
		}
	}
	if distinct(tail) <= placeholderVariety {
		return "too few distinct characters"
	}
	return ""
}
