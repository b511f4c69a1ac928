package cli

import (
	"context"
	"errors"
	"fmt"
	flag "github.com/spf13/pflag"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"

	"github.com/keyburn/keyburn/internal/check"
	"github.com/keyburn/keyburn/internal/clients"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/ghalert"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/org"
	"github.com/keyburn/keyburn/internal/pipeline"
	"github.com/keyburn/keyburn/internal/sqsqueue"
	"github.com/keyburn/keyburn/internal/store"
)

const orgUsage = `usage: keyburn scan github (--org ORG | --user USER) [flags]

Scans every repository of a GitHub organisation or user, every ref and its
whole history, with one finding per key across all of them. The token comes
from GITHUB_TOKEN. Repositories are mirrored under --mirrors; the second run
scans only what is new, and says how many repositories it skipped.

    --repo PATTERN       only repositories whose name matches (repeatable)
    --forks --archived   include forks, archived repositories
    --shard i/n          this machine's share of the repositories (i from 0)
    --queue URL|state    queue one job per repository, on Amazon SQS or in the
                         state's own queue (a fleet on one PostgreSQL), for the
                         receivers' workers instead
    --alerts             act on the organisation's open AWS secret-scanning
                         alerts instead: fetch each (with its secret), verify,
                         respond (--respond), and resolve it as revoked once its
                         key is out of use; the token needs the
                         secret_scanning_alerts permission (read and write)

Flags:
`

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }
func (l *listFlag) Type() string       { return "pattern" }

type rewriteList []mirror.Rewrite

func (r *rewriteList) Type() string { return "FROM=TO" }

func (r *rewriteList) String() string { return fmt.Sprint(*r) }
func (r *rewriteList) Set(s string) error {
	rw, err := mirror.ParseRewrite(s)
	if err == nil {
		*r = append(*r, rw)
	}
	return err
}

// orgFlags are the flags of scan github besides the common ones.
type orgFlags struct {
	c                               common
	o                               org.Options
	repos                           listFlag
	rewrites                        rewriteList
	shard, apiURL, queueURL, appKey string
	appID                           int64
	alerts                          bool
}

func (f *orgFlags) register(fs *flag.FlagSet) {
	f.c.register(fs)
	fs.StringVar(&f.o.Org, "org", "", "the `organisation`")
	fs.StringVar(&f.o.User, "user", "", "the `user`")
	fs.Var(&f.repos, "repo", "only repositories whose name matches `pattern`")
	fs.BoolVar(&f.o.Forks, "forks", false, "include forks")
	fs.BoolVar(&f.o.Archived, "archived", false, "include archived repositories")
	fs.StringVar(&f.shard, "shard", "", "scan shard `i/n` of the repositories")
	fs.StringVar(&f.apiURL, "github-api", "", "GitHub REST API base `URL` (GitHub Enterprise)")
	fs.StringVar(&f.o.Mirrors, "mirrors", "keyburn-mirrors", "`directory` of the mirror cache")
	fs.Var(&f.rewrites, "git-url-rewrite", "`FROM=TO`: fetch FROM… URLs from TO…; repeatable")
	fs.IntVar(&f.o.Parallel, "parallel", 2, "repositories fetched and scanned at once")
	fs.Int64Var(&f.appID, "github-app-id", 0, "authenticate as this GitHub App `ID` (with --github-app-key), through its installation")
	fs.StringVar(&f.appKey, "github-app-key", "", "the GitHub App's private key `file` (PEM)")
	fs.StringVar(&f.queueURL, "queue", "", "put one job per repository on this Amazon SQS queue `URL`, or in the state's own queue (\"state\": a fleet sharing one PostgreSQL), for the receivers' workers, instead of scanning here")
	fs.BoolVar(&f.alerts, "alerts", false, "act on the organisation's open AWS secret-scanning alerts instead of scanning its repositories")
}

func runOrg(ctx context.Context, args []string, stdout io.Writer, u *ui) (int, error) {
	var f orgFlags
	fs := flag.NewFlagSet("github", flag.ContinueOnError)
	f.register(fs)
	if err := parseFlags(fs, args, u, orgUsage, stdout); err != nil {
		return exitError, err
	}
	if (f.o.Org == "") == (f.o.User == "") {
		fs.Usage()
		return exitError, errors.New("give one of --org and --user")
	}
	if f.alerts && (f.o.Org == "" || f.queueURL != "") {
		return exitError, errors.New("--alerts goes with --org (secret-scanning alerts are an organisation's), and not with --queue")
	}
	if f.alerts {
		f.c.verify = true // an alert is acted on only once its key is verified
	}
	s, err := f.c.resolve(ctx, u, ".")
	if err != nil {
		return exitError, err
	}
	o, err := f.options(ctx, s, u)
	if err != nil {
		return exitError, err
	}
	s.where = "github.com/" + f.o.Org + f.o.User
	if f.alerts {
		return runAlerts(ctx, f, o, s, u, stdout)
	}
	if f.queueURL == "state" {
		// The shared state's own queue: the receivers of a fleet on one
		// PostgreSQL (or on this machine's file) take the jobs from it.
		st, err := f.c.openState()
		if err != nil {
			return exitError, err
		}
		defer st.Close()
		n, err := org.Enqueue(ctx, o, st)
		if err != nil {
			return exitError, err
		}
		u.printf("queued %d repository scan(s) in the state %s", n, store.Describe(f.c.statePath))
		return exitClean, nil
	}
	if f.queueURL != "" {
		cfg, err := clients.AWS(ctx)
		if err != nil {
			return exitError, fmt.Errorf("--queue: %w", err)
		}
		n, err := org.Enqueue(ctx, o, sqsqueue.New(clients.SQS(cfg, f.c.awsEndpoint), f.queueURL, ""))
		if err != nil {
			return exitError, err
		}
		u.printf("queued %d repository scan(s) on %s", n, f.queueURL)
		return exitClean, nil
	}
	if err := store.Prepare(f.c.statePath); err != nil {
		return exitError, err
	}
	st, err := store.Open(f.c.statePath)
	if err != nil {
		return exitError, err
	}
	defer st.Close()
	o.Store = st
	var scanned *org.Result
	scan := func(ctx context.Context) (*engine.Result, error) {
		bar := orgProgress(&o, u)
		res, err := org.Scan(ctx, o)
		if res == nil {
			return nil, err
		}
		if bar != nil {
			_ = bar.Finish()
		}
		scanned = res
		u.printf("%d repositories: %d scanned, %d unchanged since the last scan (skipped), %d failed", res.Repos, res.Scanned, res.Unchanged, res.Failed)
		for name, n := range res.PerRepo {
			if n > 0 {
				u.printf("  %s: %d finding(s)", name, n)
			}
		}
		return &engine.Result{Findings: res.Findings, Bytes: res.Bytes, Files: int64(res.Scanned)}, err
	}
	// Once the keys are checked and the results written: where each
	// repository's scan ended is remembered, except for one holding a key
	// the check could not finish with (the next run meets it again).
	remember := pipeline.Sink{Name: "remember where each repository's scan ended", Take: func(ctx context.Context, out *pipeline.Outcome) error {
		if scanned == nil {
			return nil
		}
		unsettled := map[string]bool{}
		for _, f := range out.Checked {
			if check.Unsettled(f) != "" {
				unsettled[f.KeyID] = true
			}
		}
		_, held, err := scanned.Remember(ctx, func(keyID string) bool { return unsettled[keyID] })
		if held > 0 {
			u.errorf("scans not remembered for %d of the repositories: each holds a key that could not be checked, and the next run scans its new commits again", held)
		}
		return err
	}}
	return f.c.run(ctx, u, s, stdout, scan, remember)
}

// maxAlerts bounds the alerts one run reads.
const maxAlerts = 10000

// runAlerts clears an organisation's backlog of AWS secret-scanning alerts:
// each open one is fetched with its secret and made into findings; they
// are verified and responded to like any scan's; then each alert whose key
// is out of use is resolved as revoked, and each other one left open with
// the reason.
func runAlerts(ctx context.Context, f orgFlags, o org.Options, s *setup, u *ui, stdout io.Writer) (int, error) {
	var prepared []*ghalert.Alert
	var total int
	scan := func(ctx context.Context) (*engine.Result, error) {
		list, err := ghalert.ListOpen(ctx, o.Client, o.Org, maxAlerts)
		if err != nil && len(list) == 0 {
			return nil, err
		}
		total = len(list)
		u.printf("%d open AWS secret-scanning alert(s) in %s", len(list), o.Org)
		for _, a := range list {
			name, err := ghrepo.Parse(a.GetRepository().GetFullName())
			if err != nil {
				u.errorf("alert #%d: %v", a.GetNumber(), err)
				continue
			}
			p, err := ghalert.Prepare(ctx, o.Client, s.opts, name, a, u)
			switch {
			case err != nil:
				u.errorf("%s#%d: %v", name, a.GetNumber(), err)
			case p.Skip != "":
				u.printf("%s#%d: left open: %s", name, p.Number, p.Skip)
			default:
				prepared = append(prepared, p)
			}
		}
		return &engine.Result{Findings: ghalert.Merge(prepared)}, err
	}
	// Once the keys are checked and the results written: each alert
	// whose key is out of use resolved as revoked, the others left open
	// with the reason.
	resolve := pipeline.Sink{Name: "resolve alerts", Take: func(ctx context.Context, _ *pipeline.Outcome) error {
		var st *store.Store
		if len(prepared) > 0 {
			var err error
			if st, err = f.c.openState(); err != nil {
				u.errorf("state: %v: keys deleted by an earlier run are not recognised", err)
			} else {
				defer st.Close()
			}
		}
		var errs []error
		resolved, would := 0, 0
		for _, p := range prepared {
			out, err := p.Resolve(ctx, o.Client, ghalert.ResolveOptions{State: st, DryRun: f.c.dryRun})
			errs = append(errs, err)
			switch {
			case out.Would:
				would++
				u.printf("%s#%d: left open: a dry run; it would be resolved as revoked (%s)", p.Repo, p.Number, out.Comment)
			case out.Resolved:
				resolved++
				u.printf("%s#%d: resolved as revoked (%s)", p.Repo, p.Number, out.Comment)
			default:
				u.printf("%s#%d: left open: %s", p.Repo, p.Number, out.Why)
			}
		}
		if would > 0 {
			u.printf("%d of %d alert(s) would be resolved as revoked (a dry run resolves nothing)", would, total)
		} else {
			u.printf("%d of %d alert(s) resolved as revoked", resolved, total)
		}
		return errors.Join(errs...)
	}}
	return f.c.run(ctx, u, s, stdout, scan, resolve)
}

// options turns the flags into the organisation scan's options, with its
// GitHub client (a token, or a GitHub App's installation token).
func (f *orgFlags) options(ctx context.Context, s *setup, u *ui) (org.Options, error) {
	o := f.o
	if f.shard != "" {
		if _, err := fmt.Sscanf(f.shard, "%d/%d", &o.Shard, &o.Shards); err != nil || o.Shards < 1 || o.Shard < 0 || o.Shard >= o.Shards {
			return o, fmt.Errorf("--shard %q: want i/n with 0 <= i < n", f.shard)
		}
	}
	o.Repos, o.Rewrites, o.Engine, o.Reporter = f.repos, f.rewrites, s.opts, u
	var err error
	if o.Host, err = ghrepo.HostForAPI(f.apiURL); err != nil {
		return o, fmt.Errorf("--github-api: %w", err)
	}
	o.Token = os.Getenv("GITHUB_TOKEN")
	app, err := clients.App(f.appID, f.appKey, f.apiURL)
	if err != nil {
		return o, err
	}
	if app != nil {
		owner := o.Org
		if owner == "" {
			owner = o.User
		}
		if o.Token, err = app.OrgToken(ctx, owner, o.User != ""); err != nil {
			return o, err
		}
	}
	o.Client, err = clients.GitHub(o.Token, f.apiURL)
	return o, err
}

// orgProgress reports each repository as it ends: a progress bar on a
// terminal, a line each otherwise; and rate-limit waits.
func orgProgress(o *org.Options, u *ui) *progressbar.ProgressBar {
	o.Wait = func(d time.Duration, why string) {
		u.printf("GitHub %s: waiting %s", why, d.Round(time.Second))
	}
	var bar *progressbar.ProgressBar
	if isTerminal(os.Stderr) {
		bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
	}
	var found int
	var mu sync.Mutex // Progress is called from several repositories at once
	o.Progress = func(p org.Progress) {
		mu.Lock()
		defer mu.Unlock()
		found += p.Findings
		if bar != nil {
			if bar.GetMax() != p.Total {
				bar.ChangeMax(p.Total)
			}
			bar.Describe(fmt.Sprintf("%s · %d findings", p.Repo, found))
			_ = bar.Add(1)
			return
		}
		state := fmt.Sprintf("%d finding(s), %s", p.Findings, humanize.IBytes(uint64(p.Bytes)))
		switch {
		case p.Err != nil:
			state = "failed"
		case p.Skipped:
			state = "unchanged since the last scan"
		}
		u.printf("[%d/%d] %s: %s", p.Done, p.Total, p.Repo, state)
	}
	return bar
}
