package main

import (
	"fmt"
	"io"
	"os"
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
	skipped map[string]int // reason class → count
	failed  int
	// problems counts what a scanned tree got wrong (a malformed
	// .keyburn.toml, a baseline out of the tree): reported, scanned anyway,
	// and an exit code of 1 as a finding would give, so that a tree
	// cannot quietly switch its own scan off.
	problems int
}

func newUI(w io.Writer) *ui { return &ui{w: w, skipped: map[string]int{}} }

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

func (u *ui) debugf(format string, args ...any) {
	if u.verbose {
		u.errorf(format, args...)
	}
}

// Skipped implements source.Reporter.
func (u *ui) Skipped(path, reason string) {
	u.mu.Lock()
	class, _, _ := strings.Cut(reason, " (")
	if strings.Contains(reason, "limit") {
		class = "over the size limit"
	}
	u.skipped[class]++
	u.mu.Unlock()
	if strings.HasPrefix(reason, source.LinkOutsideRoot) {
		// Rare, and a sign of a tree reaching for the operator's files:
		// always said.
		u.errorf("skipped %s: %s", path, reason)
		return
	}
	u.debugf("skipped %s: %s", path, reason)
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
	for reason, n := range u.skipped {
		parts = append(parts, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// isTerminal reports whether w is a terminal (for colour).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}
