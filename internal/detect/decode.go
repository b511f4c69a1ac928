package detect

import (
	"bytes"
	"encoding/base64"
	"slices"
)

// Encoded text: keys hidden in base64 (a Kubernetes Secret's data, an HTTP
// Basic or docker auth blob, `echo … | base64 -d > ~/.aws/credentials`) or
// in percent-encoding. The engine decodes what Encoded returns and scans the
// decoded bytes like any other text, nested to a depth it chooses.
//
// # What it costs
//
// Decoding everything that looks like base64 is where other scanners spend
// most of their time. Here a run is decoded only when it holds a decode
// keyword's base64 form. A keyword such as AKIA has three base64 forms, one
// for each alignment of its bytes to the 3-byte groups base64 encodes
// (QUtJQ, FLSU, BS0lB), and each form is found by one IndexByte pass for
// its rarest character, checked at each hit: for AKIA and ASIA three passes
// (J, U and B) serve all six forms. Percent-encoded keywords (%41%4B%49%41)
// take one pass for '%'. In Encoded's "all" mode (configuration files, and
// text that was itself decoded) every long base64 run is decoded, since
// base64 nested in base64 shows no keyword's form on the outside.

// Encoded is a stretch of encoded text and what it decodes to.
type Encoded struct {
	Span Span   // the encoded text in the data
	Kind string // "base64" or "percent"
	Data []byte // the decoded bytes
	// Name is the word naming the value just before the encoded text (the
	// key of `AWS_SECRET_ACCESS_KEY: d0pBbH…`), empty if none: decoded text
	// is scanned with it in front, so that a secret keeps its keyword.
	Name string
}

// minBase64Run is the shortest base64 run decoded: 27 characters encode the
// 20 bytes of a key ID.
const minBase64Run = 27

// wrapMin is the shortest line of wrapped base64 that a run continues after.
const wrapMin = 60

// maxDecoded bounds the bytes one encoded run decodes to; what lies beyond
// is not decoded.
const maxDecoded = 8 << 20

// form is one encoded form of a keyword: lit is found at a hit with the pass
// byte at offset at of lit; phase is where lit starts inside its 4-character
// base64 group (so the run can be decoded from a group boundary).
type form struct {
	lit     []byte
	at      int
	near    int // a byte of lit beside at, compared first
	phase   int
	percent bool
}

// pass is one IndexByte search and the forms checked at its hits.
type pass struct {
	b     byte
	forms []form
}

// newDecodePasses returns the passes that find the encoded forms of the
// decode keywords in any text (base64, and percent-encoding with upper-case
// hex as RFC 3986 asks), and those that find every percent-encoded form of
// every keyword, for "all" mode, where every base64 run is decoded anyway.
func newDecodePasses(decode, every [][]byte) (always, all []pass) {
	var forms []form
	for _, kw := range decode {
		forms = appendNew(forms, base64Forms(kw)...)
		forms = appendNew(forms, percentForms(kw, false)...)
	}
	var pct []form
	for _, kw := range every {
		pct = appendNew(pct, percentForms(kw, true)...)
	}
	return cover(forms), cover(pct)
}

func appendNew(forms []form, more ...form) []form {
	for _, f := range more {
		if !slices.ContainsFunc(forms, func(g form) bool { return bytes.Equal(f.lit, g.lit) }) {
			forms = append(forms, f)
		}
	}
	return forms
}

// cover picks few bytes that together occur in every form, rare ones,
// and checks each form at the hits of one of them: greedily, the byte in
// the most forms not yet covered, the rarer on a tie.
func cover(forms []form) []pass {
	var out []pass
	left := slices.Clone(forms)
	for len(left) > 0 {
		var count [256]int
		for _, f := range left {
			var seen [256]bool
			for _, c := range f.lit {
				if !seen[c] {
					seen[c] = true
					count[c]++
				}
			}
		}
		best := -1
		for c := range 256 {
			if count[c] > 0 && (best < 0 || count[c] > count[best] || count[c] == count[best] && rank(byte(c)) < rank(byte(best))) {
				best = c
			}
		}
		p := pass{b: byte(best)}
		rest := left[:0]
		for _, f := range left {
			if at := bytes.IndexByte(f.lit, p.b); at >= 0 {
				f.at, f.near = at, at+1
				if f.near == len(f.lit) {
					f.near = at - 1
				}
				p.forms = append(p.forms, f)
			} else {
				rest = append(rest, f)
			}
		}
		left = rest
		out = append(out, p)
	}
	return out
}

// base64Forms returns the characters of kw's base64 encoding that kw alone
// determines, for each of the three alignments of kw to base64's 3-byte
// groups, in the standard and URL alphabets.
func base64Forms(kw []byte) []form {
	var out []form
	for a := 0; a < 3; a++ {
		x := append(make([]byte, a), kw...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			e := enc.EncodeToString(x)
			lo, hi := 8*a, 8*(a+len(kw)) // kw's bits in x
			first, lit := -1, []byte(nil)
			for i := 0; i < len(e) && 6*i+6 <= hi; i++ {
				if 6*i >= lo {
					if first < 0 {
						first = i
					}
					lit = append(lit, e[i])
				}
			}
			if len(lit) >= 3 && !slices.ContainsFunc(out, func(f form) bool { return bytes.Equal(f.lit, lit) }) {
				out = append(out, form{lit: lit, phase: first % 4})
			}
		}
	}
	return out
}

// percentForms returns kw percent-encoded whole, once and twice (%2541…),
// with upper-case hex digits and, if lower, with lower-case ones too.
func percentForms(kw []byte, lower bool) []form {
	cases := []string{"0123456789ABCDEF"}
	if lower {
		cases = append(cases, "0123456789abcdef")
	}
	var out []form
	for _, digits := range cases {
		for _, twice := range []bool{false, true} {
			var b []byte
			for _, c := range kw {
				b = append(b, '%')
				if twice {
					b = append(b, '2', '5')
				}
				b = append(b, digits[c>>4], digits[c&15])
			}
			if !slices.ContainsFunc(out, func(f form) bool { return bytes.Equal(f.lit, b) }) {
				out = append(out, form{lit: b, percent: true})
			}
		}
	}
	return out
}

// rarity ranks the base64 characters and '%' from the rarest in source code
// and configuration text to the most common, as measured on the Go
// distribution's sources: a pass searches for a rare byte, which stops it
// seldom.
const rarity = "JZjqQ%KzY+WHGU-BNwFVLkXM79DP5ICO8vyREAT6_3Sb4hgm2/p1udfclxosianr0te"

func rank(c byte) int {
	if r := bytes.IndexByte([]byte(rarity), c); r >= 0 {
		return r
	}
	return len(rarity)
}

var b64url = func() (t [256]bool) {
	t = b64
	t['-'], t['_'] = true, true
	return t
}()

// Encoded returns the encoded runs of data that may hold a key: base64 runs
// holding a decode keyword's base64 form and percent-encoded keywords; with
// all, every base64 run of at least minBase64Run characters as well. Runs
// that touch an inner edge of c are left to the chunk that holds them whole.
func (m *Matcher) Encoded(c Chunk, all bool) []Encoded {
	data := c.Data
	passes := m.passes
	if all {
		passes = append(slices.Clip(passes), m.allPasses...)
	}
	type hit struct {
		at int
		f  *form
	}
	var hits []hit
	for _, p := range passes {
		for off := 0; off < len(data); {
			i := bytes.IndexByte(data[off:], p.b)
			if i < 0 {
				break
			}
			i += off
			off = i + 1
			for k := range p.forms {
				f := &p.forms[k]
				s, e := i-f.at, i-f.at+len(f.lit)
				// The byte after the hit (or before it) rules out nearly
				// every hit before the whole form is compared.
				if s >= 0 && e <= len(data) && data[s+f.near] == f.lit[f.near] && bytes.Equal(data[s:e], f.lit) {
					hits = append(hits, hit{s, f})
				}
			}
		}
	}
	if len(hits) == 0 && !all {
		return nil
	}
	// In order of position, so that the hits inside a run already decoded
	// are passed over at once: linear in the hits, however many.
	slices.SortFunc(hits, func(a, b hit) int { return a.at - b.at })
	var out []Encoded
	keep := func(e Encoded) bool {
		if len(e.Data) == 0 || (!c.AtStart && e.Span.Start < edgeMargin) || (!c.AtEnd && e.Span.End > len(data)-edgeMargin) {
			return false
		}
		e.Name = m.nameBefore(data, e.Span.Start)
		out = append(out, e)
		return true
	}
	end := 0 // where the last run decoded ends
	for _, h := range hits {
		if h.at < end {
			continue
		}
		var e Encoded
		var ok bool
		if h.f.percent {
			e, ok = percentRun(data, h.at)
		} else {
			e, ok = base64Run(data, h.at, h.f.phase)
		}
		if ok && keep(e) {
			end = max(end, e.Span.End)
		}
	}
	// Once one run holds a key's form, every long run of the chunk is
	// decoded: the secret beside an encoded key ID is encoded too.
	if all || len(out) > 0 {
		found := out
		j := 0 // found[j] is the first run found by a hit that may overlap
		for i := 0; ; {
			s, e, ok := nextLongRun(data, i)
			if !ok {
				break
			}
			i = e
			for j < len(found) && found[j].Span.End <= s {
				j++
			}
			if j < len(found) && found[j].Span.Start < i || !mixed(data[s:e]) {
				continue
			}
			if e, ok := base64Run(data, s, 0); ok && keep(e) {
				i = max(i, e.Span.End)
			}
		}
		slices.SortFunc(out, func(a, b Encoded) int { return a.Span.Start - b.Span.Start })
	}
	return out
}

// mixed reports whether a run has the character mix of base64: upper- and
// lower-case letters, and a digit or a '+'. Paths, URLs and identifiers
// (web/ui/module/codemirror-promql, some_long_name-with-dashes) lack it;
// 27 random base64 characters lack it less than once in 150 times, 40 once
// in 2,000.
func mixed(run []byte) bool {
	var upper, lower, digit bool
	for _, c := range run {
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9' || c == '+':
			digit = true
		}
		if upper && lower && digit {
			return true
		}
	}
	return false
}

// nextLongRun returns the first run of at least minBase64Run base64
// characters (either alphabet) in data[from:]. It looks at few bytes of the
// text between runs: a run that long holds the byte minBase64Run-1 ahead,
// so where that byte is not base64 the search skips past it, and where it
// is, only back to the start of its word.
func nextLongRun(data []byte, from int) (s, e int, ok bool) {
	i := from // no long run starts in data[from:i]; data[i-1] is no base64
	for i+minBase64Run <= len(data) {
		k := i + minBase64Run - 1
		if !b64url[data[k]] {
			i = k + 1
			continue
		}
		j := k
		for j > i && b64url[data[j-1]] {
			j--
		}
		if j > i { // data[j-1] is no base64: a long run starts at j or later
			i = j
			continue
		}
		e = k + 1
		for e < len(data) && b64url[data[e]] {
			e++
		}
		return i, e, true
	}
	return 0, 0, false
}

// base64Run decodes the base64 run that holds data[at], a form whose
// first character is phase characters into its 4-character group: the run
// is decoded from the group boundary in line with it.
func base64Run(data []byte, at, phase int) (Encoded, bool) {
	s, e := at, at
	for s > 0 && b64url[data[s-1]] {
		s--
	}
	// Decode from a group boundary in line with the form.
	s += ((at-phase-s)%4 + 4) % 4
	var text []byte // the run without line breaks, when it has any
	lineStart := s
	for {
		for e < len(data) && b64url[data[e]] {
			e++
		}
		// base64 wrapped at 64 or 76 columns (PEM, MIME, GNU base64) goes
		// on after a line break that ends a full line.
		next := e
		if next < len(data) && data[next] == '\r' {
			next++
		}
		if e-lineStart < wrapMin || next >= len(data)-1 || data[next] != '\n' || !b64url[data[next+1]] || e-s > maxDecoded {
			break
		}
		text = append(text, data[lineStart:e]...)
		lineStart, e = next+1, next+1
	}
	end := e
	for end < len(data) && end-e < 2 && data[end] == '=' {
		end++
	}
	if text != nil {
		text = append(text, data[lineStart:e]...)
	} else {
		text = data[s:e]
	}
	if len(text) < minBase64Run {
		return Encoded{}, false
	}
	if n := (len(text) / 4) * 4 * 3 / 4; n > maxDecoded {
		text = text[:maxDecoded/3*4]
	}
	if len(text)%4 == 1 {
		text = text[:len(text)-1]
	}
	enc := base64.RawStdEncoding
	if bytes.ContainsAny(text, "-_") {
		if bytes.ContainsAny(text, "+/") {
			return Encoded{}, false // two alphabets: not one base64 text
		}
		enc = base64.RawURLEncoding
	}
	dec := make([]byte, enc.DecodedLen(len(text)))
	n, err := enc.Decode(dec, text)
	if err != nil || n == 0 {
		return Encoded{}, false
	}
	return Encoded{Span: Span{s, end}, Kind: "base64", Data: dec[:n]}, true
}

// percentRun decodes the percent-encoded text around data[at]: the stretch
// of URL characters and %XX escapes that holds it.
func percentRun(data []byte, at int) (Encoded, bool) {
	urlish := func(b byte) bool {
		return isWord(b) || bytes.IndexByte([]byte("%-._~+/=&"), b) >= 0
	}
	s, e := at, at
	for s > 0 && urlish(data[s-1]) && at-s < maxDecoded {
		s--
	}
	for e < len(data) && urlish(data[e]) && e-at < maxDecoded {
		e++
	}
	var dec []byte
	for i := s; i < e; i++ {
		if data[i] == '%' && i+2 < e && isHex(data[i+1]) && isHex(data[i+2]) {
			dec = append(dec, unhex(data[i+1])<<4|unhex(data[i+2]))
			i += 2
			continue
		}
		dec = append(dec, data[i])
	}
	return Encoded{Span: Span{s, e}, Kind: "percent", Data: dec}, len(dec) > 0
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// nameBefore returns the word naming the value that starts at data[at]: a
// key such as AWS_SECRET_ACCESS_KEY in `AWS_SECRET_ACCESS_KEY: "…"`, or "".
// A word holding a keyword is no name (it may be a key ID of its own, found
// in the plain text already).
func (m *Matcher) nameBefore(data []byte, at int) string {
	i := at
	for i > 0 && at-i < 8 && bytes.IndexByte([]byte(" \t\"':=,{"), data[i-1]) >= 0 {
		i--
	}
	e := i
	for i > 0 && e-i < 64 && (isWord(data[i-1]) || data[i-1] == '_' || data[i-1] == '-' || data[i-1] == '.') {
		i--
	}
	if i == e || e-i >= 64 {
		return ""
	}
	for _, r := range m.set.Rules {
		for _, k := range r.Keywords {
			if bytes.Contains(data[i:e], k) {
				return ""
			}
		}
	}
	return string(data[i:e])
}
