package worker

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/verify"
)

// issues opens, or updates, one issue per live key. It names the key (ID,
// fingerprint, owner, verdict, action) and what to do; where the key is
// only in a private repository (the API says which: the payload is not
// trusted for it), since in a public one the issue would tell everyone.
// where says what a key was found in, for an issue's body (what) and its
// title (verb: "pushed", or "found" for what was not a push).
type where struct{ what, verb string }

func (w *Worker) issues(ctx context.Context, gh *github.Client, name ghrepo.Name, what where, fs []*finding.Finding) error {
	private := false
	for _, f := range fs {
		if f.Verification == nil || f.Verification.Status != string(verify.Live) {
			continue
		}
		if !private {
			if r, _, err := gh.Repositories.Get(ctx, name.Owner, name.Repo); err == nil && r.GetPrivate() {
				private = true
			}
		}
		if err := w.issue(ctx, gh, name, what, f, private); err != nil {
			return err
		}
	}
	return nil
}

func (w *Worker) issue(ctx context.Context, gh *github.Client, name ghrepo.Name, at where, f *finding.Finding, private bool) error {
	what := at.what
	action := "none"
	if f.Response != nil {
		action = f.Response.Action
	}
	var b strings.Builder
	fmt.Fprintf(&b, "keyburn found a **live** AWS access key in %s.\n\n| | |\n|---|---|\n", codeSpan(what))
	fmt.Fprintf(&b, "| key ID | %s |\n| fingerprint | %s |\n| account | %s |\n| owner | %s |\n| verdict | %s |\n| action | %s |\n",
		cell(f.KeyID), cell(f.Fingerprint()), cell(f.AccountID), cell(f.Verification.ARN), cell(f.Verification.Status), cell(action))
	if f.Verification.Reach != nil {
		fmt.Fprintf(&b, "| severity | %s |\n| reach | %s |\n", cell(f.Severity), cell(f.Verification.Reach.Summary()))
	}
	if f.Response != nil && f.Response.Evidence != nil {
		fmt.Fprintf(&b, "| CloudTrail | %s |\n", cell(f.Response.Evidence.Summary()))
	}
	if f.Response != nil && f.Response.Replacement != nil {
		fmt.Fprintf(&b, "| replacement key | %s, in AWS Secrets Manager as %s |\n", cell(f.Response.Replacement.KeyID), cell(f.Response.Replacement.Secret))
	}
	if private && len(f.Locations) > 0 {
		l := f.Locations[0]
		fmt.Fprintf(&b, "| file | %s line %d |\n| commit | %s |\n", cell(l.File), l.Line, cell(l.Commit))
	}
	b.WriteString("\nThe secret is not shown")
	if !private {
		b.WriteString(", nor where the key is: this repository is public")
	}
	b.WriteString(". What to do: make sure the key is deactivated and deleted in IAM (keyburn's action is above), " +
		"create a new key kept in a secret store, and remove this one from the code and from the history. " +
		"`keyburn scan git` on a clone names the file and commit.")
	title := issueTitle(f, action, at.verb)
	var num int
	if w.o.State != nil {
		var err error
		if num, err = w.o.State.IssueFor(ctx, name.String(), f.KeyID); err != nil {
			return err
		}
	}
	if num > 0 {
		if _, _, err := gh.Issues.Edit(ctx, name.Owner, name.Repo, num, &github.IssueRequest{Title: github.String(title), Body: github.String(b.String())}); err == nil {
			return nil
		}
		// Gone (deleted, or transferred): open a new one.
	}
	iss, _, err := gh.Issues.Create(ctx, name.Owner, name.Repo, &github.IssueRequest{Title: github.String(title), Body: github.String(b.String())})
	if err != nil {
		return fmt.Errorf("issue for %s: %w", f.KeyID, err)
	}
	if w.o.State != nil {
		return w.o.State.SetIssue(ctx, name.String(), f.KeyID, iss.GetNumber())
	}
	return nil
}

// codeSpan renders s as a Markdown code span whatever it holds: fenced by
// more backticks than it contains in a row, with line breaks and control
// characters shown, not obeyed, and its length capped.
func codeSpan(s string) string {
	const maxLen = 200
	if len([]rune(s)) > maxLen {
		s = string([]rune(s)[:maxLen]) + "…"
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, s)
	run, longest := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if s == "" {
		return "(none)"
	}
	return fence + " " + s + " " + fence
}

// cell is a code span for a table cell: a '|' in it would end the cell,
// so it is escaped as GitHub's tables require.
func cell(s string) string { return strings.ReplaceAll(codeSpan(s), "|", `\|`) }

// issueTitle names the key and what was done; a root key's says it is
// critical, since it can do everything in its account.
func issueTitle(f *finding.Finding, action, verb string) string {
	if f.Verification != nil && f.Verification.Root {
		return fmt.Sprintf("CRITICAL: live AWS ROOT key %s %s (%s): it can do everything in account %s", f.KeyID, verb, action, f.Verification.Account)
	}
	if f.Severity == finding.SeverityCritical && f.Verification != nil && f.Verification.Reach != nil {
		what, _, _ := strings.Cut(f.Verification.Reach.Summary(), ";")
		return fmt.Sprintf("CRITICAL: live AWS key %s %s (%s): %s", f.KeyID, verb, action, what)
	}
	return fmt.Sprintf("Live AWS key %s %s (%s)", f.KeyID, verb, action)
}
