package finding

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Baseline is a set of accepted fingerprints: findings whose fingerprint is in
// it are not reported.
type Baseline map[string]bool

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseBaseline reads a baseline file, which is one of:
//
//   - a JSON report of keyburn (--format json): an array of objects with a
//     "fingerprint" field;
//   - a JSON Lines report (--format jsonl);
//   - plain text: one fingerprint per line; blank lines and lines starting
//     with # are ignored, and text after the fingerprint is a comment.
//
// Errors name the line.
func ParseBaseline(name string, data []byte) (Baseline, error) {
	b := Baseline{}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var recs []struct {
			Fingerprint string `json:"fingerprint"`
		}
		if err := json.Unmarshal(trimmed, &recs); err != nil {
			return nil, fmt.Errorf("baseline %s: not a keyburn JSON report (%s)", name, JSONErrorWhere(err))
		}
		for i, r := range recs {
			if !fingerprintRE.MatchString(r.Fingerprint) {
				// Never the content: a baseline a tree names could be any file.
				return nil, fmt.Errorf("baseline %s: entry %d: its fingerprint is not 64 hex digits", name, i)
			}
			b[r.Fingerprint] = true
		}
		return b, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "{") {
			var r struct {
				Fingerprint string `json:"fingerprint"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				return nil, fmt.Errorf("baseline %s:%d: not a JSON object with a fingerprint", name, n)
			}
			line = r.Fingerprint
		}
		fp, _, _ := strings.Cut(line, " ")
		if !fingerprintRE.MatchString(fp) {
			return nil, fmt.Errorf("baseline %s:%d: not a fingerprint (64 lower-case hex digits)", name, n)
		}
		b[fp] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("baseline %s: %w", name, err)
	}
	return b, nil
}

// Filter returns the findings not in the baseline and how many were.
func (b Baseline) Filter(fs []*Finding) (kept []*Finding, accepted int) {
	for _, f := range fs {
		if b[f.Fingerprint()] {
			accepted++
			continue
		}
		kept = append(kept, f)
	}
	return kept, accepted
}

// JSONErrorWhere says where JSON failed to parse, by offset, without
// quoting the text (a syntax error's message quotes a character).
func JSONErrorWhere(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("a syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("a %s where %s belongs, at byte %d", te.Value, te.Type, te.Offset)
	}
	return "it does not parse"
}
