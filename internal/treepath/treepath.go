// Package treepath is the one rule for paths a scanned tree names or holds
// (a link, a config, a baseline): inside the tree's root, by name and once
// its links are resolved, or not read. It imports nothing of keyburn's and
// nothing heavy, so that every entry (the pre-commit hook's lean one too)
// applies the same rule.
package treepath

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// InsideRoot resolves path's symbolic links and returns the real path when
// it lies inside root (itself resolved); otherwise an error saying that it
// leaves the root. It is the one rule for every path a scanned tree names
// or holds: a link, a config, a baseline.
func InsideRoot(root, path string) (string, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	if !Within(realRoot, real) {
		return "", &OutsideRootError{Path: path, Root: root}
	}
	return real, nil
}

// OutsideRootError is a path that leads out of the scanned root.
type OutsideRootError struct{ Path, Root string }

func (e *OutsideRootError) Error() string {
	return fmt.Sprintf("%s leads outside %s (a symbolic link or a path out of the tree): not read", e.Path, e.Root)
}

// Within reports whether path is root or under it, by name; both absolute
// and clean. The one test of "inside the tree" for every caller.
func Within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// RepoRoot returns the root of the git work tree (or bare repository) that
// holds path, walking up from it; ok is false when there is none.
func RepoRoot(path string) (string, bool) {
	dir, err := filepath.Abs(path)
	if err != nil {
		return "", false
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		dir = filepath.Dir(dir)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}
