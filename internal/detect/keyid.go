package detect

import (
	"bytes"
	"regexp"

	"github.com/keyburn/keyburn/rules"
)

// anchored is a rule's key ID pattern compiled to match only at the start of
// its input, so that each candidate start position is tried on its own.
type anchored struct {
	re *regexp.Regexp
}

func newAnchored(r *rules.Rule) anchored {
	re := regexp.MustCompile(`^(?:` + r.KeyID.String() + `)`)
	re.Longest()
	return anchored{re: re}
}

// findIDs appends the key IDs of rule r found in c to ids.
//
// For each keyword hit at h, a match must contain [h, h+len(kw)), so it starts
// in [h-(MaxKeyIDLen-len(kw)), h]. Only starts on a boundary are tried.
func (m *Matcher) findIDs(r *rules.Rule, c Chunk, ids []IDMatch) []IDMatch {
	data := c.Data
	an := m.anchors[r]
	for _, kw := range r.Keywords {
		for off := 0; off < len(data); {
			i := bytes.Index(data[off:], kw)
			if i < 0 {
				break
			}
			h := off + i
			off = h + 1
			lo := max(0, h-(r.MaxKeyIDLen-len(kw)))
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
				if e < h+len(kw) || !boundaryAfter(data, e) {
					continue
				}
				// Leave a match at an inner edge to the chunk that holds
				// it with its context.
				if (!c.AtStart && s < 3) || (!c.AtEnd && e >= len(data)) {
					continue
				}
				ids = append(ids, IDMatch{Rule: r, Value: string(data[s:e]), Span: Span{s, e}})
				break
			}
		}
	}
	return ids
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
	if bytes.Contains(lineAround(data, id.Span.Start), allowComment) {
		return "keyburn:allow comment"
	}
	return ""
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
