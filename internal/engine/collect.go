package engine

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/treepath"
)

// collector is where every scan of the engine gathers its matches, and so
// where the rules on a match's path hold for every source at once: a match
// in a path the allowlist names is left out, and counted. Paths are those
// of the findings: relative to the repository root for git sources; for
// files, ScanPaths matches the path relative to the repository (or scanned)
// root before reading the file at all.
type collector struct {
	*finding.Collector
	m       *detect.Matcher
	allowed map[string]bool // paths left out
}

func newCollector(opts Options) *collector {
	return &collector{Collector: finding.NewCollector(), m: opts.Matcher, allowed: map[string]bool{}}
}

// Add adds a match unless its path is allowlisted.
func (c *collector) Add(m finding.Match) {
	if c.m.PathAllowed(m.Location.File) {
		c.allowed[m.Location.File] = true
		return
	}
	c.Collector.Add(m)
}

// finish puts the findings and the count of allowlisted paths in res.
func (c *collector) finish(res *Result) {
	res.Findings = c.Findings()
	res.AllowedPaths += int64(len(c.allowed))
}

// matchBase is what a scanned root's paths are matched relative to: the
// repository that holds it, or else the root itself (its directory, for a
// file).
func matchBase(root string) string {
	if base, ok := treepath.RepoRoot(root); ok {
		return base
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return root
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return filepath.Dir(abs)
	}
	return abs
}

// rootBase turns the paths Walk reaches under one root into paths relative
// to the root's match base, by their text alone: no system call per file
// (a stat per file cost 15% of a scan).
type rootBase struct {
	clean  string // the root as Walk's paths begin
	prefix string // the root relative to its base ("." for the base itself)
}

func newRootBase(root string) rootBase {
	return rootBase{clean: filepath.Clean(root), prefix: relPath(matchBase(root), root)}
}

// rel is path (reached from the root) relative to the base, slash-separated.
func (b rootBase) rel(path string) string {
	var below string // the part under the root, with a leading slash
	switch {
	case path == b.clean:
	case b.clean == ".":
		below = "/" + path // Walk joined "." away
	default:
		dir := b.clean
		if !strings.HasSuffix(dir, string(filepath.Separator)) {
			dir += string(filepath.Separator)
		}
		rest, ok := strings.CutPrefix(path, dir)
		if !ok {
			return filepath.ToSlash(path)
		}
		below = "/" + rest
	}
	below = filepath.ToSlash(below)
	if b.prefix == "." {
		return strings.TrimPrefix(below, "/")
	}
	return b.prefix + below
}

// relPath is path relative to base, slash-separated, for allowlists.
func relPath(base, path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	rel, err := filepath.Rel(base, abs)
	if err != nil {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(rel)
}
