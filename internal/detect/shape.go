package detect

import (
	"bytes"
	"strings"
)

// A secret is a whole token. A 40-character run is not a secret when it is
// a slice of something longer, reads as an identifier, or sits in a URL, an
// ARN or a path: on real histories these were CloudFormation logical IDs,
// class names, JWT signatures cut at '_' and pieces of S3 URLs.

// wholeSecret reports whether the token at t in data stands alone: no
// character a secret cannot border right beside it ('-', '_', '.' on either
// side; ':' after it), and, after a ':', not inside a URL or an ARN.
func wholeSecret(data []byte, t Span) bool {
	if t.Start > 0 {
		switch data[t.Start-1] {
		case '-', '_', '.':
			return false
		case ':':
			if inURLOrARN(data, t.Start-1) {
				return false
			}
		}
	}
	if t.End < len(data) {
		switch data[t.End] {
		case '-', '_', '.', ':':
			// A sentence may end right after a value ("… is X.") only
			// in prose, where keys do not pair; a '.' followed by a
			// letter or digit is part of a name.
			if data[t.End] == '.' && (t.End+1 == len(data) || !isWord(data[t.End+1])) {
				return true
			}
			return false
		}
	}
	return true
}

// wordContext is how far back the word holding a token is read.
const wordContext = 128

// inURLOrARN reports whether the ':' at i belongs to a URL (scheme://) or
// an ARN (arn:partition:…) that runs without a break up to it.
func inURLOrARN(data []byte, i int) bool {
	lo := i
	for lo > 0 && i-lo < wordContext && !bytes.ContainsRune([]byte(" \t\r\n\"'`=,;()[]{}<>"), rune(data[lo-1])) {
		lo--
	}
	word := bytes.ToLower(data[lo : i+min(3, len(data)-i)])
	return bytes.Contains(word, []byte("://")) || bytes.HasPrefix(word, []byte("arn:")) || bytes.Contains(word, []byte(":arn:"))
}

// identifierCover is the share of a token covered by words above which it
// reads as an identifier: ConfigServiceConfigChangedFunction8CB6DB60 is
// 85% words. A word is a run of letters, Capitalised or lower-case, of four
// or more, shaped like language: a vowel in four letters or more, never
// five consonants in a row. Over 2 million random secrets, 4 reach 70% (and
// only a quarter of random secrets lack both '+' and '/', which no
// identifier holds); a secret after a name such as aws_secret_access_key is
// never judged by its shape (TestIdentifierShapeSparesRandomSecrets).
const identifierCover = 0.75

// readsAsIdentifier reports whether v is mostly words, as class names,
// resource names and CloudFormation logical IDs are.
func readsAsIdentifier(v string) bool {
	if strings.ContainsAny(v, "+/") {
		return false // no identifier holds them; 72% of random secrets do
	}
	covered, words := 0, 0
	for i := 0; i < len(v); {
		j := letterRun(v, i)
		if j-i >= 4 && wordLike(v[i:j]) {
			covered += j - i
			words++
		}
		i = max(j, i+1)
	}
	return float64(covered) >= identifierCover*float64(len(v)) && (words >= 3 || covered*10 >= 9*len(v))
}

// wordLike reports whether a run of letters is shaped like a word.
func wordLike(w string) bool {
	vowels, consonants := 0, 0
	for i := 0; i < len(w); i++ {
		switch w[i] | 0x20 {
		case 'a', 'e', 'i', 'o', 'u', 'y':
			vowels++
			consonants = 0
		default:
			consonants++
			if consonants >= 5 {
				return false
			}
		}
	}
	return vowels*4 >= len(w)
}

// readsAsPath reports whether v is a path: three or more '/' between
// segments that are words or numbers (build/2024/06/releaseNotes…), as no
// random secret is (TestPathShapeSparesRandomSecrets). A path with a URL or
// ARN in front is caught by wholeSecret already.
func readsAsPath(v string) bool {
	if strings.Count(v, "/") < 3 || strings.Contains(v, "+") {
		return false
	}
	pathy := 0
	for _, seg := range strings.Split(v, "/") {
		if seg == "" {
			continue
		}
		if allDigits(seg) || len(seg) >= 3 && readsAsWords(seg) {
			pathy += len(seg)
		}
	}
	return pathy*10 >= 8*(len(v)-strings.Count(v, "/"))
}

// readsAsWords reports whether a path segment is made of words (CamelCase,
// lower case), with digits allowed only at its end (release2024).
func readsAsWords(seg string) bool {
	letters := strings.TrimRight(seg, "0123456789")
	if len(letters) < 3 {
		return false
	}
	for i := 0; i < len(letters); {
		j := letterRun(letters, i)
		if j-i < 2 || !wordLike(letters[i:j]) {
			return false
		}
		i = j
	}
	return true
}

// letterRun returns where the run of letters at s[i] ends: one capital,
// then lower case (Config, config); i when s[i] starts none.
func letterRun(s string, i int) int {
	j := i
	if j < len(s) && s[j] >= 'A' && s[j] <= 'Z' {
		j++
	}
	for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
		j++
	}
	return j
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// namingKeywords name a secret access key outright: they carry a pairing
// past the cap that proximity and the rule's generic keywords have.
var namingKeywords = []string{"secret_access_key", "secretaccesskey", "secret-access-key", "aws_secret", "awssecret"}

// Pairing caps. Beyond them a secret is not its ID's, however few others
// there are: the best of bad candidates is no pair.
//   - nearLines/nearBytes: without any keyword, a secret within a few
//     lines (an env group, a call's arguments, a small object);
//   - keywordLines/keywordBytes: after one of the rule's keywords
//     ("secret"), a credential block (a JSON or YAML object, an INI
//     section);
//   - namedBytes: after a naming keyword (secret_access_key …), anywhere
//     in the same file within this many bytes.
const (
	nearLines    = 6
	nearBytes    = 2 << 10
	keywordLines = 30
	keywordBytes = 8 << 10
	namedBytes   = 64 << 10
)

// withinCap reports whether a secret at s, with its keyword strength, may
// pair with the ID at id.
func withinCap(data []byte, id, s Span, keyword, named bool) bool {
	lo, hi := min(id.End, s.End), max(id.Start, s.Start)
	if hi < lo {
		lo, hi = hi, lo
	}
	gap := hi - lo
	switch {
	case named:
		return gap <= namedBytes
	case keyword:
		return gap <= keywordBytes && bytes.Count(data[lo:hi], []byte("\n")) <= keywordLines
	default:
		return gap <= nearBytes && bytes.Count(data[lo:hi], []byte("\n")) <= nearLines
	}
}

// ownerFieldLines is how many lines around a secret are read for the name
// of its own key ID field.
const ownerFieldLines = 3

// idFieldNames name a key ID's field (lower case).
var idFieldNames = [][]byte{[]byte("accesskeyid"), []byte("access_key_id"), []byte("access-key-id"), []byte("aws_access_key\""), []byte("aws_access_key=")}

// ownedElsewhere reports whether the secret at s sits in a credential block
// of its own: a key ID field is named within ownerFieldLines lines of it,
// and the ID at id is not there. Its key ID may be malformed, or
// allowlisted, or another ID: the secret is that block's, not free for an
// ID further away.
func ownedElsewhere(data []byte, id, s Span) bool {
	lo, hi := s.Start, s.End
	for n := 0; lo > 0 && n <= ownerFieldLines; lo-- {
		if data[lo-1] == '\n' {
			n++
		}
	}
	for n := 0; hi < len(data) && n <= ownerFieldLines; hi++ {
		if data[hi] == '\n' {
			n++
		}
	}
	if id.Start >= lo && id.End <= hi {
		return false // the ID is in the block itself
	}
	block := bytes.ToLower(data[lo:hi])
	for _, name := range idFieldNames {
		if bytes.Contains(block, name) {
			return true
		}
	}
	return false
}
