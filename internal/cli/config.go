package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/notify"
	"github.com/keyburn/keyburn/internal/treepath"
	"github.com/keyburn/keyburn/rules"
)

// configFileName is a scanned tree's own rules file, picked up without
// --config. It is the tree's voice: detection only (rules.TreeFile).
const configFileName = ".keyburn.toml"

// operatorConfigPath is the operator's own config file, read when --config
// is not given: $XDG_CONFIG_HOME/keyburn/config.toml, or
// ~/.config/keyburn/config.toml. It may say everything --config may.
func operatorConfigPath() string {
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

// loaded is what the config files resolve to.
type loaded struct {
	set      *rules.Set
	tree     string // the tree's file, "" for none
	treeRoot string // the directory the tree's paths are confined to
	// treeBaseline is the baseline the tree's [scan] names (inside
	// treeRoot by name; read only through source.InsideRoot).
	treeBaseline string
}

// loadRules reads the defaults, the operator's file (--config, else the
// operator's own config path when it exists) and, without --config, the
// scanned tree's .keyburn.toml. A tree's file is taken for detection only:
// what it may not say is named in one warning, and a tree's file that is
// malformed is a problem of the tree, reported (and counted by the exit
// code), never a reason not to scan.
func (c *common) loadRules(u *ui, dirHint string) (*loaded, error) {
	var l loaded
	var operator *rules.UserFile
	path := c.config
	if path == "" {
		if p := operatorConfigPath(); p != "" {
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
		u.debugf("rules: defaults and %s", path)
	}
	var tree *rules.TreeFile
	if c.config == "" {
		if p, root := findConfig(dirHint); p != "" {
			text, err := readTreeFile(root, p)
			if err != nil {
				u.problem("%s: %v: scanned with the defaults and the operator's settings", p, err)
			} else {
				tree = &rules.TreeFile{Name: p, Text: text, Root: root}
				l.tree, l.treeRoot = p, root
				u.debugf("rules: the scanned tree's %s (detection only)", p)
			}
		}
	}
	set, rep, err := rules.LoadWithTree(rules.DefaultFS(), operator, tree)
	if err != nil {
		return nil, err
	}
	if w := rep.Warning(l.tree); w != "" {
		u.errorf("%s", w)
	}
	if rep.Err != nil {
		u.problem("%v: the scanned tree's %s is not used; scanned with the defaults and the operator's settings", rep.Err, configFileName)
		l.tree = ""
	}
	l.set = set
	if l.tree != "" {
		l.treeBaseline = rep.Baseline
	}
	return &l, nil
}

// readTreeFile reads a file a tree holds, refusing one reached through a
// symbolic link that leaves root, one that is not a regular file, and
// anything over maxTreeFile (no config or baseline is that large).
func readTreeFile(root, path string) ([]byte, error) {
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
	if fi.Size() > maxTreeFile {
		return nil, fmt.Errorf("%d bytes, over the %d-byte limit for a config or baseline", fi.Size(), maxTreeFile)
	}
	return io.ReadAll(io.LimitReader(f, maxTreeFile))
}

// maxTreeFile bounds a config or baseline file read from a scanned tree.
const maxTreeFile = 16 << 20

// readBaseline reads the baseline: the operator's (--baseline, or [scan]
// baseline in the operator's file) from anywhere, the tree's only from
// inside the tree. A tree's baseline that cannot be read is a problem of
// the tree: reported, and the scan goes on without it.
func (c *common) readBaseline(u *ui, l *loaded) (finding.Baseline, error) {
	if c.baseline == "" {
		return nil, nil
	}
	fromTree := l.treeBaseline != "" && c.baseline == l.treeBaseline
	var data []byte
	var err error
	if fromTree {
		data, err = readTreeFile(l.treeRoot, c.baseline)
	} else {
		data, err = os.ReadFile(c.baseline)
	}
	if err != nil {
		if fromTree {
			u.problem("baseline %s, named by the scanned tree's %s: %v: scanned without it", c.baseline, configFileName, err)
			return nil, nil
		}
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	b, err := finding.ParseBaseline(c.baseline, data)
	if err != nil && fromTree {
		u.problem("%v: scanned without it", err)
		return nil, nil
	}
	return b, err
}

// notifyTargets reads the [notify] targets, from the operator's file only
// (a tree's [notify] never reaches the set: rules.TreeFile).
func (c *common) notifyTargets(set *rules.Set) ([]notify.Target, error) {
	if len(set.Notify) == 0 {
		return nil, nil
	}
	return notify.Targets(set.Notify, nil)
}

// findConfig looks for .keyburn.toml from start up to the root of the
// repository that holds it (or only in start, outside a repository), so
// that a scan from a subdirectory or by an absolute path uses the same
// rules as one from the root. It returns "" when there is none, and the
// directory the tree's paths are confined to: the repository's root, or
// start outside a repository.
func findConfig(start string) (path, root string) {
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
		p := filepath.Join(dir, configFileName)
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
