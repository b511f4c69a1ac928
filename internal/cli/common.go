package cli

import (
	"context"
	"errors"
	"fmt"
	flag "github.com/spf13/pflag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/dustin/go-humanize"

	"github.com/keyburn/keyburn/internal/check"
	"github.com/keyburn/keyburn/internal/clients"
	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/notify"
	"github.com/keyburn/keyburn/internal/report"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/source"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
	"github.com/keyburn/keyburn/rules"
)

// common holds the flags every scan command has.
type common struct {
	format       string
	output       string
	config       string
	baseline     string
	fs           *flag.FlagSet // to tell flags given from defaults
	showSecret   bool
	concurrency  int
	maxFileSize  string
	archiveDepth int
	// archiveChosen: the depth was given (flag or [scan]): archives of any
	// size are opened to it, within their budget.
	archiveChosen bool
	decodeDepth   int
	skipBinaries  bool
	verbose       bool

	verify      bool
	respond     string
	dryRun      bool
	awsEndpoint string
	statePath   string
	soak        time.Duration
	roleName    string

	// What fails a run: --fail-on, --only-verified, --exit-code.
	failOn       string
	onlyVerified bool
	exitCode     int
	redact       bool // gitleaks's flag: secrets are redacted anyway
}

func (c *common) register(fs *flag.FlagSet) {
	c.fs = fs
	fs.StringVarP(&c.format, "format", "f", "text", "output `format`: text, json, jsonl, sarif or html (one self-contained page); also --report-format")
	fs.StringVarP(&c.output, "output", "r", "", "write results to `file` instead of standard output; also --report-path")
	fs.StringVarP(&c.config, "config", "c", "", "rules `file` extending the defaults")
	fs.StringVar(&c.baseline, "baseline", "", "`file` of accepted findings (a JSON report or fingerprints)")
	fs.BoolVar(&c.showSecret, "show-secret", false, "print secrets in full")
	fs.IntVar(&c.concurrency, "concurrency", 0, "files scanned at once (default 2 × CPUs)")
	fs.StringVar(&c.maxFileSize, "max-file-size", "256MiB", "skip files larger than `size`")
	fs.IntVar(&c.archiveDepth, "archive-depth", defaultArchiveDepth, "open zip, jar, tar and gzip archives to this `depth` (2: a jar in a war); 0: not at all. Without the flag (or [scan] archive_depth), archives of 64 KiB or less are opened, except in scan git's whole history")
	fs.IntVar(&c.decodeDepth, "decode-depth", engine.DefaultDecodeDepth, "decode base64 and percent-encoded text to this `depth` (2: base64 inside base64); 0: not at all")
	fs.BoolVar(&c.skipBinaries, "skip-binaries", false, "leave binary files out (by default their printable strings are scanned; compressed files and images are left out either way)")
	fs.BoolVarP(&c.verbose, "verbose", "v", false, "say more on standard error")
	fs.BoolVar(&c.verify, "verify", false, "prove each key pair live or not with sts:GetCallerIdentity")
	fs.StringVar(&c.respond, "respond", "off", "what to do with live keys: off, deactivate or delete (implies --verify)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "with --respond: record what would be done, change nothing")
	fs.StringVar(&c.awsEndpoint, "aws-endpoint", "", "STS and IAM endpoint `URL` (default: AWS's)")
	fs.StringVar(&c.statePath, "state", "", "the state: a `file` (verdict cache, audit log), or a postgres:// URL a fleet shares; default $KEYBURN_STATE_URL, else "+stateDefault)
	fs.DurationVar(&c.soak, "soak", 0, "with --respond=delete: wait this long between deactivating and deleting")
	fs.StringVar(&c.roleName, "role-name", "", "act through this role in each key's account (arn:aws:iam::ACCOUNT:role/NAME)")
	fs.StringVar(&c.failOn, "fail-on", "any", "exit 1 only for findings of this `level` or above: any, medium, high, critical, or live (keys verified live, or that could not be verified; implies --verify)")
	fs.BoolVar(&c.onlyVerified, "only-verified", false, "report only keys verified live (implies --verify)")
	fs.IntVar(&c.exitCode, "exit-code", exitFindings, "the exit `status` when findings fail the run")
	fs.BoolVar(&c.redact, "redact", false, "accepted for gitleaks users: secrets are always redacted unless --show-secret")
	fs.SetNormalizeFunc(flagAliases)
}

// flagAliases are other scanners' names for keyburn's flags, so that a
// gitleaks user's fingers work: --report-format, --report-path.
func flagAliases(fs *flag.FlagSet, name string) flag.NormalizedName {
	switch name {
	case "report-format":
		name = "format"
	case "report-path":
		name = "output"
	}
	return flag.NormalizedName(name)
}

// failOnLevels are --fail-on's values.
var failOnLevels = []string{"any", "low", "medium", "high", "critical", "live"}

// failing returns the findings that fail the run under --fail-on.
func (c *common) failing(fs []*finding.Finding) []*finding.Finding {
	var out []*finding.Finding
	for _, f := range fs {
		switch c.failOn {
		case "", "any", "low":
			out = append(out, f)
		case "live":
			// A verification that could not finish fails too: an
			// unreachable AWS is no proof that a key is dead.
			if v := f.Verification; v != nil && (v.Status == string(verify.Live) || v.Status == string(verify.Error)) {
				out = append(out, f)
			}
		default:
			if finding.AtLeast(f.Severity, c.failOn) {
				out = append(out, f)
			}
		}
	}
	return out
}

// fromConfig takes the [scan] settings of the rules file for the flags not
// given on the command line.
func (c *common) fromConfig(sc rules.ScanSpec) {
	unset := func(name string) bool { return c.fs == nil || !c.fs.Changed(name) }
	if sc.Baseline != "" && unset("baseline") {
		c.baseline = sc.Baseline
	}
	if sc.DecodeDepth != nil && unset("decode-depth") {
		c.decodeDepth = *sc.DecodeDepth
	}
	if sc.ArchiveDepth != nil && unset("archive-depth") {
		c.archiveDepth = *sc.ArchiveDepth
	}
	c.archiveChosen = !unset("archive-depth") || sc.ArchiveDepth != nil
	if sc.SkipBinaries != nil && unset("skip-binaries") {
		c.skipBinaries = *sc.SkipBinaries
	}
	if sc.MaxFileSize != "" && unset("max-file-size") {
		c.maxFileSize = sc.MaxFileSize
	}
}

// By default archives are opened to depth 2, but only those of
// defaultArchiveMax bytes or less, each inflating to 1 MiB at most, and not
// in a whole history (engine.ScanHistory says why); a tree's copies of
// one archive are opened once (source.ArchiveCopies). On the bench tree
// (804 archives, 389 MB of them; 678 of 64 KiB or less, 222 distinct) that
// costs 1 to 3% of a scan, where opening every archive cost 4.8 times the
// scan and those up to 1 MiB 25%. A depth given opens archives of any
// size, everywhere.
const (
	defaultArchiveDepth = 2
	defaultArchiveMax   = 64 << 10
)

// archiveMaxSize is the size above which archives stay closed (0: none).
func (c *common) archiveMaxSize() int64 {
	if c.archiveChosen {
		return 0
	}
	return defaultArchiveMax
}

// stateDefault names store.DefaultPath in help, the same on every machine.
const stateDefault = "$XDG_STATE_HOME/keyburn/state.db, or ~/.local/state/keyburn/state.db"

// parseFlags parses args with fs; flags may come before, between or after
// the other arguments. --help prints usage (the command's text, then its
// flags) to stdout and returns errHelp; a bad flag is one line and a pointer
// to --help on the ui, and errUsage. Later calls of fs.Usage (a missing
// argument) print that pointer.
func parseFlags(fs *flag.FlagSet, args []string, u *ui, usage string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = func() { u.hint("see 'keyburn scan %s --help'", fs.Name()) }
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		fmt.Fprint(stdout, fs.FlagUsages())
		return errHelp
	case err != nil:
		u.errorf("%v", err)
		fs.Usage()
		return errUsage
	}
	return nil
}

// setup is what the common flags resolve to.
type setup struct {
	aws      rules.AWSSpec
	opts     engine.Options
	baseline finding.Baseline
	report   report.Options
	policy   respond.Policy
	notify   []notify.Target // from a --config file only
	where    string          // what was scanned, for notifications
}

// resolve checks the common flags and loads the rules and the baseline.
// dirHint is where to look for .keyburn.toml when --config is not given: the
// scanned directory, or the current one when the input is files or stdin.
func (c *common) resolve(ctx context.Context, u *ui, dirHint string) (*setup, error) {
	u.verbose = c.verbose
	c.statePath = store.Where(c.statePath)
	if !slices.Contains(report.Formats, c.format) {
		return nil, fmt.Errorf("--format %q: want one of %s", c.format, strings.Join(report.Formats, ", "))
	}
	if c.concurrency < 0 {
		return nil, fmt.Errorf("--concurrency %d: want a positive number", c.concurrency)
	}
	l, err := c.loadRules(u, dirHint)
	if err != nil {
		return nil, err
	}
	set := l.Set
	c.fromConfig(set.Scan)
	if c.decodeDepth < 0 {
		return nil, fmt.Errorf("--decode-depth %d: want 0 (no decoding) or more", c.decodeDepth)
	}
	decode := c.decodeDepth
	if decode == 0 {
		decode = -1 // engine.Options: negative is none
	}
	maxSize, err := humanize.ParseBytes(c.maxFileSize)
	if err != nil || maxSize == 0 {
		return nil, fmt.Errorf("--max-file-size %q: want a size such as 10MB or 1GiB", c.maxFileSize)
	}
	targets, err := c.notifyTargets(set)
	if err != nil {
		return nil, err
	}
	s := &setup{
		aws: set.AWS, notify: targets, where: dirHint,
		opts: engine.Options{Matcher: detect.New(set), Concurrency: c.concurrency, DecodeDepth: decode,
			FS: source.FSOptions{MaxFileSize: int64(maxSize), ArchiveDepth: max(0, c.archiveDepth), ArchiveMaxSize: c.archiveMaxSize(), SkipBinaries: c.skipBinaries}},
		report: report.Options{ShowSecret: c.showSecret, Version: version},
	}
	if s.policy, err = respond.ParsePolicy(c.respond); err != nil {
		return nil, fmt.Errorf("--respond: %w", err)
	}
	if s.policy != respond.Off {
		c.verify = true
	}
	if !slices.Contains(failOnLevels, c.failOn) {
		return nil, fmt.Errorf("--fail-on %q: want one of %s", c.failOn, strings.Join(failOnLevels, ", "))
	}
	if c.failOn == "live" || c.onlyVerified {
		c.verify = true
	}
	if c.exitCode < 0 || c.exitCode > 125 {
		return nil, fmt.Errorf("--exit-code %d: want 0 to 125", c.exitCode)
	}
	if c.redact && c.showSecret {
		return nil, errors.New("--redact and --show-secret contradict each other")
	}
	if c.dryRun && s.policy == respond.Off {
		return nil, errors.New("--dry-run goes with --respond=deactivate or --respond=delete")
	}
	if c.soak != 0 && s.policy != respond.Delete {
		return nil, errors.New("--soak goes with --respond=delete (it is the wait between deactivating and deleting)")
	}
	if s.policy != respond.Off {
		// Acting needs keyburn's own credentials: found out now, not
		// after the whole scan.
		cfg, err := clients.AWS(ctx)
		if err == nil {
			err = clients.CheckCredentials(ctx, cfg)
		}
		if err != nil {
			return nil, noCredentials(u, err)
		}
	}
	if s.baseline, err = c.readBaseline(u, l); err != nil {
		return nil, err
	}
	if s.baseline != nil {
		u.debugf("baseline %s: %d accepted fingerprints", c.baseline, len(s.baseline))
	}
	return s, nil
}

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
		if f.Verification != nil && f.Verification.Status == string(verify.Live) {
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

// check verifies the findings and, with --respond, acts on the live ones.
// A responding run first carries out the deletions whose soak window has
// passed, whether or not this scan found anything.
func (c *common) check(ctx context.Context, u *ui, s *setup, fs []*finding.Finding) error {
	if !c.verify || (len(fs) == 0 && s.policy == respond.Off) {
		return nil
	}
	st, err := c.openState()
	if err != nil {
		return err
	}
	defer st.Close()
	// keyburn's own credentials, if any: they name the account of an
	// old-format key ID (sts:GetAccessKeyInfo), so that a canary is not
	// called, and they are the responder's. Resolved only when used.
	cfg, err := clients.AWS(ctx)
	if err != nil && s.policy != respond.Off {
		return err
	}
	if err != nil {
		// Verification signs with each key itself: it goes on without
		// keyburn's own credentials, which only name old-format accounts.
		u.errorf("%v: keys whose ID does not encode their account are not verified", err)
		cfg = aws.Config{}
	}
	cc := clients.Check{Endpoint: c.awsEndpoint, UserAgent: "keyburn/" + version, Rules: s.aws, RoleName: c.roleName,
		Policy: s.policy, DryRun: c.dryRun, Soak: c.soak, Store: st}
	v := cc.Verifier(cfg)
	r, err := cc.Responder(ctx, cfg)
	if errors.Is(err, respond.ErrNoCredentials) {
		return noCredentials(u, err)
	}
	if err != nil {
		return err
	}
	if r != nil {
		u.debugf("%s", r.Describe())
		done, err := r.DeleteDue(ctx)
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
	stage := check.Stage{Verifier: v, Responder: r}
	if len(s.notify) > 0 {
		// Sent by notify, after the results are written.
		stage.News = func(ctx context.Context, fs []*finding.Finding) error {
			now := time.Now()
			_, err := notify.Enqueue(ctx, st, s.notify, notify.Messages(fs, notify.Where{Repository: s.where}, now), now)
			return err
		}
	}
	if err := stage.Run(ctx, fs); err != nil {
		u.Failed(fmt.Errorf("state %s: %w", store.Describe(c.statePath), err))
	}
	u.debugf("verification: %d STS call(s)", v.Calls())
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

// complete is the end every scan shares: the baseline, verification and
// response, the results, then the summary and the exit code. before runs
// after the results are written, for messages of the command's own.
func (c *common) complete(ctx context.Context, u *ui, s *setup, stdout io.Writer, res *engine.Result, start time.Time, scanErr error,
	before func(fs []*finding.Finding)) (int, error) {
	fs, accepted := s.baseline.Filter(res.Findings)
	// A verification or response that cannot start does not hide what the
	// scan found: the findings are written, then the error.
	checkErr := c.check(ctx, u, s, fs)
	if c.onlyVerified {
		// Live keys, and those whose verification could not finish (an
		// unreachable AWS is not proof of a dead key): those are said.
		var kept []*finding.Finding
		unknown := 0
		for _, f := range fs {
			switch {
			case f.Verification != nil && f.Verification.Status == string(verify.Error):
				unknown++
				kept = append(kept, f)
			case f.Verification != nil && f.Verification.Status == string(verify.Live):
				kept = append(kept, f)
			}
		}
		if n := len(fs) - len(kept); n > 0 {
			u.printf("%d finding%s not live left out (--only-verified)", n, plural(n))
		}
		if unknown > 0 {
			u.errorf("%d key%s could not be verified (see each finding's verdict): kept, as --only-verified cannot call them dead", unknown, plural(unknown))
		}
		fs = kept
	}
	if c.format == "html" {
		closeAudit := c.htmlOptions(ctx, s)
		defer closeAudit()
	}
	if err := c.writeResults(stdout, fs, s.report); err != nil {
		return exitError, errors.Join(checkErr, err)
	}
	if err := c.notify(ctx, u, s); err != nil {
		checkErr = errors.Join(checkErr, err)
	}
	failing := c.failing(fs)
	if before != nil {
		before(failing)
	}
	code := finish(u, res, fs, accepted, time.Since(start), scanErr)
	if checkErr != nil {
		return exitError, checkErr
	}
	if code == exitFindings && len(fs) > 0 {
		// Findings decide by --fail-on; what else went wrong still counts.
		switch {
		case len(failing) > 0:
			code = c.exitCode
		case scanErr != nil || u.failures() > 0:
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
