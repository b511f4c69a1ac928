package testtools

import (
	"fmt"
	"strings"
	"testing"
)

func TestSkipAllowed(t *testing.T) {
	for _, tc := range []struct {
		ci, skip, tool string
		want           bool
	}{
		{"", "", "moto_server", false},
		{"", "moto_server", "moto_server", true},
		{"", "chromium,moto_server", "moto_server", true},
		{"", "chromium", "moto_server", false},
		{"", "all", "git", true},
		{"true", "all", "moto_server", false},
		{"true", "moto_server", "moto_server", false},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv("KEYBURN_SKIP_MISSING", tc.skip)
		if got := SkipAllowed(tc.tool); got != tc.want {
			t.Errorf("CI=%q KEYBURN_SKIP_MISSING=%q: SkipAllowed(%q) = %v, want %v", tc.ci, tc.skip, tc.tool, got, tc.want)
		}
	}
}

// recorder is a testing.TB that records how a test would end.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }
func (r *recorder) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }

// TestMissing: a missing tool fails the test, naming the tool, how to get
// it and how to skip instead; once allowed, it skips loudly.
func TestMissing(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv("KEYBURN_SKIP_MISSING", "")
	r := &recorder{TB: t}
	Missing(r, "moto_server", "pip install 'moto[server]'", "the AWS integration tests")
	if r.skip != "" || !strings.Contains(r.fatal, "moto_server is not installed (pip install 'moto[server]')") ||
		!strings.Contains(r.fatal, "KEYBURN_SKIP_MISSING=moto_server") {
		t.Errorf("fatal %q, skip %q", r.fatal, r.skip)
	}
	t.Setenv("KEYBURN_SKIP_MISSING", "moto_server")
	r = &recorder{TB: t}
	Missing(r, "moto_server", "pip install 'moto[server]'", "the AWS integration tests")
	if r.fatal != "" || !strings.HasPrefix(r.skip, "SKIPPING the AWS integration tests") {
		t.Errorf("fatal %q, skip %q", r.fatal, r.skip)
	}
}
