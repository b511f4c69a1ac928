// Package detect finds credential candidates in bytes: key IDs, the secrets
// near them, and which secret belongs to which ID.
//
// It is pure: bytes in, candidates out. It does no I/O, no logging and knows
// nothing of files or git; the caller says which part of a larger input a
// chunk is, and turns offsets into lines. A Matcher is safe for concurrent use.
//
// # How it is fast
//
// Key IDs are rare and begin with literals (AKIA, ASIA …), so the matcher first
// searches for each rule's keywords with bytes.Index (SIMD on amd64), and runs
// the rule's pattern only on a small window at each hit. Secrets have no
// literal, so they are looked for only in chunks that hold a key ID. A chunk
// without any keyword costs one bytes.Index pass per keyword.
package detect

import (
	"bytes"
	"slices"
	"sort"

	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/rules"
)

// Span is a half-open byte range [Start, End) of the scanned data.
type Span struct{ Start, End int }

// Len returns the length of the span.
func (s Span) Len() int { return s.End - s.Start }

// Candidate is a key ID found in the data, with the secret it is paired with,
// if any.
type Candidate struct {
	Rule      *rules.Rule
	KeyID     string
	KeySpan   Span
	AccountID string // decoded offline; empty when the ID does not encode it
	Temporary bool   // a temporary credential (ASIA): needs a session token
	// Joined is true for an ID put together from string literals ("AKIA" +
	// "…"), an evasion reported with less confidence than a plain ID.
	Joined bool

	// Secret is the best-ranked secret for the ID, zero when none was found
	// (the candidate is unpaired).
	Secret     secret.Secret
	SecretSpan Span
	// Weak is true when Secret was paired by proximity alone, with no
	// keyword naming it: a medium-severity pair.
	Weak bool
	// Marked is true when another scanner's allow comment stands on the
	// key ID's line (gitleaks:allow …): a low-severity finding.
	Marked bool
	// Alternates are the next-best secrets, best first, for a verifier to try
	// when Secret proves wrong. At most Rule.MaxPairs-1.
	Alternates []Alternate

	// SessionToken is the nearest session token for a temporary key ID.
	SessionToken secret.Secret
	TokenSpan    Span
}

// Alternate is a secret that may belong to a key ID.
type Alternate struct {
	Secret secret.Secret
	Span   Span
}

// Matcher finds candidates with a compiled rule set.
type Matcher struct {
	set     *rules.Set
	anchors map[*rules.Rule]anchored
	passes  []pass // finding encoded forms of the decode keywords
	// allPasses find more encoded forms in Encoded's "all" mode.
	allPasses []pass
}

// New returns a Matcher for the rules in set.
func New(set *rules.Set) *Matcher {
	m := &Matcher{set: set, anchors: map[*rules.Rule]anchored{}}
	var decode, every [][]byte
	for _, r := range set.Rules {
		m.anchors[r] = newAnchored(r)
		decode = append(decode, r.DecodeKeywords...)
		every = append(every, r.Keywords...)
	}
	m.passes, m.allPasses = newDecodePasses(decode, every)
	return m
}

// Rules returns the rule set the matcher uses.
func (m *Matcher) Rules() *rules.Set { return m.set }

// Chunk is the data to scan and where it lies in the whole input. When a
// large input is scanned in overlapping chunks, a match that touches an inner
// edge is left to the neighbouring chunk that holds it whole.
type Chunk struct {
	Data    []byte
	AtStart bool // Data begins at the start of the input
	AtEnd   bool // Data ends at the end of the input
}

// Whole returns a Chunk for a complete input.
func Whole(data []byte) Chunk { return Chunk{Data: data, AtStart: true, AtEnd: true} }

// Scan returns the candidates in the chunk, in order of their key IDs, with
// allowlisted IDs and secrets removed.
func (m *Matcher) Scan(c Chunk) []Candidate {
	cands, _ := m.ScanIDs(c)
	return cands
}

// ScanIDs is Scan that also says whether the chunk held any key ID at all,
// allowlisted ones included (a placeholder's neighbourhood is no place to
// look for secrets on their own).
func (m *Matcher) ScanIDs(c Chunk) (cands []Candidate, anyID bool) {
	ms := m.Matches(c)
	if len(ms.IDs) == 0 {
		return nil, false
	}
	var out []Candidate
	for _, r := range m.set.Rules {
		var ids []IDMatch
		for _, id := range ms.IDs {
			if id.Rule == r && id.Allowed == "" {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			continue
		}
		out = append(out, pair(c.Data, r, ids, ms.Tokens)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].KeySpan.Start < out[j].KeySpan.Start })
	return out, true
}

// Matches is everything the matcher recognised in a chunk, before pairing.
type Matches struct {
	IDs    []IDMatch
	Tokens []Token // secret-alphabet runs long enough to be a secret or session token
}

// IDMatch is a key ID occurrence.
type IDMatch struct {
	Rule    *rules.Rule
	Value   string
	Span    Span
	Allowed string // why the ID is a known non-secret; empty if it is not
	// Joined is true for an ID put together from string literals: Span
	// covers them all.
	Joined bool
}

// Matches returns the key IDs in the chunk and, when there is at least one,
// the secret-like tokens of the chunk. Allowlisted items are included, with
// the reason in Allowed.
func (m *Matcher) Matches(c Chunk) Matches {
	var ms Matches
	for _, r := range m.set.Rules {
		ms.IDs = m.findIDs(r, c, ms.IDs)
	}
	if len(ms.IDs) == 0 {
		return ms
	}
	sort.Slice(ms.IDs, func(i, j int) bool { return ms.IDs[i].Span.Start < ms.IDs[j].Span.Start })
	ms.IDs = dedupeIDs(ms.IDs)
	for i := range ms.IDs {
		ms.IDs[i].Allowed = m.allowID(c.Data, ms.IDs[i])
	}
	ms.Tokens = tokens(c, m.minTokenLen())
	for i := range ms.Tokens {
		ms.Tokens[i].Allowed = m.allowSecret(c.Data, ms.Tokens[i])
	}
	return ms
}

func (m *Matcher) minTokenLen() int {
	n := sessionTokenMinLen
	for _, r := range m.set.Rules {
		if r.Secret != nil && r.SecretLength < n {
			n = r.SecretLength
		}
	}
	return n
}

// dedupeIDs drops repeated spans (several keywords or rules finding the same
// ID; the first rule wins). ids must be sorted by start.
func dedupeIDs(ids []IDMatch) []IDMatch {
	out := ids[:0]
	for _, id := range ids {
		dup := false
		for j := len(out) - 1; j >= 0 && out[j].Span.Start == id.Span.Start; j-- {
			if out[j].Span == id.Span {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, id)
		}
	}
	return out
}

// isWord reports whether b continues a key ID or word: an ASCII letter or digit.
func isWord(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

// boundaryBefore reports whether a match may start at data[s]: at the start,
// after a non-word byte, after an escape such as \n in a quoted string, or
// after a percent-encoded byte such as %3D in a URL.
func boundaryBefore(data []byte, s int) bool {
	if s == 0 || !isWord(data[s-1]) {
		return true
	}
	if s >= 2 && data[s-2] == '\\' {
		switch data[s-1] {
		case 'n', 'r', 't':
			return true
		}
	}
	return s >= 3 && data[s-3] == '%' && isHex(data[s-2]) && isHex(data[s-1])
}

func boundaryAfter(data []byte, e int) bool {
	return e >= len(data) || !isWord(data[e])
}

// lineAround returns the line holding data[pos], at most lineContext bytes
// either side of pos.
func lineAround(data []byte, pos int) []byte {
	lo := max(0, pos-lineContext)
	if i := bytes.LastIndexByte(data[lo:pos], '\n'); i >= 0 {
		lo += i + 1
	}
	hi := min(len(data), pos+lineContext)
	if i := bytes.IndexByte(data[pos:hi], '\n'); i >= 0 {
		hi = pos + i
	}
	return data[lo:hi]
}

// lineContext bounds how far from a match the line is searched for an allow
// comment, so that a 1 MB line costs no more than a short one.
const lineContext = 4 << 10 // 4 KiB

var allowComment = []byte("keyburn:allow")

// otherAllowComments are other scanners' markers of a known non-secret
// (gitleaks, trufflehog, detect-secrets, ggshield). keyburn still reports
// the key, at low severity: another tool's word is a hint, not an
// allowlist of this one.
var otherAllowComments = [][]byte{[]byte("gitleaks:allow"), []byte("trufflehog:ignore"), []byte("pragma: allowlist secret"), []byte("ggignore")}

// markedByOtherScanner reports whether the line around pos carries another
// scanner's allow comment.
func markedByOtherScanner(data []byte, pos int) bool {
	line := lineAround(data, pos)
	for _, c := range otherAllowComments {
		if bytes.Contains(line, c) {
			return true
		}
	}
	return false
}

// PathAllowed reports whether path (slash-separated) matches a path
// allowlist, so that the file need not be read at all.
func (m *Matcher) PathAllowed(path string) bool {
	for _, re := range m.set.AllowPaths {
		if re.MatchString(path) {
			return true
		}
	}
	return false
}

// Secrets returns the secrets of rule r in data that pass its gates, for
// pairing a key ID with a secret found in another file of the same commit:
// named are those a naming keyword introduces (aws_secret_access_key,
// SecretAccessKey …), the only ones that may pair across files; others
// may only be tried.
func (m *Matcher) Secrets(r *rules.Rule, data []byte) (named, others []Alternate) {
	if r.Secret == nil {
		return nil, nil
	}
	for _, t := range tokens(Whole(data), r.SecretLength) {
		if len(t.Value) != r.SecretLength || m.allowSecret(data, t) != "" {
			continue
		}
		if !r.Secret.MatchString(t.Value) {
			continue
		}
		var kw string
		kw, t.Named = keywordsBefore(data, t.Span, r.SecretKeywords)
		if !looksSecret(t.Value, r.SecretMinEntropy, kw != "") || !secretShape(data, t) {
			continue
		}
		a := Alternate{Secret: newSecret(t.Value), Span: t.Span}
		if t.Named {
			named = append(named, a)
		} else {
			others = append(others, a)
		}
	}
	return named, others
}

// HoldsKeyID reports whether data holds a key ID of any rule, allowlisted
// ones included.
func (m *Matcher) HoldsKeyID(data []byte) bool {
	c := Whole(data)
	for _, r := range m.set.Rules {
		if len(m.findIDs(r, c, nil)) > 0 {
			return true
		}
	}
	return false
}

// Rule returns the rule with the given ID, or nil.
func (m *Matcher) Rule(id string) *rules.Rule {
	for _, r := range m.set.Rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// loneNames are the names that mark a secret as an AWS secret access key
// even with no key ID in sight (lower case, matched just before it).
var loneNames = []string{"secret_access_key", "secretaccesskey", "secret-access-key", "aws_secret_key", "aws_secret"}

// LoneSecrets returns the secrets of data that an explicit AWS name
// (aws_secret_access_key, SecretAccessKey …) introduces, for text that holds
// no key ID: a secret without its key ID. Only a search for "secret" runs
// over all of data; secret tokens are looked for after its hits.
func (m *Matcher) LoneSecrets(data []byte) []LoneSecret {
	var out []LoneSecret
	for _, r := range m.set.Rules {
		if r.Secret == nil || !r.AccountDecode {
			continue // only AWS rules name their secrets so
		}
		for _, lit := range [][]byte{[]byte("ecret"), []byte("ECRET")} {
			for off := 0; off < len(data); {
				i := bytes.Index(data[off:], lit)
				if i < 0 {
					break
				}
				i += off
				off = i + 1
				// The secret starts within keywordContext bytes of its name.
				lo, hi := i, min(len(data), i+keywordContext+r.SecretLength+8)
				for _, t := range tokens(Chunk{Data: data[lo:hi], AtStart: lo == 0, AtEnd: hi == len(data)}, r.SecretLength) {
					t.Span = Span{t.Span.Start + lo, t.Span.End + lo}
					if len(t.Value) != r.SecretLength || keywordBefore(data, t.Span, loneNames) == "" ||
						!r.Secret.MatchString(t.Value) || !looksSecret(t.Value, r.SecretMinEntropy, true) || m.allowSecret(data, t) != "" ||
						!wholeSecret(data, t.Span) {
						continue
					}
					if !slices.ContainsFunc(out, func(o LoneSecret) bool { return o.Span == t.Span }) {
						out = append(out, LoneSecret{Rule: r, Secret: newSecret(t.Value), Span: t.Span})
					}
					break
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Span.Start < out[j].Span.Start })
	return out
}

// LoneSecret is a secret named as an AWS secret access key, found where no
// key ID is.
type LoneSecret struct {
	Rule   *rules.Rule
	Secret secret.Secret
	Span   Span
}
