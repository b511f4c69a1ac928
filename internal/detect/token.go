package detect

import (
	"bytes"
	"math"
	"strings"

	"github.com/keyburn/keyburn/internal/secret"
)

// Token is a maximal run of the base64 alphabet [A-Za-z0-9/+] in the data,
// long enough to be a secret or a session token. Runs are decoded as they are
// read: %2B, %2F (URL encoding) and \/ (a JSON escape) count as + and /, so a
// URL-encoded secret is found whole; any other %XX or backslash escape ends a
// run.
type Token struct {
	Span    Span   // raw bytes of the run in the data
	Value   string // the decoded run
	Encoded bool   // Value differs from the raw bytes
	Keyword string // the secret keyword just before the run, lower case; "" if none
	Named   bool   // a keyword naming a secret access key stands before it
	Allowed string // why the token is a known non-secret; empty if it is not
}

// sessionTokenMinLen is the shortest run taken for a session token. STS
// session tokens are several hundred characters of base64.
const sessionTokenMinLen = 100

// keywordContext is how many bytes before a token are searched for a secret
// keyword: enough for `"aws_secret_access_key": "` and `SecretAccessKey = '`.
const keywordContext = 64

var b64 = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['+'], t['/'] = true, true
	return t
}()

// edgeMargin is how close to an inner chunk edge a token may not come: its
// decoding depends on at most the byte before it (an escape) and the two after
// (a truncated %2B), so a neighbouring chunk sees it whole and decodes it alike.
const edgeMargin = 4

// tokens returns the runs in c whose decoded length is at least minLen.
//
// Decoding looks at most one byte back: a backslash always starts an escape,
// and the byte after it is taken with it when it is n, r or t (a string
// escape: the run starts after it) or / (JSON's \/, decoded to /). %2B and %2F
// decode to + and /; any other %XX ends the run. So no run depends on bytes
// far before it, and scanning in overlapping chunks finds the same runs.
func tokens(c Chunk, minLen int) []Token {
	data := c.Data
	var out []Token
	var dec []byte // decoded bytes of the current run, once it has an escape
	start, n, encoded := -1, 0, false
	flush := func(end int) {
		if start >= 0 && n >= minLen && (c.AtStart || start >= edgeMargin) && (c.AtEnd || end <= len(data)-edgeMargin) {
			t := Token{Span: Span{start, end}, Encoded: encoded}
			if encoded {
				t.Value = string(dec)
			} else {
				t.Value = string(data[start:end])
			}
			out = append(out, t)
		}
		start, n, encoded, dec = -1, 0, false, dec[:0]
	}
	// decoded adds ch, standing for the escape at data[i:], to the run.
	decoded := func(i int, ch byte) {
		if !encoded {
			encoded = true
			if start >= 0 {
				dec = append(dec[:0], data[start:i]...)
			}
		}
		if start < 0 {
			start = i
		}
		dec = append(dec, ch)
		n++
	}
	for i := 0; i < len(data); {
		b := data[i]
		switch {
		case b64[b]:
			if start < 0 {
				start = i
			}
			if encoded {
				dec = append(dec, b)
			}
			n++
			i++
		case b == '%' && i+2 < len(data) && data[i+1] == '2' && (data[i+2]|0x20 == 'b' || data[i+2]|0x20 == 'f'):
			ch := byte('+')
			if data[i+2]|0x20 == 'f' {
				ch = '/'
			}
			decoded(i, ch)
			i += 3
		case b == '%' && i+2 < len(data) && isHex(data[i+1]) && isHex(data[i+2]):
			flush(i)
			i += 3
		case b == '\\' && i+1 < len(data) && data[i+1] == '/':
			decoded(i, '/')
			i += 2
		case b == '\\':
			flush(i)
			i++
			if i < len(data) && (data[i] == 'n' || data[i] == 'r' || data[i] == 't') {
				i++
			}
		default:
			flush(i)
			i++
		}
	}
	flush(len(data))
	return out
}

// allowSecret returns why t is a known non-secret, or "".
func (m *Matcher) allowSecret(data []byte, t Token) string {
	for _, re := range m.set.AllowSecrets {
		if re.MatchString(t.Value) {
			return "allowlisted secret (" + re.String() + ")"
		}
	}
	if bytes.Contains(lineAround(data, t.Span.Start), allowComment) {
		return "keyburn:allow comment"
	}
	return ""
}

// looksSecret reports whether v passes the secret gates: enough entropy,
// both letter cases, not a hex string (a git SHA-1 is 40 hex digits), and a
// digit or symbol unless a secret keyword stands before it. A random
// 40-character secret lacks both digits and symbols once in 4,000, while a
// long identifier (ThisIsAVeryLongIdentifierNameForTheTests) has neither.
func looksSecret(v string, minEntropy float64, keyword bool) bool {
	var upper, lower, digitOrPlus, nonHex bool
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c != '/':
			digitOrPlus = true
		}
		if !isHex(c) {
			nonHex = true
		}
	}
	// Letters and slashes alone are words and paths (a slice of a URL:
	// com/AutoScaling/latest/DeveloperGuide/US), not a random secret,
	// which has a digit or a '+' in all but about 1 in 2,000 cases; a
	// keyword naming the secret outweighs that.
	if !digitOrPlus && !keyword {
		return false
	}
	if hasURLPart(v) {
		return false
	}
	return upper && lower && nonHex && Entropy(v) >= minEntropy
}

// urlParts are pieces of URLs and paths that a random 40-character secret
// holds about once in a million times each.
var urlParts = []string{"com/", "org/", "net/", "http", "www/", "/latest/", "/docs/", "/api/"}

func hasURLPart(v string) bool {
	for _, p := range urlParts {
		if strings.Contains(v, p) {
			return true
		}
	}
	return false
}

// Entropy returns the Shannon entropy of s in bits per byte.
func Entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	var h float64
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// keywordsBefore is keywordBefore for the rule's keywords and the naming
// keywords at once, lowering the context once (it runs for every
// secret-shaped token).
func keywordsBefore(data []byte, s Span, keywords []string) (kw string, named bool) {
	lo := max(0, s.Start-keywordContext)
	var buf [keywordContext]byte
	ctx := buf[:s.Start-lo]
	for i, c := range data[lo:s.Start] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		ctx[i] = c
	}
	for _, k := range keywords {
		if bytes.Contains(ctx, []byte(k)) {
			kw = k
			break
		}
	}
	for _, k := range namingKeywords {
		if bytes.Contains(ctx, []byte(k)) {
			return kw, true
		}
	}
	return kw, false
}

// keywordBefore returns the first keyword found (case-insensitively) in the
// bytes just before span, or "".
func keywordBefore(data []byte, s Span, keywords []string) string {
	lo := max(0, s.Start-keywordContext)
	ctx := bytes.ToLower(data[lo:s.Start])
	for _, k := range keywords {
		if bytes.Contains(ctx, []byte(k)) {
			return k
		}
	}
	return ""
}

func newSecret(v string) secret.Secret { return secret.New(v) }
