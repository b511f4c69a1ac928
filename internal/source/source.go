package source

import (
	"context"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/sourcegraph/conc/pool"
)

// Source is every origin keyburn scans: files and directories, standard
// input, a repository's whole history, the blobs commits or the index add.
// Each calls yield with every chunk of text to scan and its provenance.
//
// A source reads as fast as its origin allows — files with a pool of
// readers, history with several git processes — so yield is called from as
// many goroutines at once and must be safe for that; a chunk's data is
// valid during the call only. The source checks sizes (before reading,
// where it can), decodes text and leaves binary content out, counting in
// its Stats; what it skips or cannot read goes to rep and the rest goes on.
// Each returns ctx's error, or a failure of the source as a whole.
type Source interface {
	Each(ctx context.Context, rep Reporter, yield func(Chunk)) error
}

// Stats counts what a source read. Its fields may be read once Each has
// returned.
type Stats struct {
	Files   atomic.Int64 // files (or staged files) read
	Blobs   atomic.Int64 // git blobs read
	Binary  atomic.Int64 // git blobs left out as binary
	Bytes   atomic.Int64 // bytes of text scanned
	Allowed atomic.Int64 // files left out before reading (a path allowlist)
}

// Files is the files under Roots (files or directories), read by Workers
// readers at once.
type Files struct {
	Roots   []string
	Options FSOptions
	Workers int
	// Skip, when set, leaves a file out before it is read; such files are
	// counted in Stats.Allowed.
	Skip  func(File) bool
	Stats *Stats
	// Copies, when set, opens each archive's bytes once (ArchiveCopies).
	Copies *ArchiveCopies
}

// Each walks the roots and reads every file.
func (s Files) Each(ctx context.Context, rep Reporter, yield func(Chunk)) error {
	// Each worker's reader keeps its grown buffer for the whole walk (a
	// sync.Pool drops them at every GC, and regrowing them cost 8% of a
	// scan's CPU in copies).
	workers := max(1, s.Workers)
	readers := make(chan *Reader, workers)
	p := pool.New().WithMaxGoroutines(workers)
	walkErr := Walk(ctx, s.Roots, func(f File) {
		if s.Skip != nil && s.Skip(f) {
			s.Stats.Allowed.Add(1)
			return
		}
		p.Go(func() {
			if ctx.Err() != nil {
				return
			}
			var r *Reader
			select {
			case r = <-readers:
			default:
				r = NewReader(s.Options)
				r.copies = s.Copies
			}
			defer func() { readers <- r }()
			err := r.ReadFile(ctx, f, rep, func(c Chunk) error {
				s.Stats.Bytes.Add(int64(len(c.Data)))
				yield(c)
				return nil
			})
			if err != nil && ctx.Err() == nil {
				rep.Failed(err)
				return
			}
			s.Stats.Files.Add(1)
		})
	}, rep)
	p.Wait()
	return walkErr
}

// Stream is everything R yields (standard input), named Name in findings.
type Stream struct {
	R       io.Reader
	Name    string
	Options FSOptions
	Stats   *Stats
}

// Each reads the stream to its end. A read error is reported and ends it.
func (s Stream) Each(ctx context.Context, rep Reporter, yield func(Chunk)) error {
	// A read from a pipe or terminal blocks; on cancellation, a deadline in
	// the past ends it (regular files ignore this and never block long).
	if f, ok := s.R.(*os.File); ok {
		stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
		defer stop()
	}
	s.Stats.Files.Add(1)
	err := NewReader(s.Options).Read(ctx, s.R, Provenance{Path: s.Name}, rep, func(c Chunk) error {
		s.Stats.Bytes.Add(int64(len(c.Data)))
		yield(c)
		return nil
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		rep.Failed(err)
	}
	return nil
}

// History is every blob in a repository's object store, each once,
// reachable or not: by Procs git cat-file processes in parallel (Native),
// which scan as they read, or by go-git in one goroutine handing blobs to
// Workers. Git LFS pointers are left out. The commit graph read on the way
// is in Graph once Each has returned.
type History struct {
	Repo    *Repo
	Native  bool
	Procs   int
	Workers int
	MaxSize int64
	// ArchiveDepth is how deep archives are opened (FSOptions.ArchiveDepth).
	ArchiveDepth int
	// ArchiveMaxSize leaves larger archives closed (FSOptions.ArchiveMaxSize).
	ArchiveMaxSize int64
	SkipBinaries   bool // as FSOptions.SkipBinaries
	Stats          *Stats
	Graph          *Graph
}

// Each reads every blob.
func (s *History) Each(ctx context.Context, rep Reporter, yield func(Chunk)) error {
	blob := func(h plumbing.Hash, data []byte) {
		text, binary, why := Scannable(data, s.SkipBinaries)
		// An archive's members are named "!MEMBER": the engine puts the
		// blob's path in front once it knows it.
		if binary && OpensArchive(s.ArchiveDepth, s.ArchiveMaxSize, len(data)) && expandArchive(data, "", s.ArchiveDepth, s.ArchiveMaxSize, rep, func(member string, text []byte) {
			s.Stats.Bytes.Add(int64(len(text)))
			yield(Whole(text, Provenance{Blob: h, Path: member}))
		}) {
			return
		}
		if why != "" {
			s.Stats.Binary.Add(1)
			return
		}
		s.Stats.Blobs.Add(1)
		s.Stats.Bytes.Add(int64(len(text)))
		if !binary && IsLFSPointer(text) {
			return
		}
		yield(Whole(text, Provenance{Blob: h, Binary: binary}))
	}
	var err error
	if s.Native {
		s.Graph, err = s.Repo.NativeScan(ctx, s.Procs, s.MaxSize, rep, func(h plumbing.Hash, data []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			blob(h, data)
			return nil
		})
	} else {
		if s.Graph, err = s.Repo.LoadGraph(rep); err != nil {
			return err
		}
		p := pool.New().WithMaxGoroutines(max(1, s.Workers))
		err = s.Repo.Blobs(s.MaxSize, rep, func(h plumbing.Hash, data []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			p.Go(func() { blob(h, data) })
			return nil
		})
		p.Wait()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// CommitMessage is the path of findings in commit messages.
const CommitMessage = "(commit message)"

// Change is a blob added at a path.
type Change struct {
	Path string
	Blob plumbing.Hash
}

// ChangeSet is blobs added together — a commit's changes over its first
// parent, or the index's over HEAD — with what they share: the commit's
// provenance and message (none for the index).
type ChangeSet struct {
	Prov    Provenance
	Message string
	Changes []Change
}

// Changes is the blobs of change sets, in order, each blob read once (in
// the first set that adds it), its size checked from its header before it
// is read; and each set's message. AsFiles counts blobs as files and
// reports binary ones, as for the index.
type Changes struct {
	Repo           *Repo
	Sets           []ChangeSet
	MaxSize        int64
	AsFiles        bool
	ArchiveDepth   int   // as FSOptions.ArchiveDepth
	ArchiveMaxSize int64 // as FSOptions.ArchiveMaxSize
	SkipBinaries   bool  // as FSOptions.SkipBinaries
	Stats          *Stats
}

// Each reads the sets in order, from one goroutine.
func (s Changes) Each(ctx context.Context, rep Reporter, yield func(Chunk)) error {
	maxSize := s.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxFileSize
	}
	seen := map[plumbing.Hash]bool{}
	for _, set := range s.Sets {
		if err := ctx.Err(); err != nil {
			return err
		}
		if set.Message != "" {
			prov := set.Prov
			prov.Path = CommitMessage
			yield(Whole([]byte(set.Message), prov))
		}
		for _, c := range set.Changes {
			if seen[c.Blob] {
				continue
			}
			seen[c.Blob] = true
			data, err := s.Repo.Blob(c.Blob, maxSize)
			var tooBig *BlobTooLargeError
			switch {
			case errors.As(err, &tooBig):
				rep.Skipped(c.Path, tooBig.Error())
				continue
			case err != nil:
				rep.Failed(err)
				continue
			}
			text, binary, why := Scannable(data, s.SkipBinaries)
			if binary && OpensArchive(s.ArchiveDepth, s.ArchiveMaxSize, len(data)) && expandArchive(data, c.Path, s.ArchiveDepth, s.ArchiveMaxSize, rep, func(member string, text []byte) {
				s.Stats.Bytes.Add(int64(len(text)))
				prov := set.Prov
				prov.Path, prov.Blob = member, c.Blob
				yield(Whole(text, prov))
			}) {
				continue
			}
			switch {
			case why != "" && s.AsFiles:
				rep.Skipped(c.Path, why)
				continue
			case why != "":
				s.Stats.Binary.Add(1)
				continue
			case s.AsFiles:
				s.Stats.Files.Add(1)
			default:
				s.Stats.Blobs.Add(1)
			}
			s.Stats.Bytes.Add(int64(len(text)))
			prov := set.Prov
			prov.Path, prov.Blob, prov.Binary = c.Path, c.Blob, binary
			yield(Whole(text, prov))
		}
	}
	return nil
}
