package detect

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzScan checks, for any input: no panic; every span in bounds and holding
// what it claims; and that scanning in overlapping chunks finds exactly the key
// IDs and secret-sized tokens that scanning the whole does.
func FuzzScan(f *testing.F) {
	m := defaultMatcher(f)
	vs := loadVectors(f) // fails if the seed glob matched nothing
	for _, v := range vs {
		f.Add(v.Body, uint16(512))
	}
	for _, tt := range tokenTests {
		f.Add([]byte(tt.in), uint16(600))
	}
	f.Fuzz(func(t *testing.T, data []byte, size uint16) {
		whole := m.Matches(Whole(data))
		for _, id := range whole.IDs {
			if id.Span.Start < 0 || id.Span.End > len(data) || !holds(data[id.Span.Start:id.Span.End], id) {
				t.Fatalf("ID span %v out of bounds or not %q", id.Span, id.Value)
			}
		}
		for _, tok := range whole.Tokens {
			if tok.Span.Start < 0 || tok.Span.End > len(data) || tok.Span.Len() < len(tok.Value) {
				t.Fatalf("token span %v out of bounds or shorter than its value", tok.Span)
			}
			if !tok.Encoded && string(data[tok.Span.Start:tok.Span.End]) != tok.Value {
				t.Fatalf("plain token span %v does not hold its value", tok.Span)
			}
		}
		for _, l := range m.LoneSecrets(data) {
			if l.Span.Start < 0 || l.Span.End > len(data) || l.Span.Len() < len(l.Secret.Reveal()) {
				t.Fatalf("lone secret span %v out of bounds or shorter than the secret", l.Span)
			}
		}
		for _, c := range m.Scan(Whole(data)) {
			if !holds(data[c.KeySpan.Start:c.KeySpan.End], IDMatch{Value: c.KeyID, Joined: c.Joined}) {
				t.Fatalf("candidate span %v does not hold %q", c.KeySpan, c.KeyID)
			}
			if !c.Secret.IsZero() && (c.SecretSpan.Start < 0 || c.SecretSpan.End > len(data)) {
				t.Fatalf("secret span %v out of bounds", c.SecretSpan)
			}
		}

		// Chunked: chunk sizes from 300 bytes, with an overlap of 256 that
		// holds any key ID or secret with its context.
		const overlap = 256
		csize := 300 + int(size)%4096
		ids, toks := map[string]bool{}, map[string]bool{}
		for start := 0; ; start += csize - overlap {
			end := min(len(data), start+csize)
			ms := m.Matches(Chunk{Data: data[start:end], AtStart: start == 0, AtEnd: end == len(data)})
			for _, id := range ms.IDs {
				ids[fmt.Sprintf("%d:%d:%s", start+id.Span.Start, start+id.Span.End, id.Value)] = true
			}
			for _, tok := range ms.Tokens {
				if tok.Span.Len() <= overlap-2*edgeMargin {
					toks[fmt.Sprintf("%d:%d:%s", start+tok.Span.Start, start+tok.Span.End, tok.Value)] = true
				}
			}
			if end == len(data) {
				break
			}
		}
		wantIDs := map[string]bool{}
		for _, id := range whole.IDs {
			wantIDs[fmt.Sprintf("%d:%d:%s", id.Span.Start, id.Span.End, id.Value)] = true
		}
		if !sameKeys(ids, wantIDs) {
			t.Fatalf("chunked IDs %v, whole %v", keys(ids), keys(wantIDs))
		}
		// Tokens are collected only in chunks that hold an ID, so compare
		// them on the whole data's terms: every short whole token is found
		// by some chunk that has an ID... simpler and stricter: rescan the
		// tokens of every chunk directly.
		toks = map[string]bool{}
		for start := 0; ; start += csize - overlap {
			end := min(len(data), start+csize)
			for _, tok := range tokens(Chunk{Data: data[start:end], AtStart: start == 0, AtEnd: end == len(data)}, 40) {
				if tok.Span.Len() <= overlap-2*edgeMargin {
					toks[fmt.Sprintf("%d:%d:%s", start+tok.Span.Start, start+tok.Span.End, tok.Value)] = true
				}
			}
			if end == len(data) {
				break
			}
		}
		wantToks := map[string]bool{}
		for _, tok := range tokens(Whole(data), 40) {
			if tok.Span.Len() <= overlap-2*edgeMargin {
				wantToks[fmt.Sprintf("%d:%d:%s", tok.Span.Start, tok.Span.End, tok.Value)] = true
			}
		}
		if !sameKeys(toks, wantToks) {
			t.Fatalf("chunked tokens %v, whole %v", keys(toks), keys(wantToks))
		}
	})
}

func sameKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzDecodeAccountID checks AccountID never panics and returns 12 digits.
func FuzzDecodeAccountID(f *testing.F) {
	for _, s := range []string{"ASIAY34FZKBOKMUTVV7A", "AKIAIOSFODNN7EXAMPLE", "", "AKIA", "AKIA7777777777777777"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		acct, ok := AccountID(s)
		if ok && len(acct) != 12 {
			t.Fatalf("AccountID(%q) = %q: not 12 digits", s, acct)
		}
		if !ok && acct != "" {
			t.Fatalf("AccountID(%q) = %q with ok false", s, acct)
		}
	})
}

// holds reports whether the text of an ID's span is the ID or, for a joined
// one, string literals whose contents begin with it (the span starts inside
// the first literal).
func holds(text []byte, id IDMatch) bool {
	if !id.Joined {
		return string(text) == id.Value
	}
	var joined []byte
	in := byte(255) // inside the first literal, whose quote is not in text
	for _, b := range text {
		switch {
		case in == 255 && isQuote(b):
			in = 0
		case in == 0 && isQuote(b):
			in = b
		case in != 0 && b == in:
			in = 0
		case in != 0:
			joined = append(joined, b)
		}
	}
	return bytes.HasPrefix(joined, []byte(id.Value)) && in == 0
}
