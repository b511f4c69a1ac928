package engine

import (
	"bytes"
	"sort"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
)

// A binary's strings are often UTF-16LE: .NET keeps string literals so (its
// user-string heap), as do Windows resources. Their printable ASCII runs
// read "A\0K\0I\0A\0…", which the byte-wise scan of a binary never matches.
// wideMatches finds them only where an AWS prefix stands in that form, so
// other binaries pay one search per prefix.

// widePrefixes are the AWS key ID prefixes in UTF-16LE.
var widePrefixes = [][]byte{[]byte("A\x00K\x00I\x00A\x00"), []byte("A\x00S\x00I\x00A\x00"), []byte("A\x00B\x00I\x00A\x00"), []byte("A\x00C\x00C\x00A\x00")}

// hasWidePrefix reports whether data holds a wide prefix, in one search
// for their shared tail "A\0" after "I\0" or "C\0" (one pass over the
// binary instead of four: a pass per prefix cost 4% of the bench tree's
// scan).
func hasWidePrefix(data []byte) bool {
	for i := 0; ; {
		k := bytes.Index(data[i:], []byte("\x00A\x00"))
		if k < 0 {
			return false
		}
		k += i
		if k >= 5 {
			for _, p := range widePrefixes {
				if start := k + 3 - len(p); start >= 0 && bytes.Equal(data[start:k+3], p) {
					return true
				}
			}
		}
		i = k + 1
	}
}

// minWideRun is the shortest UTF-16LE string taken: a key ID's length.
const minWideRun = 20

// wideMatches scans the UTF-16LE strings of a binary chunk that holds a
// key ID prefix in that form. The strings are scanned together, one per
// line, so that an ID pairs with a secret beside it; a match is located at
// the first byte of its string, with the encoding "utf-16le".
func wideMatches(m *detect.Matcher, c source.Chunk) []finding.Match {
	if !c.Prov.Binary {
		return nil
	}
	if !hasWidePrefix(c.Data) {
		return nil
	}
	var doc bytes.Buffer
	var starts []int // byte offset in c.Data of each line of doc
	data := c.Data
	for i := 0; i+1 < len(data); {
		j := i
		for j+1 < len(data) && data[j+1] == 0 && data[j] >= 0x20 && data[j] < 0x7f {
			j += 2
		}
		if n := (j - i) / 2; n >= minWideRun && c.Owns(i) {
			starts = append(starts, i)
			for k := i; k < j; k += 2 {
				doc.WriteByte(data[k])
			}
			doc.WriteByte('\n')
		}
		if j == i {
			i++
		} else {
			i = j
		}
	}
	if len(starts) == 0 {
		return nil
	}
	text := doc.Bytes()
	inner := source.Chunk{Data: text, Line: 1, Column: 1, AtStart: true, AtEnd: true, OwnEnd: len(text), Prov: c.Prov}
	ms := plainMatches(m, inner, false)
	lines := newLiner(c.Data, c.Line, c.Column)
	at := func(docLine int) int { return starts[min(max(0, docLine-1), len(starts)-1)] }
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Location.Line < ms[j].Location.Line })
	for i := range ms {
		loc := &ms[i].Location
		if loc.SecretLine > 0 {
			loc.SecretLine, _ = lines.at(at(loc.SecretLine))
		}
		loc.Line, loc.Column = lines.at(at(loc.Line))
		loc.Encoding = "utf-16le"
	}
	return ms
}
