// Package source is where bytes come from: files and directories, standard
// input, and (in later files) git history. It hands the detector chunks of
// bytes with their provenance, and tells a Reporter about everything it could
// not read or chose to skip, so that nothing is dropped silently.
package source

// Provenance says where a chunk came from, so that a finding can be located.
type Provenance struct {
	Path   string // slash-separated path of the file
	Commit string // git: the commit that added the blob
	Author string
	Date   string // RFC 3339
	Ref    string
}

// Chunk is a piece of an input with its place in it.
type Chunk struct {
	Data    []byte
	Offset  int64 // byte offset of Data[0] in the input
	Line    int   // 1-based line number of Data[0]
	AtStart bool  // Data begins the input
	AtEnd   bool  // Data ends the input
	Prov    Provenance
}

// Reporter hears of inputs that were skipped or failed. Its methods may be
// called concurrently.
type Reporter interface {
	// Skipped is told of an input left out on purpose (binary, over the size
	// limit, not a regular file), with the reason.
	Skipped(path, reason string)
	// Failed is told of an input that could not be read; the run goes on.
	Failed(err error)
}
