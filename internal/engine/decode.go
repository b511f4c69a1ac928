package engine

import (
	"bytes"
	"path"
	"sort"
	"strings"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
)

// decodedMatches scans what the encoded runs of c decode to (see
// detect.Matcher.Encoded), and what those decode to in turn, depth layers
// in all. The decoded runs of a chunk are scanned together, one per line
// and each after the name it was given (`AWS_SECRET_ACCESS_KEY: …`), so that
// an encoded key ID pairs with an encoded secret beside it and a secret
// keeps its keyword. A match is located at the start of the encoded text
// it came from, with the encoding noted. With all, every long base64 run
// is decoded, not only those that show a key ID's encoded form.
func decodedMatches(m *detect.Matcher, c source.Chunk, depth int, all bool) []finding.Match {
	encs := m.Encoded(detect.Chunk{Data: c.Data, AtStart: c.AtStart, AtEnd: c.AtEnd}, all)
	if len(encs) == 0 {
		return nil
	}
	var doc bytes.Buffer
	var segs []segment
	line := 1
	for _, e := range encs {
		if !c.Owns(e.Span.Start) {
			continue
		}
		segs = append(segs, segment{enc: e, line: line})
		if e.Name != "" {
			doc.WriteString(e.Name + ": ")
		}
		doc.Write(e.Data)
		doc.WriteByte('\n')
		line += bytes.Count(e.Data, []byte("\n")) + 1
	}
	if len(segs) == 0 {
		return nil
	}
	data := doc.Bytes()
	inner := source.Chunk{Data: data, Line: 1, Column: 1, AtStart: true, AtEnd: true, OwnEnd: len(data), Prov: c.Prov}
	ms := plainMatches(m, inner, true)
	if depth > 1 {
		ms = append(ms, decodedMatches(m, inner, depth-1, true)...)
	}
	if len(ms) == 0 {
		return nil
	}
	lines := newLiner(c.Data, c.Line, c.Column)
	at := func(docLine int) segment {
		i := sort.Search(len(segs), func(i int) bool { return segs[i].line > docLine }) - 1
		return segs[max(0, i)]
	}
	for i := range ms {
		loc := &ms[i].Location
		s := at(loc.Line)
		if loc.Encoding == "" {
			loc.Encoding = s.enc.Kind
		} else {
			loc.Encoding = s.enc.Kind + ">" + loc.Encoding
		}
		if loc.SecretLine > 0 {
			loc.SecretLine, _ = lines.at(at(loc.SecretLine).enc.Span.Start)
		}
		loc.Line, loc.Column = lines.at(s.enc.Span.Start)
	}
	return ms
}

// segment is one decoded run in the text decodedMatches scans, starting at
// line of that text.
type segment struct {
	enc  detect.Encoded
	line int
}

// decodeAllMax is the largest configuration file whose every base64 run is
// decoded: credentials sit in small files, and large JSON and YAML are
// data (fixtures, dashboards, lock files), whose runs cost time to decode
// and hold nothing. Larger files are decoded where a run shows a key ID.
const decodeAllMax = 256 << 10

// looksConfig reports whether text starts as configuration does, for
// blobs of a history, whose paths are not known when they are scanned, and
// files whose names say nothing: its first line that is not blank or a
// comment opens JSON ({, [), a YAML document (---), an INI section ([), or
// sets a key (KEY=…, key: …). Source code starts otherwise (package,
// import, #include, a shebang, a comment).
func looksConfig(data []byte) bool {
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data[:min(len(data), 4096)], []byte("\n"))
		data = data[min(len(data), len(line)+1):]
		if len(rest) == 0 && len(line) == 4096 {
			return false
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' && !bytes.HasPrefix(line, []byte("#!")) {
			continue
		}
		switch line[0] {
		case '{', '[':
			return true
		}
		if bytes.HasPrefix(line, []byte("---")) {
			return true
		}
		i := 0
		for i < len(line) && (line[i] == '_' || line[i] == '-' || line[i] == '.' || line[i] >= 'a' && line[i] <= 'z' || line[i] >= 'A' && line[i] <= 'Z' || line[i] >= '0' && line[i] <= '9') {
			i++
		}
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		return i > 0 && i < len(line) && (line[i] == '=' || line[i] == ':' && (i+1 == len(line) || line[i+1] == ' '))
	}
	return false
}

// configLike reports whether a path names a configuration file, where every
// long base64 run is decoded: such files carry base64 payloads on purpose
// (Kubernetes Secrets, docker and npm auth, Helm values) and are a small
// part of any tree.
func configLike(p string) bool {
	base := strings.ToLower(path.Base(p))
	if i := strings.LastIndexByte(base, '!'); i >= 0 { // a member of an archive
		base = base[i+1:]
	}
	switch path.Ext(base) {
	case ".yaml", ".yml", ".json", ".env", ".ini", ".cfg", ".conf", ".toml", ".properties",
		".tf", ".tfvars", ".xml", ".plist", ".npmrc", ".dockercfg", ".config", ".secret", ".secrets":
		return true
	}
	return strings.HasPrefix(base, ".env") || base == "credentials" || base == "config" || base == ".npmrc" || base == ".dockercfg"
}
