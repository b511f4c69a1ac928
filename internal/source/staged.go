package source

import (
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// StagedFile is a file whose staged content differs from HEAD's.
type StagedFile struct {
	Path string
	Blob plumbing.Hash
}

// IndexPaths returns the paths at which the index holds each blob; nil
// for a repository without an index (a bare one).
func (r *Repo) IndexPaths() map[plumbing.Hash][]string {
	idx, err := r.R.Storer.Index()
	if err != nil {
		return nil
	}
	out := map[plumbing.Hash][]string{}
	for _, e := range idx.Entries {
		if e.Mode != filemode.Submodule {
			out[e.Hash] = append(out[e.Hash], e.Name)
		}
	}
	return out
}

// Staged returns the files of the index whose blob differs from the one at
// the same path in HEAD's tree (all of them before the first commit). It
// reads the index and HEAD's trees only: no file of the work tree is hashed.
// Submodules and conflicted entries (stages 1–3) are left out.
func (r *Repo) Staged() ([]StagedFile, error) {
	idx, err := r.R.Storer.Index()
	if err != nil {
		return nil, fmt.Errorf("read the index: %w", err)
	}
	head := map[string]plumbing.Hash{}
	ref, err := r.R.Head()
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		// No commit yet: everything staged is new.
	case err != nil:
		return nil, fmt.Errorf("read HEAD: %w", err)
	default:
		c, err := r.R.CommitObject(ref.Hash())
		if err != nil {
			return nil, fmt.Errorf("read HEAD commit %s: %w", ref.Hash(), err)
		}
		t, err := c.Tree()
		if err != nil {
			return nil, fmt.Errorf("read HEAD tree: %w", err)
		}
		w := object.NewTreeWalker(t, true, nil)
		defer w.Close()
		for {
			name, e, err := w.Next()
			if err != nil {
				break // io.EOF at the end
			}
			if e.Mode != filemode.Dir {
				head[name] = e.Hash
			}
		}
	}
	var out []StagedFile
	for _, e := range idx.Entries {
		if e.Stage != 0 || e.Mode == filemode.Submodule {
			continue
		}
		if h, ok := head[e.Name]; ok && h == e.Hash {
			continue
		}
		out = append(out, StagedFile{Path: e.Name, Blob: e.Hash})
	}
	return out, nil
}
