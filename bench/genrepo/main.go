//go:build bench

// Command genrepo writes a git fast-import stream of a synthetic history for
// the benchmarks: -files files under src/, then -commits commits each changing
// a few of them, with a synthetic key pair added now and then:
//
//	genrepo -commits 1000 -files 200 | git fast-import
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/keyburn/keyburn/internal/testkeys"
)

func main() {
	commits := flag.Int("commits", 1000, "commits to write")
	files := flag.Int("files", 200, "files in the tree")
	flag.Parse()
	rng := rand.New(rand.NewPCG(1, 1))
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	path := func(i int) string { return fmt.Sprintf("src/d%d/f%d.txt", i%100, i) }
	blob := func(text string) {
		fmt.Fprintf(w, "data %d\n%s\n", len(text), text)
	}
	content := func(i, rev int) string {
		var b strings.Builder
		for l := range 20 + i%40 {
			fmt.Fprintf(&b, "line %d of file %d, revision %d: some ordinary configuration text\n", l, i, rev)
		}
		return b.String()
	}
	for c := range *commits {
		fmt.Fprintf(w, "commit refs/heads/main\ncommitter bench <bench@example.invalid> %d +0000\n", 1700000000+c*60)
		blob(fmt.Sprintf("commit %d", c))
		if c == 0 {
			for i := range *files {
				fmt.Fprintf(w, "M 100644 inline %s\n", path(i))
				blob(content(i, 0))
			}
			continue
		}
		for range 3 {
			i := rng.IntN(*files)
			text := content(i, c)
			if c%100 == 50 {
				text += fmt.Sprintf("aws_access_key_id = %s\naws_secret_access_key = %s\n",
					testkeys.KeyID(rng, "AKIA", 123456789012), testkeys.Secret(rng))
			}
			fmt.Fprintf(w, "M 100644 inline %s\n", path(i))
			blob(text)
		}
	}
}
