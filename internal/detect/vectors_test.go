package detect

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/rules"
)

// A vector file (testdata/vectors/NAME) is a header of "key: value" lines, a
// blank line, and the body to scan:
//
//	expect: finding | none
//	rule: aws-access-key
//	comment: what the vector shows
//	pair: KEYID SECRET      (repeatable; SECRET "-" means: found, unpaired)
//	token: KEYID TOKEN      (repeatable; the session token of a temporary ID)
//
// Every listed pair must be found, and nothing else.
type vector struct {
	name    string
	expect  string
	rule    string
	comment string
	pairs   map[string]string
	tokens  map[string]string
	body    []byte
}

const vectorDir = "../../testdata/vectors"

func loadVectors(t testing.TB) []vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d vectors in %s, want at least 20: did the fixtures move?", len(files), vectorDir)
	}
	var vs []vector
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseVector(filepath.Base(f), data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		vs = append(vs, v)
	}
	return vs
}

func parseVector(name string, data []byte) (vector, error) {
	v := vector{name: name, pairs: map[string]string{}, tokens: map[string]string{}}
	head, body, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return v, fmt.Errorf("no blank line after the header")
	}
	v.body = body
	for _, line := range strings.Split(string(head), "\n") {
		k, val, ok := strings.Cut(line, ": ")
		if !ok {
			return v, fmt.Errorf("header line %q is not key: value", line)
		}
		switch k {
		case "expect":
			v.expect = val
		case "rule":
			v.rule = val
		case "comment":
			v.comment = val
		case "pair", "token":
			id, s, ok := strings.Cut(val, " ")
			if !ok {
				return v, fmt.Errorf("%s %q: want KEYID VALUE", k, val)
			}
			if k == "pair" {
				v.pairs[id] = s
			} else {
				v.tokens[id] = s
			}
		default:
			return v, fmt.Errorf("unknown header %q", k)
		}
	}
	if v.expect != "finding" && v.expect != "none" {
		return v, fmt.Errorf("expect %q: want finding or none", v.expect)
	}
	if v.expect == "finding" && len(v.pairs) == 0 {
		return v, fmt.Errorf("expect finding but no pair line")
	}
	return v, nil
}

func defaultMatcher(t testing.TB) *Matcher {
	t.Helper()
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	return New(set)
}

func TestVectors(t *testing.T) {
	m := defaultMatcher(t)
	for _, v := range loadVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			checkVector(t, m, v, v.body)
		})
	}
}

// checkVector runs v's expectations against the candidates found in body.
func checkVector(t *testing.T, m *Matcher, v vector, body []byte) {
	t.Helper()
	got := m.Scan(Whole(body))
	seen := map[string]bool{}
	for _, c := range got {
		if v.rule != "" && c.Rule.ID != v.rule {
			t.Errorf("%s: candidate %s has rule %q, want %q", v.comment, c.KeyID, c.Rule.ID, v.rule)
		}
		want, ok := v.pairs[c.KeyID]
		if !ok {
			t.Errorf("%s: unexpected candidate %s (secret %v)", v.comment, c.KeyID, c.Secret)
			continue
		}
		seen[c.KeyID] = true
		switch {
		case want == "-" && !c.Secret.IsZero():
			t.Errorf("%s: %s paired with %v, want unpaired", v.comment, c.KeyID, c.Secret)
		case want != "-" && c.Secret.Reveal() != want:
			t.Errorf("%s: %s paired with %v, want %v", v.comment, c.KeyID, c.Secret, secret.New(want))
		}
		if tok, ok := v.tokens[c.KeyID]; ok && c.SessionToken.Reveal() != tok {
			t.Errorf("%s: %s has session token %v, want %v", v.comment, c.KeyID, c.SessionToken, secret.New(tok))
		}
		if string(body[c.KeySpan.Start:c.KeySpan.End]) != c.KeyID {
			t.Errorf("%s: key span %v holds %q, not the key ID", v.comment, c.KeySpan, body[c.KeySpan.Start:c.KeySpan.End])
		}
	}
	for id := range v.pairs {
		if !seen[id] {
			t.Errorf("%s: key ID %s not found", v.comment, id)
		}
	}
}
