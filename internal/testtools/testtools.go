// Package testtools decides what a test does when a tool it needs (moto,
// Chromium, git) is missing on this machine: it fails, naming the tool and
// how to install it, so that a plain `go test ./...` does not pass while
// whole kinds of tests never ran (go test shows a passing package's skips
// only under -v). KEYBURN_SKIP_MISSING lists the tools whose tests may
// skip instead ("moto_server,chromium", or "all"); under CI=true nothing
// may be missing.
package testtools

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Missing ends the test for want of tool: a failure, or a skip when
// KEYBURN_SKIP_MISSING names the tool (or "all") outside CI. install says
// how to get it; what, which tests need it.
func Missing(t testing.TB, tool, install, what string) {
	t.Helper()
	if SkipAllowed(tool) {
		t.Skipf("SKIPPING %s: %s is not installed (%s), and KEYBURN_SKIP_MISSING allows it", what, tool, install)
		return
	}
	t.Fatalf("%s is not installed (%s): %s need it. Install it, or set KEYBURN_SKIP_MISSING=%s to skip them%s",
		tool, install, what, tool, ciNote())
}

// SkipAllowed reports whether tests needing tool may skip without it.
func SkipAllowed(tool string) bool {
	if os.Getenv("CI") == "true" {
		return false
	}
	allowed := strings.Split(os.Getenv("KEYBURN_SKIP_MISSING"), ",")
	return slices.Contains(allowed, tool) || slices.Contains(allowed, "all")
}

func ciNote() string {
	if os.Getenv("CI") == "true" {
		return " (never under CI=true)"
	}
	return ""
}
