package rules

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/keyburn/keyburn/internal/treepath"
)

// TreeFile is a .keyburn.toml found in a scanned tree: the tree's own voice,
// which is hostile input like every other file of the tree. It may tune what
// is detected (rules of its own, allowlists, [scan] limits and a baseline
// inside the tree); it may never tune what keyburn does. [aws], [notify] and
// [github] in it are ignored, and it cannot disable or replace a default
// rule. It is a type apart from UserFile, the operator's file, so that the
// two are never mixed by mistake.
type TreeFile struct {
	Name string // the path it was read from, for messages
	Text []byte
	// Root is the directory the tree's paths are confined to (the
	// repository or scanned directory the file belongs to). A [scan]
	// baseline must resolve inside it.
	Root string
}

// TreeReport says what of a tree's file was not taken, and why.
type TreeReport struct {
	// Ignored names what the tree said that only the operator may say,
	// one entry a section or setting: "[aws]", "[notify]", "rule
	// \"aws-access-key\" (a default rule)", "[scan] baseline".
	Ignored []string
	// Err is why the tree's file was not used at all (malformed TOML, an
	// invalid value): the scan then runs with the defaults and the
	// operator's file alone.
	Err error
	// Baseline is the baseline the tree's [scan] names, made absolute
	// ("" for none). It is inside the tree by its name; the reader checks
	// that no symbolic link takes it out.
	Baseline string
}

// Warning is the one line that tells the operator what was ignored, or "".
func (r TreeReport) Warning(name string) string {
	if len(r.Ignored) == 0 {
		return ""
	}
	return fmt.Sprintf("%s is the scanned tree's: ignored %s (how keyburn acts is set only with --config or %s)",
		name, strings.Join(r.Ignored, ", "), OperatorConfigHint)
}

// OperatorConfigHint names the operator's own config path in messages.
const OperatorConfigHint = "$XDG_CONFIG_HOME/keyburn/config.toml"

// LoadWithTree reads the defaults, the operator's file (may be nil) and a
// scanned tree's file (may be nil). The tree's file is taken only for
// detection; what it may not say is left out and named in the report. A
// tree's file that does not decode or compile is reported, never fatal: the
// set is then built without it. The error is the operator's: their file, or
// the defaults, did not load.
func LoadWithTree(fsys fs.FS, operator *UserFile, tree *TreeFile) (*Set, TreeReport, error) {
	var rep TreeReport
	if tree == nil {
		set, err := Load(fsys, operator)
		return set, rep, err
	}
	defaults, err := defaultSources(fsys)
	if err != nil {
		return nil, rep, err
	}
	srcs := defaults
	if operator != nil {
		f, err := Decode(operator.Name, operator.Text)
		if err != nil {
			return nil, rep, err
		}
		srcs = append(srcs, source{name: operator.Name, text: operator.Text, file: f})
	}
	withoutTree := slices.Clip(srcs)
	f, err := Decode(tree.Name, tree.Text)
	if err != nil {
		rep.Err = err
		set, err := compile(withoutTree)
		return set, rep, err
	}
	taken, ignored, err := treeSubset(f, tree, defaults)
	rep.Ignored = ignored
	if err != nil {
		rep.Err = err
		set, err := compile(withoutTree)
		return set, rep, err
	}
	set, err := compile(append(withoutTree, source{name: tree.Name, text: tree.Text, file: taken}))
	if err == nil && taken.Scan != nil {
		rep.Baseline = taken.Scan.Baseline
	}
	if err != nil {
		// The tree's part is what failed: the operator's alone loaded
		// before it was added.
		set2, err2 := compile(withoutTree)
		if err2 != nil {
			return nil, rep, err2
		}
		rep.Err = err
		return set2, rep, nil
	}
	return set, rep, nil
}

// treeSubset keeps what a tree's file may say.
func treeSubset(f File, tree *TreeFile, defaults []source) (File, []string, error) {
	var ignored []string
	if f.AWS != nil {
		ignored = append(ignored, "[aws]")
	}
	if f.Notify != nil {
		ignored = append(ignored, "[notify]")
	}
	if f.GitHub != nil {
		ignored = append(ignored, "[github]")
	}
	taken := File{Allowlist: f.Allowlist}
	isDefault := map[string]bool{}
	for _, d := range defaults {
		for _, r := range d.file.Rules {
			isDefault[r.ID] = true
		}
	}
	for _, r := range f.Rules {
		if isDefault[r.ID] {
			ignored = append(ignored, fmt.Sprintf("rule %q (a default rule: a tree adds rules, it does not disable or replace one)", r.ID))
			continue
		}
		taken.Rules = append(taken.Rules, r)
	}
	if sc := f.Scan; sc != nil {
		c := *sc
		if c.Baseline != "" {
			rel, ok := InsideTree(tree.Root, filepath.Dir(tree.Name), c.Baseline)
			if !ok {
				ignored = append(ignored, "[scan] baseline (a path outside the tree)")
				c.Baseline = ""
			} else {
				root, _ := filepath.Abs(tree.Root) // InsideTree made it absolute once
				c.Baseline = filepath.Join(root, rel)
			}
		}
		if c.MaxFileSize != "" {
			if n, err := humanize.ParseBytes(c.MaxFileSize); err != nil || n == 0 {
				return File{}, ignored, &Error{File: tree.Name, Line: 0, Err: fmt.Errorf("scan: max_file_size %q: want a size such as 10MB or 1GiB", c.MaxFileSize)}
			}
		}
		taken.Scan = &c
	}
	return taken, ignored, nil
}

// InsideTree resolves path, as a tree names it relative to dir (itself under
// root), and reports it relative to root when it stays inside root by its
// name alone: an absolute path, or one whose ".." climbs out of root, is
// refused. Symbolic links are the reader's to check (the file does not have
// to exist yet).
func InsideTree(root, dir, path string) (string, bool) {
	if path == "" || filepath.IsAbs(path) || filepath.VolumeName(path) != "" || strings.ContainsRune(path, 0) {
		return "", false
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", false
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	full := filepath.Join(absDir, path)
	if !treepath.Within(absRoot, full) {
		return "", false
	}
	rel, err := filepath.Rel(absRoot, full)
	if err != nil {
		return "", false
	}
	return rel, true
}
