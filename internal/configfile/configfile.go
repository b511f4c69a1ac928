// Package configfile finds and reads keyburn's rules files: the operator's
// (--config, else $XDG_CONFIG_HOME/keyburn/config.toml) and a scanned
// tree's .keyburn.toml, which is read only from inside the tree and may
// only tune detection (rules.TreeFile). The keyburn command and the
// pre-commit hook's lean entry both load rules through it, so that they
// load the same ones.
package configfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keyburn/keyburn/internal/treepath"
	"github.com/keyburn/keyburn/rules"
)

// TreeName is a scanned tree's own rules file, picked up without --config.
// It is the tree's voice: detection only (rules.TreeFile).
const TreeName = ".keyburn.toml"

// OperatorPath is the operator's own config file, read when --config is not
// given: $XDG_CONFIG_HOME/keyburn/config.toml, or
// ~/.config/keyburn/config.toml. It may say everything --config may.
func OperatorPath() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "keyburn", "config.toml")
}

// Teller hears what loading says: Debugf for -v, Warnf for a warning, and
// Problemf for something wrong in the scanned tree (scanned anyway, and
// counted by the exit code).
type Teller interface {
	Debugf(format string, args ...any)
	Warnf(format string, args ...any)
	Problemf(format string, args ...any)
}

// Loaded is what the config files resolve to.
type Loaded struct {
	Set      *rules.Set
	Tree     string // the tree's file, "" for none
	TreeRoot string // the directory the tree's paths are confined to
	// TreeBaseline is the baseline the tree's [scan] names (inside
	// TreeRoot by name; read only through ReadTree).
	TreeBaseline string
}

// Load reads the defaults, the operator's file (explicit, else the
// operator's own config path when it exists) and, without explicit, the
// .keyburn.toml of the tree dirHint is in. A tree's file is taken for
// detection only: what it may not say is named in one warning, and a tree's
// file that is malformed is a problem of the tree, told, never a reason not
// to scan.
func Load(explicit, dirHint string, t Teller) (*Loaded, error) {
	var l Loaded
	var operator *rules.UserFile
	path := explicit
	if path == "" {
		if p := OperatorPath(); p != "" {
			if _, err := os.Stat(p); err == nil {
				path = p
			}
		}
	}
	if path != "" {
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		operator = &rules.UserFile{Name: path, Text: text}
		t.Debugf("rules: defaults and %s", path)
	}
	var tree *rules.TreeFile
	if explicit == "" {
		if p, root := FindTree(dirHint); p != "" {
			text, err := ReadTree(root, p)
			if err != nil {
				t.Problemf("%s: %v: scanned with the defaults and the operator's settings", p, err)
			} else {
				tree = &rules.TreeFile{Name: p, Text: text, Root: root}
				l.Tree, l.TreeRoot = p, root
				t.Debugf("rules: the scanned tree's %s (detection only)", p)
			}
		}
	}
	set, rep, err := rules.LoadWithTree(rules.DefaultFS(), operator, tree)
	if err != nil {
		return nil, err
	}
	if w := rep.Warning(l.Tree); w != "" {
		t.Warnf("%s", w)
	}
	if rep.Err != nil {
		t.Problemf("%v: the scanned tree's %s is not used; scanned with the defaults and the operator's settings", rep.Err, TreeName)
		l.Tree = ""
	}
	l.Set = set
	if l.Tree != "" {
		l.TreeBaseline = rep.Baseline
	}
	return &l, nil
}

// ReadTree reads a file a tree holds, refusing one reached through a
// symbolic link that leaves root, one that is not a regular file, and
// anything over MaxTreeFile (no config or baseline is that large).
func ReadTree(root, path string) ([]byte, error) {
	real, err := treepath.InsideRoot(root, path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if fi.Size() > MaxTreeFile {
		return nil, fmt.Errorf("%d bytes, over the %d-byte limit for a config or baseline", fi.Size(), MaxTreeFile)
	}
	return io.ReadAll(io.LimitReader(f, MaxTreeFile))
}

// MaxTreeFile bounds a config or baseline file read from a scanned tree.
const MaxTreeFile = 16 << 20

// FindTree looks for .keyburn.toml from start up to the root of the
// repository that holds it (or only in start, outside a repository), so
// that a scan from a subdirectory or by an absolute path uses the same
// rules as one from the root. It returns "" when there is none, and the
// directory the tree's paths are confined to: the repository's root, or
// start outside a repository.
func FindTree(start string) (path, root string) {
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", ""
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		dir = filepath.Dir(dir)
	}
	top, inRepo := treepath.RepoRoot(dir)
	root = dir
	if inRepo {
		root = top
	}
	for {
		p := filepath.Join(dir, TreeName)
		if _, err := os.Lstat(p); err == nil {
			return p, root
		} else if !errors.Is(err, fs.ErrNotExist) {
			return p, root // reported when read
		}
		parent := filepath.Dir(dir)
		if !inRepo || dir == top || parent == dir {
			return "", ""
		}
		dir = parent
	}
}
