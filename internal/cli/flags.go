package cli

import (
	"context"
	"errors"
	"fmt"
	flag "github.com/spf13/pflag"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

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

	checker *checker // the run's check stage, once prepared
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
	fs.StringVar(&c.respond, "respond", "off", "what to do with live keys: off, deactivate, delete, or rotate (a replacement key kept in Secrets Manager for the user first, then delete) (implies --verify)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "with --respond: record what would be done, change nothing")
	fs.StringVar(&c.awsEndpoint, "aws-endpoint", "", "STS and IAM endpoint `URL` (default: AWS's)")
	fs.StringVar(&c.statePath, "state", "", "the state: a `file` (verdict cache, audit log), or a postgres:// URL a fleet shares; default $KEYBURN_STATE_URL, else "+stateDefault)
	fs.DurationVar(&c.soak, "soak", 0, "with --respond=delete or rotate: wait this long between deactivating and deleting")
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
			if v := f.Verification; v != nil && (verify.Status(v.Status).Actionable() || v.Status == string(verify.Error)) {
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
	if c.soak != 0 && !s.policy.Deletes() {
		return nil, errors.New("--soak goes with --respond=delete or --respond=rotate (it is the wait between deactivating and deleting)")
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
