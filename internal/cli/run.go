package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyburn/keyburn/internal/check"
	"github.com/keyburn/keyburn/internal/clients"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/notify"
	"github.com/keyburn/keyburn/internal/pipeline"
	"github.com/keyburn/keyburn/internal/report"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// notifyDrain bounds how long a run waits for notifications to go out;
// what is left is sent by the next run.
const notifyDrain = 30 * time.Second

// htmlOptions fills what the HTML report shows besides the findings: what
// was scanned, when, and each key's audit trail from the state file (when
// there is one). The returned func closes the state.
func (c *common) htmlOptions(ctx context.Context, s *setup) func() {
	// The title names what was scanned: "." or "src" alone would tell a
	// reader of the page, later and elsewhere, nothing.
	title := s.where
	if abs, err := filepath.Abs(title); err == nil {
		title = abs
	}
	s.report.Title, s.report.Generated = title, time.Now().UTC().Format("2006-01-02 15:04 UTC")
	if ok, _ := store.Exists(c.statePath); !ok {
		return func() {}
	}
	st, err := store.Open(c.statePath)
	if err != nil {
		return func() {}
	}
	s.report.Audit = func(keyID string) []report.AuditStep {
		log, err := st.AuditLog(ctx, keyID)
		if err != nil {
			return []report.AuditStep{{Step: "the audit log could not be read", Outcome: err.Error()}}
		}
		var out []report.AuditStep
		for _, r := range log {
			out = append(out, report.AuditStep{At: r.At.UTC().Format(time.RFC3339), Step: r.Action, Outcome: r.Outcome, Detail: r.Detail})
		}
		return out
	}
	return func() { st.Close() }
}

// openState opens the state, making a state file's directory (its
// owner's alone) if need be.
func (c *common) openState() (*store.Store, error) {
	if err := store.Prepare(c.statePath); err != nil {
		return nil, err
	}
	return store.Open(c.statePath)
}

// notify sends the news of the live keys check stored in the outbox (and
// whatever earlier runs could not send) to the [notify] targets.
func (c *common) notify(ctx context.Context, u *ui, s *setup) error {
	if len(s.notify) == 0 {
		return nil
	}
	st, err := c.openState()
	if err != nil {
		return err
	}
	defer st.Close()
	sender := &notify.Sender{Store: st, Targets: s.notify, Backoff: 2 * time.Second}
	pending, err := sender.Drain(ctx, notifyDrain)
	if err != nil {
		u.debugf("notify: %v", err)
	}
	if pending > 0 {
		why := "waiting for a retry"
		if err != nil {
			why = err.Error()
		}
		u.errorf("%d notification(s) not delivered yet (%s): the next run retries them", pending, why)
	}
	return nil
}

// writeResults writes findings to --output or stdout.
func (c *common) writeResults(stdout io.Writer, fs []*finding.Finding, opts report.Options) (err error) {
	w := stdout
	if c.output != "" {
		// 0600: with --show-secret the file holds secrets.
		f, err := os.OpenFile(c.output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("open output: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("write output %s: %w", c.output, cerr)
			}
		}()
		w = f
	} else {
		opts.Color = c.format == "text" && isTerminal(stdout)
	}
	if c.format == "text" && len(fs) == 0 {
		return nil
	}
	if err := report.Write(w, c.format, fs, opts); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// checker is a run's check stage, built once: the state open, the
// verifier, and the responder, which has learnt who it is.
type checker struct {
	cfg aws.Config // keyburn's own AWS configuration (credentials resolved when used)
	st  *store.Store
	v   *verify.Verifier
	r   *respond.Responder // nil: nothing acted on
}

// prepare builds the run's check stage, once (closeChecker releases it).
// A command that must not take work it cannot finish (scan aws-notices)
// calls it first: no credentials, or an STS that does not answer, stop the
// run before anything is read.
func (c *common) prepare(ctx context.Context, u *ui, s *setup) (*checker, error) {
	if c.checker != nil {
		return c.checker, nil
	}
	st, err := c.openState()
	if err != nil {
		return nil, err
	}
	// keyburn's own credentials, if any: they name the account of an
	// old-format key ID (sts:GetAccessKeyInfo), so that a canary is not
	// called, and they are the responder's. Resolved only when used.
	cfg, err := clients.AWS(ctx)
	if err != nil && s.policy != respond.Off {
		st.Close()
		return nil, err
	}
	if err != nil {
		// Verification signs with each key itself: it goes on without
		// keyburn's own credentials, which only name old-format accounts.
		u.errorf("%v: keys whose ID does not encode their account are not verified", err)
		cfg = aws.Config{}
	}
	cc := clients.Check{Endpoint: c.awsEndpoint, UserAgent: "keyburn/" + version, Rules: s.aws, RoleName: c.roleName,
		Policy: s.policy, DryRun: c.dryRun, Soak: c.soak, Store: st}
	r, err := cc.Responder(ctx, cfg)
	if err != nil {
		st.Close()
		return nil, noCredentials(u, err)
	}
	if r != nil {
		u.debugf("%s", r.Describe())
	}
	c.checker = &checker{cfg: cfg, st: st, v: cc.Verifier(cfg), r: r}
	return c.checker, nil
}

// closeChecker releases what prepare opened.
func (c *common) closeChecker() {
	if c.checker != nil {
		c.checker.st.Close()
		c.checker = nil
	}
}

// check verifies the findings and, with --respond, acts on the live ones.
// A responding run first carries out the deletions whose soak window has
// passed, whether or not this scan found anything.
func (c *common) check(ctx context.Context, u *ui, s *setup, fs []*finding.Finding) error {
	if !c.verify || (len(fs) == 0 && s.policy == respond.Off) {
		return nil
	}
	k, err := c.prepare(ctx, u, s)
	if err != nil {
		return err
	}
	if k.r != nil {
		done, err := k.r.DeleteDue(ctx)
		if err != nil {
			u.Failed(fmt.Errorf("due deletions: %w", err))
		}
		for _, res := range done {
			u.printf("%s", dueText(res))
			if res.Err != nil {
				u.Failed(fmt.Errorf("due deletion of %s: %w", res.KeyID, res.Err))
			}
		}
	}
	if len(fs) == 0 {
		return nil
	}
	stage := check.Stage{Verifier: k.v, Responder: k.r}
	if len(s.notify) > 0 {
		// Sent by notify, after the results are written.
		stage.News = func(ctx context.Context, fs []*finding.Finding) error {
			now := time.Now()
			_, err := notify.Enqueue(ctx, k.st, s.notify, notify.Messages(fs, notify.Where{Repository: s.where}, now), now)
			return err
		}
	}
	if err := stage.Run(ctx, fs); err != nil {
		u.Failed(fmt.Errorf("state %s: %w", store.Describe(c.statePath), err))
	}
	u.debugf("verification: %d STS call(s)", k.v.Calls())
	return nil
}

// noCredentials is the error of a responding run without keyburn's own
// AWS credentials (-v shows the SDK's reason).
func noCredentials(u *ui, err error) error {
	if !errors.Is(err, respond.ErrNoCredentials) {
		return err
	}
	u.debugf("%v", err)
	return errors.New("--respond needs keyburn's own AWS credentials and found none: set AWS_PROFILE " +
		"(a profile in ~/.aws/config), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an " +
		"instance, task or pod role provides them (-v shows what the SDK tried)")
}

// dueText says what became of one due deletion.
func dueText(res respond.Result) string {
	due := res.DueAt.UTC().Format(time.RFC3339)
	switch res.Action {
	case respond.ActionDeleted:
		if res.Reason != "" {
			return fmt.Sprintf("%s: deletion due at %s: %s", res.KeyID, due, res.Reason)
		}
		return fmt.Sprintf("%s: deleted (its soak window ended at %s)", res.KeyID, due)
	default:
		return fmt.Sprintf("%s: deletion due at %s: %s (%s)", res.KeyID, due, res.Action, res.Reason)
	}
}

// scanFunc is a command's choice of scan: an engine entry on its source.
type scanFunc = func(ctx context.Context) (*engine.Result, error)

// run is every scan command's one run (pipeline.Run): the command's scan,
// the baseline, the check stage (verification, response, news), what
// --only-verified keeps, then the sinks: the results written, the
// notifications sent, and the command's own (more sinks, after those:
// messages of its own, an alert's resolution). Then the summary and the
// exit code. A scan with no result is an error of its own.
func (c *common) run(ctx context.Context, u *ui, s *setup, stdout io.Writer, scan scanFunc, more ...pipeline.Sink) (int, error) {
	start := time.Now()
	defer c.closeChecker()
	r := pipeline.Run{
		Scan:     scan,
		Baseline: s.baseline,
		Check:    pipeline.CheckFunc(func(ctx context.Context, fs []*finding.Finding) error { return c.check(ctx, u, s, fs) }),
		Sinks: append([]pipeline.Sink{
			{Name: "write results", Take: func(ctx context.Context, out *pipeline.Outcome) error {
				if c.format == "html" {
					closeAudit := c.htmlOptions(ctx, s)
					defer closeAudit()
				}
				return c.writeResults(stdout, out.Findings, s.report)
			}},
			{Name: "notify", Take: func(ctx context.Context, _ *pipeline.Outcome) error { return c.notify(ctx, u, s) }},
		}, more...),
	}
	if c.onlyVerified {
		r.Keep = func(fs []*finding.Finding) []*finding.Finding { return c.keepVerified(u, fs) }
	}
	out := r.Do(ctx)
	if out.Result == nil {
		return exitError, out.ScanErr
	}
	fs := out.Findings
	failing := c.failing(fs)
	code := finish(u, out.Result, fs, out.Accepted, time.Since(start), out.ScanErr)
	// A verification or response that cannot start, or a report that
	// cannot be written, does not hide what the scan found: every sink
	// has had its turn, then the error.
	if err := errors.Join(out.CheckErr, out.SinkErr); err != nil {
		return exitError, err
	}
	if code == exitFindings && len(fs) > 0 {
		// Findings decide by --fail-on; what else went wrong still counts.
		switch {
		case len(failing) > 0:
			code = c.exitCode
		case out.ScanErr != nil || u.failures() > 0:
			code = exitError
		case u.treeProblems() > 0:
			code = exitFindings
		default:
			u.printf("no finding at --fail-on %s: exit 0", c.failOn)
			code = exitClean
		}
	}
	return code, nil
}

// keepVerified is --only-verified: live keys, and those whose
// verification could not finish (an unreachable AWS is not proof of a dead
// key), which are said.
func (c *common) keepVerified(u *ui, fs []*finding.Finding) []*finding.Finding {
	var kept []*finding.Finding
	unknown := 0
	for _, f := range fs {
		switch {
		case f.Verification != nil && f.Verification.Status == string(verify.Error):
			unknown++
			kept = append(kept, f)
		case f.Verification != nil && verify.Status(f.Verification.Status).Actionable(): // live, or vouched for by AWS
			kept = append(kept, f)
		}
	}
	if n := len(fs) - len(kept); n > 0 {
		u.printf("%d finding%s not live left out (--only-verified)", n, plural(n))
	}
	if unknown > 0 {
		u.errorf("%d key%s could not be verified (see each finding's verdict): kept, as --only-verified cannot call them dead", unknown, plural(unknown))
	}
	return kept
}

// failingSink runs a command's own messages about the findings that fail
// the run (a blocked commit or push), after the results are written.
func (c *common) failingSink(say func(failing []*finding.Finding)) pipeline.Sink {
	return pipeline.Sink{Name: "messages", Take: func(_ context.Context, out *pipeline.Outcome) error {
		say(c.failing(out.Findings))
		return nil
	}}
}
