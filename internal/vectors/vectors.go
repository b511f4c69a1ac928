// Package vectors reads the detection vectors of testdata/vectors: text
// with the key IDs, secrets and session tokens a scan of it must report,
// and nothing else. The detector's and the engine's tests both run them.
//
// A vector file is a header of "key: value" lines, a blank line, and the
// body to scan:
//
//	expect: finding | none
//	rule: aws-access-key
//	comment: what the vector shows
//	pair: KEYID SECRET      (repeatable; SECRET "-" means: found, unpaired)
//	token: KEYID TOKEN      (repeatable; the session token of a temporary ID)
//	lone: SECRET            (repeatable; a secret without its key ID)
//	encoding: base64        (the key is hidden: found only by decoding, and
//	                         reported with this encoding)
//
// The file's name is the path the body is scanned as.
package vectors

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/keyburn/keyburn/internal/secret"
)

// Vector is one vector file.
type Vector struct {
	Name     string
	Expect   string // "finding" or "none"
	Rule     string
	Comment  string
	Pairs    map[string]string // key ID → secret, "-" for unpaired
	Tokens   map[string]string // key ID → session token
	Lone     []string          // secrets without their key ID
	Encoding string
	Body     []byte
}

// Load reads every vector in dir; it fails when there are fewer than min,
// which means the fixtures moved.
func Load(dir string, min int) ([]Vector, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, err
	}
	if len(files) < min {
		return nil, fmt.Errorf("found %d vectors in %s, want at least %d: did the fixtures move?", len(files), dir, min)
	}
	var vs []Vector
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		v, err := Parse(filepath.Base(f), data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// Parse reads one vector.
func Parse(name string, data []byte) (Vector, error) {
	v := Vector{Name: name, Pairs: map[string]string{}, Tokens: map[string]string{}}
	head, body, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return v, fmt.Errorf("no blank line after the header")
	}
	v.Body = body
	for _, line := range strings.Split(string(head), "\n") {
		k, val, ok := strings.Cut(line, ": ")
		if !ok {
			return v, fmt.Errorf("header line %q is not key: value", line)
		}
		switch k {
		case "expect":
			v.Expect = val
		case "rule":
			v.Rule = val
		case "comment":
			v.Comment = val
		case "encoding":
			v.Encoding = val
		case "lone":
			v.Lone = append(v.Lone, val)
		case "pair", "token":
			id, s, ok := strings.Cut(val, " ")
			if !ok {
				return v, fmt.Errorf("%s %q: want KEYID VALUE", k, val)
			}
			if k == "pair" {
				v.Pairs[id] = s
			} else {
				v.Tokens[id] = s
			}
		default:
			return v, fmt.Errorf("unknown header %q", k)
		}
	}
	if v.Expect != "finding" && v.Expect != "none" {
		return v, fmt.Errorf("expect %q: want finding or none", v.Expect)
	}
	if v.Expect == "finding" && len(v.Pairs)+len(v.Lone) == 0 {
		return v, fmt.Errorf("expect finding but no pair or lone line")
	}
	return v, nil
}

// Found is one key a scan of a vector reported.
type Found struct {
	Rule         string
	KeyID        string
	Secret       secret.Secret // zero: unpaired
	SessionToken secret.Secret
	Encodings    []string // of each place it was found ("" for plain text)
}

// Check returns what is wrong with found as the result of scanning v: a key
// ID not listed, a wrong secret or session token, a wrong rule or encoding,
// a listed key ID missing. Secrets appear in messages redacted.
func (v Vector) Check(found []Found) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, v.Comment+": "+fmt.Sprintf(format, args...)) }
	seen := map[string]bool{}
	lone := map[string]bool{}
	for _, f := range found {
		if v.Rule != "" && f.Rule != v.Rule {
			fail("%s has rule %q, want %q", f.KeyID, f.Rule, v.Rule)
		}
		if f.KeyID == "" {
			if !slices.Contains(v.Lone, f.Secret.Reveal()) {
				fail("unexpected secret without key ID %v", f.Secret)
			}
			lone[f.Secret.Reveal()] = true
			continue
		}
		want, ok := v.Pairs[f.KeyID]
		if !ok {
			fail("unexpected %s (secret %v)", f.KeyID, f.Secret)
			continue
		}
		seen[f.KeyID] = true
		switch {
		case want == "-" && !f.Secret.IsZero():
			fail("%s paired with %v, want unpaired", f.KeyID, f.Secret)
		case want != "-" && f.Secret.Reveal() != want:
			fail("%s paired with %v, want %v", f.KeyID, f.Secret, secret.New(want))
		}
		if tok, ok := v.Tokens[f.KeyID]; ok && f.SessionToken.Reveal() != tok {
			fail("%s has session token %v, want %v", f.KeyID, f.SessionToken, secret.New(tok))
		}
		for _, e := range f.Encodings {
			if e != v.Encoding {
				fail("%s found with encoding %q, want %q", f.KeyID, e, v.Encoding)
			}
		}
	}
	for id := range v.Pairs {
		if !seen[id] {
			fail("key ID %s not found", id)
		}
	}
	for _, s := range v.Lone {
		if !lone[s] {
			fail("secret without key ID %v not found", secret.New(s))
		}
	}
	return errs
}
