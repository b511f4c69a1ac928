// Package source is where bytes come from, and the only package that reads
// git: files and directories, standard input, a repository's whole history
// (go-git, or parallel git cat-file processes), the blobs commits or the
// index add. Each origin is a Source that yields chunks of text with their
// provenance, and tells a Reporter about everything it could not read or
// chose to skip, so that nothing is dropped silently. It does not detect.
package source

import "github.com/go-git/go-git/v5/plumbing"

// Provenance says where a chunk came from, so that a finding can be located.
type Provenance struct {
	Path   string // slash-separated path of the file
	Commit string // git: the commit that added the blob
	Author string
	Date   string // RFC 3339
	Ref    string
	Blob   plumbing.Hash // git: the blob (zero for files)
	// Binary is true for a binary file or blob, scanned as it is (its
	// printable strings); lines are counted as grep -a would.
	Binary bool
}

// Chunk is a piece of an input with its place in it.
type Chunk struct {
	Data    []byte
	Offset  int64 // byte offset of Data[0] in the input
	Line    int   // 1-based line number of Data[0]
	Column  int   // 1-based column of Data[0] in its line (0 or 1: the line starts there)
	AtStart bool  // Data begins the input
	AtEnd   bool  // Data ends the input
	// Own is the part of Data this chunk answers for: a match that starts
	// there is reported by this chunk and no other. Chunks overlap; each owns
	// its half of each overlap, so every match is reported once, by a chunk
	// that holds at least half an overlap of context on both sides of it.
	OwnStart, OwnEnd int
	Prov             Provenance
}

// Owns reports whether a match starting at off belongs to this chunk.
func (c Chunk) Owns(off int) bool { return off >= c.OwnStart && off < c.OwnEnd }

// Reporter hears of inputs that were skipped or failed. Its methods may be
// called concurrently.
type Reporter interface {
	// Skipped is told of an input left out on purpose (binary, over the size
	// limit, not a regular file), with the reason.
	Skipped(path, reason string)
	// Failed is told of an input that could not be read; the run goes on.
	Failed(err error)
}

// Whole returns the chunk for a complete input held in memory.
func Whole(data []byte, prov Provenance) Chunk {
	return Chunk{Data: data, Line: 1, Column: 1, AtStart: true, AtEnd: true, OwnEnd: len(data), Prov: prov}
}
