package configfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadTree: a tree's config (or baseline) is read only from inside the
// tree: a link that leaves the root is refused, as is anything but a
// regular file, or a file over the limit.
func TestReadTree(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "tree")
	outside := filepath.Join(base, "home")
	for _, d := range []string{root, outside, filepath.Join(root, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "own.toml"), "[allowlist]\n")
	write(filepath.Join(outside, "operator.toml"), "[allowlist]\npaths = ['.*']\n")
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(outside, "operator.toml"), "out.toml")
	link("own.toml", "in.toml")
	link("../../home", "sub/away")
	big, err := os.Create(filepath.Join(root, "big.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(MaxTreeFile + 1); err != nil {
		t.Fatal(err)
	}
	big.Close()

	for _, tt := range []struct {
		name, path, want, err string
	}{
		{name: "a regular file", path: "own.toml", want: "[allowlist]\n"},
		{name: "a link inside the tree", path: "in.toml", want: "[allowlist]\n"},
		{name: "a link out of the tree", path: "out.toml", err: "outside"},
		{name: "through a linked directory out of the tree", path: "sub/away/operator.toml", err: "outside"},
		{name: "a directory", path: "sub", err: "not a regular file"},
		{name: "too large", path: "big.toml", err: "limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadTree(root, filepath.Join(root, tt.path))
			switch {
			case tt.err == "" && (err != nil || string(got) != tt.want):
				t.Errorf("ReadTree = %q, %v; want %q", got, err, tt.want)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("ReadTree = %d bytes, %v; want an error saying %q", len(got), err, tt.err)
			}
		})
	}
}
