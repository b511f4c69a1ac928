package pipeline

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/keyburn/keyburn/"

// TestOneOrchestrator holds every caller to the one run: a package that
// runs the check stage (imports internal/check) outside check itself
// also runs the pipeline, and none calls check.Run or check.RunWith,
// which would verify and act with no pipeline around them.
func TestOneOrchestrator(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	checkers := map[string]bool{}  // package directory → imports check
	pipelined := map[string]bool{} // package directory → imports pipeline
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "out", ".git", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if strings.HasSuffix(dir, "internal/check") || strings.HasSuffix(dir, "internal/pipeline") {
			return nil
		}
		checkName := ""
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			switch p {
			case module + "internal/check":
				checkers[dir] = true
				checkName = "check"
				if imp.Name != nil {
					checkName = imp.Name.Name
				}
			case module + "internal/pipeline":
				pipelined[dir] = true
			}
		}
		if checkName == "" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == checkName && (sel.Sel.Name == "Run" || sel.Sel.Name == "RunWith") {
				t.Errorf("%s: calls check.%s outside the pipeline (pipeline.Run with a check.Stage)", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(checkers) == 0 {
		t.Fatal("no package runs the check stage: the walk found nothing")
	}
	for dir := range checkers {
		if !pipelined[dir] {
			t.Errorf("%s runs the check stage without the pipeline: give it a pipeline.Run", dir)
		}
	}
}
