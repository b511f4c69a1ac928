package detect

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/keyburn/keyburn/internal/testkeys"
)

// TestEncodedFindsEveryAlignment: the base64 of a key ID, at any of the
// three alignments to base64's groups and in either alphabet, with or
// without padding, decodes back to text holding the ID: everywhere for the
// decode keywords (AKIA), in "all" mode for the others (ASIA).
func TestEncodedFindsEveryAlignment(t *testing.T) {
	m := defaultMatcher(t)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 300 {
		id := testkeys.KeyID(rng, []string{"AKIA", "ASIA"}[i%2], uint64(i))
		plain := append(bytes.Repeat([]byte("x"), i%3), id+":"+testkeys.Secret(rng)...)
		enc := []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding}[i%4]
		text := []byte("value = \"" + enc.EncodeToString(plain) + "\"\n")
		got := m.Encoded(Whole(text), i%2 == 1)
		if len(got) != 1 || !bytes.Contains(got[0].Data, []byte(id)) || got[0].Kind != "base64" {
			t.Fatalf("%s (alignment %d, encoding %d): Encoded found %d runs, want one base64 run holding the ID", id, i%3, i%4, len(got))
		}
		if s := got[0].Span; s.Start != 9 || text[s.End] != '"' {
			t.Fatalf("%s: span %v does not cover the %d bytes of encoded text from offset 9", id, s, len(text)-11)
		}
	}
}

// TestEncodedLeavesPlainText: source text with no encoded key decodes
// nothing, which is what keeps the decoders cheap.
func TestEncodedLeavesPlainText(t *testing.T) {
	m := defaultMatcher(t)
	text := []byte("func main() {\n\tfmt.Println(\"QUERY SUCCESS Bytes 100%\", 0lB)\n}\n" +
		"integrity: sha512-3Xy7wH1jJq0s9nqvDzX6K0Gv1mFz1S2b1YH9Y9J7bA0pHq3l3Hn2mW8n1y6cPq0tT7wL5K8a2Zb4c9d1e3f5g==\n")
	if got := m.Encoded(Whole(text), false); len(got) != 0 {
		t.Errorf("Encoded = %+v, want nothing", got)
	}
	// With all, the long run is decoded, and holds no key.
	if got := m.Encoded(Whole(text), true); len(got) != 1 {
		t.Errorf("Encoded(all) = %d runs, want the integrity hash", len(got))
	}
}

// TestEncodedPercent: a percent-encoded key ID is decoded with the query
// string around it, also when encoded twice. Everywhere with upper-case hex
// (RFC 3986), and lower-case hex and the other keywords in "all" mode.
func TestEncodedPercent(t *testing.T) {
	m := defaultMatcher(t)
	for _, tc := range []struct {
		text      string
		all, want bool
	}{
		{"?k=%41%4B%49%41QX4BPTNRRLUGAZ2M&s=%33%4A x", false, true},
		{"?k=%2541%254B%2549%2541QX4BPTNRRLUGAZ2M x", false, true},
		{"?k=%41%4b%49%41QX4BPTNRRLUGAZ2M&s=%33%4a x", false, false},
		{"?k=%41%4b%49%41QX4BPTNRRLUGAZ2M&s=%33%4a x", true, true},
		{"?k=%41%53%49%41QX4BPTNRRLUGAZ2M x", true, true},
	} {
		got := m.Encoded(Whole([]byte(tc.text)), tc.all)
		found := len(got) == 1 && got[0].Kind == "percent" && got[0].Span.Start == 1 && bytes.Contains(got[0].Data, []byte("QX4BPTNRRLUGAZ2M"))
		if found != tc.want || !tc.want && len(got) > 0 {
			t.Errorf("Encoded(%q, all=%v) = %+v, want a percent run from offset 1: %v", tc.text, tc.all, got, tc.want)
		}
	}
}

// TestEncodedManyHits: a chunk full of key forms costs time in proportion
// to its size (this would take minutes if each hit were checked against
// every run found before it).
func TestEncodedManyHits(t *testing.T) {
	m := defaultMatcher(t)
	data := bytes.Repeat([]byte("QUtJQTZSV0pZQVg2UjVPQUo0WEs= "), 1<<15)
	if got := m.Encoded(Whole(data), false); len(got) != 1<<15 {
		t.Fatalf("Encoded found %d runs, want %d", len(got), 1<<15)
	}
}

func FuzzEncoded(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.Body, true)
	}
	m := defaultMatcher(f)
	f.Fuzz(func(t *testing.T, data []byte, all bool) {
		for _, e := range m.Encoded(Whole(data), all) {
			if e.Span.Start < 0 || e.Span.End > len(data) || e.Span.Start >= e.Span.End {
				t.Fatalf("span %v outside the %d bytes of data", e.Span, len(data))
			}
			if len(e.Data) == 0 || len(e.Data) > maxDecoded {
				t.Fatalf("decoded %d bytes", len(e.Data))
			}
			if e.Kind == "base64" && len(e.Data) > e.Span.Len() {
				t.Fatalf("base64 of %d bytes decoded to %d", e.Span.Len(), len(e.Data))
			}
		}
	})
}

// TestNextLongRun compares the skipping search with the plain one on text
// of short and long runs.
func TestNextLongRun(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for range 2000 {
		var data []byte
		for len(data) < 300 {
			n := rng.IntN(40)
			for range n {
				data = append(data, "ab+/-_09Z"[rng.IntN(9)])
			}
			data = append(data, " \n\"=:.%"[rng.IntN(7)])
		}
		var got, want [][2]int
		for i := 0; ; {
			s, e, ok := nextLongRun(data, i)
			if !ok {
				break
			}
			got = append(got, [2]int{s, e})
			i = e
		}
		for i := 0; i < len(data); {
			if !b64url[data[i]] {
				i++
				continue
			}
			s := i
			for i < len(data) && b64url[data[i]] {
				i++
			}
			if i-s >= minBase64Run {
				want = append(want, [2]int{s, i})
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("runs of %q: got %v, want %v", data, got, want)
		}
	}
}
