package cli

import (
	"context"
	"fmt"
	flag "github.com/spf13/pflag"
	"io"
	"os"
	"path/filepath"

	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/source"
)

const dirUsage = `usage: keyburn scan dir [flags] PATH...

Scans files and directories (hidden files included, .git skipped; .gitignore is
not honoured, since an ignored file on disk can still leak). "-" reads standard
input.

Flags:
`

func runDir(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, u *ui) (int, error) {
	var c common
	fs := flag.NewFlagSet("dir", flag.ContinueOnError)
	c.register(fs)
	fs.Bool("no-git", false, "accepted for gitleaks users: scan dir reads files, never git history")
	if err := parseFlags(fs, args, u, dirUsage, stdout); err != nil {
		return exitError, err
	}
	paths := fs.Args()
	if len(paths) == 0 {
		fs.Usage()
		return exitError, errNoPaths
	}
	u.named = map[string]bool{}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			u.named[filepath.ToSlash(filepath.Clean(p))] = true
		}
	}
	hint := paths[0] // the config is looked for from here up to its repository's root
	if hint == "-" {
		hint = "."
	}
	s, err := c.resolve(ctx, u, hint)
	if err != nil {
		return exitError, err
	}
	if len(paths) == 1 && paths[0] == "-" {
		in, restore := pollable(stdin)
		defer restore()
		return c.run(ctx, u, s, stdout, func(ctx context.Context) (*engine.Result, error) {
			return engine.ScanReader(ctx, s.opts, in, "-", u)
		})
	}
	for _, p := range paths {
		if p == "-" {
			return exitError, fmt.Errorf(`"-" (standard input) cannot be mixed with paths`)
		}
	}
	return c.run(ctx, u, s, stdout, func(ctx context.Context) (*engine.Result, error) {
		var stats source.Stats
		s.opts.Stats = &stats
		stop := scanProgress(u, "reading files", "files", &stats.Files, &stats.Bytes)
		defer stop()
		return engine.ScanPaths(ctx, s.opts, paths, u)
	})
}
