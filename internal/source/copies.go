package source

import (
	"crypto/sha256"
	"slices"
	"strings"
	"sync"
)

// ArchiveCopies remembers the archives a scan of files has opened, by their
// bytes, so that a copy of one is not opened again: what the first holds,
// the copy holds too, and the engine reports the first's findings again
// under the copy's path (Copy). Trees hold many copies of one archive (the
// same gradle-wrapper.jar in every project, a vendored or copied tree's
// test fixtures): inflating each once is what keeps opening archives by
// default cheap. Its methods may be called concurrently.
type ArchiveCopies struct {
	mu     sync.Mutex
	first  map[[sha256.Size]byte]string
	copies []Copy
	notes  map[string][]Note // by the path of an archive opened
}

// Note is what was said of an archive opened, or of one of its members
// (Reporter.Skipped): a copy of the archive is reported with the same.
type Note struct{ Path, Reason string }

// Copy says that the archive at Path holds the same bytes as the one at Of,
// which was opened in its place.
type Copy struct{ Path, Of string }

// claim returns "" when the archive data (at path) is the first with its
// bytes, to be opened; else the path of that first one, and the copy is
// recorded.
func (a *ArchiveCopies) claim(data []byte, path string) (of string) {
	sum := sha256.Sum256(data)
	a.mu.Lock()
	defer a.mu.Unlock()
	if of, ok := a.first[sum]; ok {
		a.copies = append(a.copies, Copy{Path: path, Of: of})
		return of
	}
	if a.first == nil {
		a.first = map[[sha256.Size]byte]string{}
	}
	a.first[sum] = path
	return ""
}

// Copies returns the copies recorded, by path.
func (a *ArchiveCopies) Copies() []Copy {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.copies)
	slices.SortFunc(out, func(x, y Copy) int { return strings.Compare(x.Path, y.Path) })
	return out
}

// Notes returns what was reported skipped of the archive opened at path
// (itself, or its members), in order.
func (a *ArchiveCopies) Notes(path string) []Note {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.notes[path])
}

// noting returns a Reporter that tells rep, and keeps for Notes what it
// is told of the archive at path as skipped.
func (a *ArchiveCopies) noting(path string, rep Reporter) Reporter {
	return noter{rep: rep, path: path, a: a}
}

type noter struct {
	rep  Reporter
	path string
	a    *ArchiveCopies
}

func (n noter) Skipped(path, reason string) {
	n.a.mu.Lock()
	if n.a.notes == nil {
		n.a.notes = map[string][]Note{}
	}
	n.a.notes[n.path] = append(n.a.notes[n.path], Note{Path: path, Reason: reason})
	n.a.mu.Unlock()
	n.rep.Skipped(path, reason)
}

func (n noter) Failed(err error) { n.rep.Failed(err) }

// Rename returns path p of the archive at c.Of or of one of its members
// (OF!MEMBER) as the copy's: PATH or PATH!MEMBER; ok is false when p is
// neither.
func (c Copy) Rename(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, c.Of)
	if !ok || rest != "" && !strings.HasPrefix(rest, "!") {
		return "", false
	}
	return c.Path + rest, true
}
