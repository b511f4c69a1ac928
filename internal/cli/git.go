package cli

import (
	"fmt"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"

	"context"
	"errors"
	flag "github.com/spf13/pflag"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
)

const gitUsage = `usage: keyburn scan git [flags] [PATH]

Scans a git repository's history (default: the repository holding the current
directory): every blob in its object store once, reachable from any reference
or not, and every commit and tag message. Each finding names the commit that
added the key, its path, author, date and the references that contain it.

    --range A..B          only what B adds over A (for CI and pre-push); A.., ..B, A...B
                          as git reads them; 000…0..B: a new branch (what no other ref has)
    --since-commit REV    only what HEAD adds over REV
    --reachable-only      leave out objects no reference leads to
    --go-git              read objects with go-git alone (by default, when git is
                          installed, parallel git cat-file processes read them)

Flags:
`

func runGit(ctx context.Context, args []string, stdout io.Writer, u *ui) (int, error) {
	var c common
	var reachableOnly, goGit bool
	var rng, since string
	fs := flag.NewFlagSet("git", flag.ContinueOnError)
	c.register(fs)
	fs.BoolVar(&reachableOnly, "reachable-only", false, "leave out objects no reference leads to")
	fs.StringVar(&rng, "range", "", "scan only what `A..B` adds")
	fs.BoolVar(&goGit, "go-git", false, "read objects with go-git only, even when git is installed")
	fs.StringVar(&since, "since-commit", "", "scan only what HEAD adds over `rev`")
	var preCommit, ghEvent bool
	fs.BoolVar(&ghEvent, "github-event", false, "scan the commits of the GitHub Actions event (GITHUB_EVENT_PATH): a push's before..after, a pull request's base..head")
	fs.BoolVar(&preCommit, "pre-commit-range", false, "scan the range the pre-commit framework's pre-push stage gives (PRE_COMMIT_FROM_REF..PRE_COMMIT_TO_REF)")
	if err := parseFlags(fs, args, u, gitUsage, stdout); err != nil {
		return exitError, err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitError, errors.New("scan git takes one repository")
	}
	path := "."
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	if ghEvent {
		if rng != "" || preCommit {
			return exitError, errors.New("--github-event cannot be used with --range or --pre-commit-range")
		}
		r, err := eventRange(os.Getenv("GITHUB_EVENT_NAME"), os.Getenv("GITHUB_EVENT_PATH"))
		if err != nil {
			return exitError, err
		}
		rng = r
		u.printf("scanning %s (the %s event's commits)", r, os.Getenv("GITHUB_EVENT_NAME"))
	}
	if preCommit {
		from, to := os.Getenv("PRE_COMMIT_FROM_REF"), os.Getenv("PRE_COMMIT_TO_REF")
		if from == "" || to == "" || rng != "" {
			return exitError, errors.New("--pre-commit-range: PRE_COMMIT_FROM_REF and PRE_COMMIT_TO_REF are unset (the pre-commit framework sets them for pre-push hooks), or --range was given too")
		}
		rng = from + ".." + to
	}
	if rng != "" && since != "" {
		return exitError, errors.New("--range and --since-commit cannot be used together")
	}
	s, err := c.resolve(ctx, u, path)
	if err != nil {
		return exitError, err
	}
	gopts := engine.GitOptions{ReachableOnly: reachableOnly, MaxBlobSize: s.opts.FS.MaxFileSize, GoGitOnly: goGit}
	scan := func(ctx context.Context) (res *engine.Result, err error) {
		if since != "" {
			rng = since + "..HEAD"
		}
		if rng != "" {
			res, err = engine.ScanRange(ctx, s.opts, path, rng, gopts, u)
		} else {
			var stats source.Stats
			gopts.Stats = &stats
			stop := scanProgress(u, "reading history", "blobs", &stats.Blobs, &stats.Bytes)
			res, err = engine.ScanHistory(ctx, s.opts, path, gopts, u)
			stop()
		}
		if res == nil && errors.Is(err, source.ErrNotRepository) {
			u.hint("scan git reads a repository; use 'keyburn scan dir %s' for plain files", path)
		}
		return res, err
	}
	return c.run(ctx, u, s, stdout, scan, c.failingSink(func(fs []*finding.Finding) {
		if len(fs) == 0 {
			return
		}
		switch {
		case runBy() == "pre-push":
			u.printf("push blocked: the pushed commits add an AWS key")
		case preCommit:
			u.printf("push blocked (keyburn-pre-push hook): the pushed commits add an AWS key")
		default:
			return
		}
		u.hint("a key in a commit stays in history: rewrite the commits that add it before pushing, and rotate the key")
		if preCommit {
			u.hint("to push anyway, only for a key that is not real (a test key): SKIP=keyburn-pre-push git push")
		} else {
			u.hint("to push anyway, only for a key that is not real (a test key): git push --no-verify")
		}
	}))
}

// scanProgress shows a long scan going (what, such as "reading history"):
// a bar of bytes read on a terminal, else a line every progressEvery, with
// the count of units (blobs, files) read. It returns the function that
// ends it.
func scanProgress(u *ui, what, units string, count, read *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	term := isTerminal(os.Stderr)
	var bar *progressbar.ProgressBar
	every := progressEvery
	if term {
		bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription(what), progressbar.OptionSetElapsedTime(true),
			progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
		every = 200 * time.Millisecond
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				if bar != nil {
					_ = bar.Finish()
				}
				return
			case <-t.C:
				n, bytes := count.Load(), read.Load()
				if bar != nil {
					bar.Describe(fmt.Sprintf("%s: %d %s", what, n, units))
					_ = bar.Set64(bytes)
				} else {
					u.printf("%s: %d %s (%s) so far", what, n, units, humanize.IBytes(uint64(bytes)))
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// progressEvery is how often a long scan says how far it is when standard
// error is not a terminal (CI logs); a variable for the tests.
var progressEvery = 10 * time.Second
