package rules_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/rules"
)

// TestLoadWithTree: what a tree's file may say is taken, what only the
// operator may say is named and left out, and a broken tree file is a
// report, never a failure to load.
func TestLoadWithTree(t *testing.T) {
	root := t.TempDir()
	name := filepath.Join(root, "sub", ".keyburn.toml")
	operator := &rules.UserFile{Name: "op.toml", Text: []byte("[aws]\ndeny_accounts = ['111122223333']\n")}
	tests := []struct {
		name, tree  string
		ignored     string // joined Ignored
		err         string // in the report's Err
		allowPaths  int
		rules       int
		baselineRel string
	}{
		{name: "detection only", tree: "[allowlist]\npaths = ['^x/']\n[scan]\ndecode_depth = 1\nbaseline = 'b.txt'\n", allowPaths: 1, rules: 1, baselineRel: "sub/b.txt"},
		{name: "action sections", tree: "[aws]\nrole_name = 'evil'\ndeny_accounts = ['123456789012']\n[[notify.target]]\nkind = 'json'\nurl = 'https://x'\n[github]\nowners = ['o']\n",
			ignored: "[aws], [notify], [github]", rules: 1},
		{name: "an invalid value in [aws] is ignored with it", tree: "[aws]\nallow_accounts = ['nope']\n", ignored: "[aws]", rules: 1},
		{name: "a default rule", tree: "[[rule]]\nid = 'aws-access-key'\ndisabled = true\n", ignored: `rule "aws-access-key"`, rules: 1},
		{name: "a rule of its own", tree: "[[rule]]\nid = 'corp'\nkey_id = 'CORP[A-Z]{12}'\nkeywords = ['CORP']\n", rules: 2},
		{name: "baseline climbing out", tree: "[scan]\nbaseline = '../../etc/passwd'\n", ignored: "[scan] baseline (a path outside the tree)", rules: 1},
		{name: "baseline absolute", tree: "[scan]\nbaseline = '/proc/self/environ'\n", ignored: "[scan] baseline (a path outside the tree)", rules: 1},
		{name: "baseline up and back in", tree: "[scan]\nbaseline = '../sub/b.txt'\n", rules: 1, baselineRel: "sub/b.txt"},
		{name: "malformed", tree: "[allowlist\n", err: ".keyburn.toml:1", rules: 1},
		{name: "bad regexp", tree: "[allowlist]\npaths = ['(']\n", err: "allowlist paths", rules: 1},
		{name: "bad size", tree: "[scan]\nmax_file_size = 'lots'\n", err: "max_file_size", rules: 1},
		{name: "unknown key", tree: "[scan]\nbasline = 'x'\n", err: "unknown key", rules: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, rep, err := rules.LoadWithTree(rules.DefaultFS(), operator, &rules.TreeFile{Name: name, Text: []byte(tt.tree), Root: root})
			if err != nil {
				t.Fatalf("LoadWithTree: %v", err)
			}
			if got := strings.Join(rep.Ignored, ", "); !strings.Contains(got, tt.ignored) || (tt.ignored == "") != (got == "") {
				t.Errorf("ignored %q, want %q", got, tt.ignored)
			}
			if (rep.Err == nil) != (tt.err == "") || rep.Err != nil && !strings.Contains(rep.Err.Error(), tt.err) {
				t.Errorf("report error %v, want %q", rep.Err, tt.err)
			}
			if strings.Join(set.AWS.DenyAccounts, ",") != "111122223333" || set.AWS.RoleName != "" || len(set.Notify) != 0 || len(set.GitHub.Owners) != 0 {
				t.Errorf("the tree reached how keyburn acts: %+v, notify %v, github %v", set.AWS, set.Notify, set.GitHub)
			}
			if len(set.AllowPaths) != tt.allowPaths || len(set.Rules) != tt.rules {
				t.Errorf("%d path allowlists and %d rules, want %d and %d", len(set.AllowPaths), len(set.Rules), tt.allowPaths, tt.rules)
			}
			wantBase := ""
			if tt.baselineRel != "" {
				wantBase = filepath.Join(root, tt.baselineRel)
			}
			if rep.Baseline != wantBase || (tt.err == "" && set.Scan.Baseline != wantBase) {
				t.Errorf("baseline %q (set %q), want %q", rep.Baseline, set.Scan.Baseline, wantBase)
			}
		})
	}
}

// FuzzInsideTree: whatever path a tree names, an accepted one resolves
// under the root by its name.
func FuzzInsideTree(f *testing.F) {
	for _, p := range []string{"b.txt", "../b", "../../x", "/etc/passwd", "a/../../b", "./a/./b", "..", ".", "a/..", "\x00"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		root := "/r/oot"
		rel, ok := rules.InsideTree(root, "/r/oot/sub", p)
		if !ok {
			return
		}
		full := filepath.Join(root, rel)
		if full != root && !strings.HasPrefix(full, root+"/") {
			t.Fatalf("InsideTree(%q) = %q, which is %s, outside %s", p, rel, full, root)
		}
		if want := filepath.Join("/r/oot/sub", p); want != full {
			t.Fatalf("InsideTree(%q) = %q, which is %s, not where the tree pointed (%s)", p, rel, full, want)
		}
	})
}
