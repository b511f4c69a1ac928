package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/verify"
)

// finish prints the summary and the hint, and picks the exit code.
func finish(u *ui, res *engine.Result, fs []*finding.Finding, accepted int, elapsed time.Duration, scanErr error) int {
	paired := 0
	for _, f := range fs {
		if f.Paired() {
			paired++
		}
	}
	var live, deactivated, scheduled, deleted int
	for _, f := range fs {
		if f.Verification != nil && verify.Status(f.Verification.Status).Actionable() {
			live++
		}
		if f.Response != nil {
			switch respond.Action(f.Response.Action) {
			case respond.ActionScheduled:
				scheduled++
				deactivated++
			case respond.ActionDeactivated:
				deactivated++
			case respond.ActionDeleted:
				deleted++
			}
		}
	}
	msg := fmt.Sprintf("%d finding%s", len(fs), plural(len(fs)))
	if len(fs) > 0 {
		msg += fmt.Sprintf(" (%d with secret, %d key ID only", paired, len(fs)-paired)
		if live+deactivated+deleted > 0 {
			msg += fmt.Sprintf("; %d live, %d deactivated, %d deleted", live, deactivated, deleted)
		}
		msg += ")"
	}
	if res.Commits > 0 || res.Blobs > 0 {
		msg += fmt.Sprintf(" in %d commit%s, %d blob%s (%s) in %s", res.Commits, plural(int(res.Commits)), res.Blobs, plural(int(res.Blobs)), humanize.IBytes(uint64(res.Bytes)), elapsed.Round(time.Millisecond))
	} else {
		msg += fmt.Sprintf(" in %d file%s (%s) in %s", res.Files, plural(int(res.Files)), humanize.IBytes(uint64(res.Bytes)), elapsed.Round(time.Millisecond))
	}
	var extra []string
	if accepted > 0 {
		extra = append(extra, fmt.Sprintf("%d accepted by the baseline", accepted))
	}
	if res.AllowedPaths > 0 {
		extra = append(extra, fmt.Sprintf("%d file%s allowlisted by path", res.AllowedPaths, plural(int(res.AllowedPaths))))
	}
	if s := u.skippedSummary(); s != "" {
		extra = append(extra, "skipped: "+s)
	}
	if n := u.failures(); n > 0 {
		extra = append(extra, fmt.Sprintf("%d error%s", n, plural(n)))
	}
	if len(extra) > 0 {
		msg += "; " + strings.Join(extra, "; ")
	}
	u.printf("%s", msg)
	if u.verbose {
		if hwm := peakMemory(); hwm != "" {
			u.debugf("peak memory of this process: %s", hwm)
		}
	}
	partial := scanErr != nil
	switch {
	case errors.Is(scanErr, context.Canceled):
		u.printf("interrupted: partial scan, the results above are incomplete")
	case scanErr != nil:
		u.errorf("%v", scanErr)
		u.printf("the scan did not finish: the results above are incomplete")
	}
	if len(fs) > 0 {
		switch {
		case deleted+deactivated > 0 && deleted+deactivated == live:
			u.hint("every live key found is out of use now: issue new ones to whoever used them, kept in a secret store")
			if scheduled > 0 {
				u.hint("%d deactivated key(s) will be deleted once their soak window ends, by a later --respond=delete run or the receiver ('keyburn scan audit' lists them)", scheduled)
			}
			if deactivated > scheduled {
				u.hint("deactivated keys stay in IAM, inactive, until deleted there (or by --respond=delete): nothing is scheduled")
			}
		case deleted+deactivated > 0:
			u.hint("some live keys are still usable (see each finding's action): deactivate and rotate them in IAM")
		default:
			u.tip("a key in a file is leaked for good, even once removed: deactivate and rotate it in IAM")
			u.tip("then move the new one to a secret store; accept test keys in a baseline (--baseline, or [scan] baseline in .keyburn.toml)")
		}
		return exitFindings
	}
	if partial || u.failures() > 0 {
		return exitError
	}
	if u.treeProblems() > 0 {
		return exitFindings
	}
	return exitClean
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

var errNoPaths = errors.New("no path given")

// peakMemory reads this process's peak resident set size (VmHWM) on Linux,
// for -v: /usr/bin/time reports the largest of keyburn and its git children,
// whose memory-mapped pack files count in full.
func peakMemory() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
