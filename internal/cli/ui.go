package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/keyburn/keyburn/internal/report"
	"github.com/keyburn/keyburn/internal/source"
)

// ui holds every rule for standard error: messages prefixed "keyburn:",
// hints, and the tally of skipped and failed inputs. Its methods may be
// called concurrently (it is the sources' Reporter).
type ui struct {
	mu      sync.Mutex
	w       io.Writer
	verbose bool
	skipped map[skipped]int // count by class of reason
	failed  int
	// named are the files named on the command line: one of them skipped
	// is said at once, with what would read it, and the scan is
	// incomplete (the user asked for that file).
	named map[string]bool
	// problems counts what a scanned tree got wrong (a malformed
	// .keyburn.toml, a baseline out of the tree): reported, scanned anyway,
	// and an exit code of 1 as a finding would give, so that a tree
	// cannot quietly switch its own scan off.
	problems int
}

func newUI(w io.Writer) *ui { return &ui{w: w, skipped: map[skipped]int{}} }

func (u *ui) errorf(format string, args ...any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	fmt.Fprintf(u.w, "keyburn: "+format+"\n", printable(args)...)
}

// printable escapes the control characters of every text argument: paths,
// refs and errors that name them come from scanned repositories.
func printable(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = report.Printable(v)
		case error:
			out[i] = report.Printable(v.Error())
		default:
			out[i] = a
		}
	}
	return out
}

func (u *ui) printf(format string, args ...any) { u.errorf(format, args...) }

func (u *ui) hint(format string, args ...any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	fmt.Fprintf(u.w, "hint: "+format+"\n", printable(args)...)
}

// tip is a generic hint, the same on every run: shown to a person at a
// terminal, and under -v; never in a hook's or CI's output, where it
// would repeat on every run.
func (u *ui) tip(format string, args ...any) {
	if u.verbose || u.person() {
		u.hint(format, args...)
	}
}

// person reports whether a person reads standard error: a terminal, not
// a git hook, not CI.
func (u *ui) person() bool {
	f, ok := u.w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("CI") == "" && runBy() == ""
}

func (u *ui) debugf(format string, args ...any) {
	if u.verbose {
		u.errorf(format, args...)
	}
}

// Skipped implements source.Reporter.
func (u *ui) Skipped(path, reason string) {
	u.mu.Lock()
	u.skipped[skipClass(reason)]++
	named := u.named[filepath.ToSlash(filepath.Clean(path))]
	if named {
		u.failed++
	}
	u.mu.Unlock()
	if named {
		u.errorf("%s was named but not scanned: %s", path, reason)
		switch {
		case strings.HasPrefix(reason, "compressed"):
			u.hint("--archive-depth 1 opens zip, tar and gzip files of any size")
		case strings.Contains(reason, "limit"):
			u.hint("--max-file-size raises the limit")
		}
		return
	}
	if strings.HasPrefix(reason, source.LinkOutsideRoot) {
		// Rare, and a sign of a tree reaching for the operator's files:
		// always said.
		u.errorf("skipped %s: %s", path, reason)
		return
	}
	u.debugf("skipped %s: %s", path, reason)
}

// skipped is a class of skipped input for the summary: a noun for one
// and for many, and what is said of them ("2 archives not readable").
type skipped struct{ one, many, rest string }

func (c skipped) say(n int) string {
	noun := c.one
	if n != 1 {
		noun = c.many
	}
	return strings.TrimSpace(noun + " " + c.rest)
}

// skipClasses name the reasons sources give for skipping, by how each
// begins, as the summary counts them.
var skipClasses = []struct {
	prefix string
	class  skipped
}{
	{"archive member", skipped{"archive member", "archive members", "not readable"}},
	{"archive not readable", skipped{"archive", "archives", "not readable"}},
	{"archive:", skipped{"archive", "archives", "read in part"}},
	{"directory already scanned", skipped{"directory", "directories", "already scanned"}},
	{"compressed", skipped{"compressed file", "compressed files", ""}},
	{"binary", skipped{"binary file", "binary files", ""}},
	{"not a regular file", skipped{"special file", "special files", "(not regular)"}},
	{"broken symbolic link", skipped{"broken symbolic link", "broken symbolic links", ""}},
	{"absent from this partial clone", skipped{"object", "objects", "absent from this partial clone"}},
	{"submodule", skipped{"submodule", "submodules", "not followed"}},
	{source.LinkOutsideRoot, skipped{"symbolic link", "symbolic links", "out of the scanned root"}},
}

// skipClass sorts a reason into its class for the summary: the detail
// (which error, which link) is for -v.
func skipClass(reason string) skipped {
	if strings.Contains(reason, "limit") {
		return skipped{"file", "files", "over the size limit"}
	}
	for _, c := range skipClasses {
		if strings.HasPrefix(reason, c.prefix) {
			return c.class
		}
	}
	class, _, _ := strings.Cut(reason, " (")
	class, _, _ = strings.Cut(class, ":")
	return skipped{rest: class}
}

// Failed implements source.Reporter: every failure is printed.
func (u *ui) Failed(err error) {
	u.mu.Lock()
	u.failed++
	u.mu.Unlock()
	u.errorf("%v", err)
}

// problem reports something wrong in the scanned tree itself.
func (u *ui) problem(format string, args ...any) {
	u.mu.Lock()
	u.problems++
	u.mu.Unlock()
	u.errorf(format, args...)
}

func (u *ui) treeProblems() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.problems
}

func (u *ui) failures() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.failed
}

// skippedSummary says how many inputs were skipped and why: "3 binary, 1 over
// the size limit".
func (u *ui) skippedSummary() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var parts []string
	for class, n := range u.skipped {
		parts = append(parts, fmt.Sprintf("%d %s", n, class.say(n)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// isTerminal reports whether w is a terminal (for colour).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}
