// Package receiver is keyburn-webhook, keyburn's receiver of GitHub push
// and secret_scanning_alert webhooks: every delivery is checked
// (X-Hub-Signature-256), stored durably, and answered within GitHub's time
// limit; workers then scan what each push adds, or act on the AWS key each
// alert is about.
//
//	KEYBURN_WEBHOOK_SECRET=… keyburn-webhook --listen :8080
//
// cmd/keyburn-webhook is the binary; cmd/webhook the same under the
// clone's short path.
package receiver

import (
	"context"
	"errors"
	"fmt"
	flag "github.com/spf13/pflag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyburn/keyburn/internal/buildinfo"
	"github.com/keyburn/keyburn/internal/clients"
	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/notify"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/sqsqueue"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/worker"
	"github.com/keyburn/keyburn/rules"
)

const usage = `usage: keyburn-webhook --listen ADDR [flags]
       keyburn-webhook version

Receives GitHub push and secret_scanning_alert webhooks. The secret comes from
KEYBURN_WEBHOOK_SECRET or --secret-file (never a flag: flags show in ps);
without one it refuses to start. Workers fetch each push into a mirror cache,
scan what it adds, verify and respond (--respond, off unless set), and post a
commit status and, for a live key, an issue (with GITHUB_TOKEN, or as a GitHub
App with --github-app-id and --github-app-key, using each push's installation
token). For an AWS secret-scanning alert they fetch the alert, verify and
respond, and resolve it as revoked once its key is out of use. The responder
uses the AWS SDK's default credentials. --queue keeps deliveries in Amazon SQS
for a fleet of receivers and workers. --aws-notices reads AWS's own notices of
exposed keys (AWS Health events through EventBridge and SQS) and acts on them
like live keys; --respond=rotate gives each key's user a replacement, kept in
AWS Secrets Manager, before the leaked key is deactivated and deleted.

Endpoints: POST /webhook, GET /healthz, GET /readyz, GET /metrics.
`

// Main runs the receiver as a process: os.Args in, os.Exit out.
func Main() {
	// Everything the receiver writes (state, mirrors of private code and
	// leaked secrets) is its owner's alone.
	privateUmask()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "keyburn-webhook:", err)
		os.Exit(2)
	}
}

type config struct {
	listen      string
	state       string
	secretFile  string
	mirrors     string
	workers     int
	notify      []notify.Target // from [notify] in --config
	rewrites    rewriteFlags
	githubAPI   string
	respond     string
	dryRun      bool
	soak        time.Duration
	dueEvery    time.Duration
	awsEndpoint string
	configFile  string
	queueURL    string
	queueDLQ    string
	notices     string
	appID       int64
	appKey      string
	githubURL   string
	owners      ownerFlags
	grace       time.Duration
	deadline    time.Duration
	lease       time.Duration
}

type ownerFlags []string

func (o *ownerFlags) String() string { return strings.Join(*o, ",") }
func (o *ownerFlags) Type() string   { return "owner" }
func (o *ownerFlags) Set(s string) error {
	*o = append(*o, s)
	return nil
}

type rewriteFlags []mirror.Rewrite

func (r *rewriteFlags) String() string { return fmt.Sprint(*r) }
func (r *rewriteFlags) Type() string   { return "FROM=TO" }
func (r *rewriteFlags) Set(s string) error {
	rw, err := mirror.ParseRewrite(s)
	if err == nil {
		*r = append(*r, rw)
	}
	return err
}

// run runs the receiver until ctx ends. --help prints usage to stdout and
// returns flag.ErrHelp.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && (args[0] == "version" || args[0] == "--version") {
		fmt.Fprintln(stdout, "keyburn-webhook", buildinfo.Version())
		return nil
	}
	var c config
	fs := flag.NewFlagSet("keyburn-webhook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.listen, "listen", "", "address to listen on, such as :8080")
	fs.StringVar(&c.state, "state", "", "the state: delivery queue, verdicts, audit log; a `file`, or a postgres:// URL a fleet shares (default $KEYBURN_STATE_URL, else the CLI's file, so `keyburn scan audit` sees what the receiver did: $XDG_STATE_HOME/keyburn/state.db, or ~/.local/state/keyburn/state.db)")
	fs.StringVar(&c.secretFile, "secret-file", "", "read the webhook secret from this `file`")
	fs.StringVar(&c.mirrors, "mirrors", "keyburn-mirrors", "`directory` of the per-repository mirror cache")
	fs.IntVar(&c.workers, "workers", 2, "deliveries processed at once (0: receive and store only, for a fleet whose workers run elsewhere)")
	fs.Var(&c.rewrites, "git-url-rewrite", "`FROM=TO`: fetch FROM… URLs from TO… (like git's insteadOf); repeatable")
	fs.StringVar(&c.githubAPI, "github-api", "", "GitHub REST API base `URL` (GitHub Enterprise; default api.github.com)")
	fs.StringVar(&c.respond, "respond", "off", "what to do with live keys: off, deactivate, delete, or rotate (a replacement key kept in Secrets Manager for the user first, then delete)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "with --respond: record what would be done, change nothing")
	fs.DurationVar(&c.soak, "soak", 0, "with --respond=delete: wait this long between deactivating and deleting")
	fs.DurationVar(&c.dueEvery, "due-interval", time.Minute, "how often to carry out deletions whose soak window has passed")
	fs.StringVar(&c.awsEndpoint, "aws-endpoint", "", "STS and IAM endpoint `URL` (default AWS's)")
	fs.StringVar(&c.configFile, "config", "", "rules `file` extending the defaults ([aws] section included)")
	fs.StringVar(&c.queueURL, "queue", "", "an Amazon SQS queue `URL` to keep deliveries in, for a fleet (default: the state file)")
	fs.Int64Var(&c.appID, "github-app-id", 0, "authenticate as this GitHub App `ID` (with --github-app-key)")
	fs.StringVar(&c.appKey, "github-app-key", "", "the GitHub App's private key `file` (PEM)")
	fs.StringVar(&c.queueDLQ, "queue-dlq", "", "with --queue: the SQS `URL` where deliveries that keep failing are parked")
	fs.StringVar(&c.githubURL, "github-url", "", "clone repositories from this GitHub `URL` (default https://github.com, or --github-api's host); the token goes only there")
	fs.Var(&c.owners, "owner", "act only for this GitHub `owner` (organisation or user); repeatable, joined with [github] owners (default: every owner)")
	fs.DurationVar(&c.grace, "grace", 30*time.Second, "at shutdown, how long deliveries in progress may take to finish before they are given back")
	fs.DurationVar(&c.deadline, "deadline", 15*time.Minute, "the longest one delivery may take")
	fs.StringVar(&c.notices, "aws-notices", "", "an Amazon SQS queue `URL` EventBridge sends AWS Health events to: each credentials-exposed notice's keys are acted on (--respond); other events are dropped, malformed ones parked in the state")
	fs.DurationVar(&c.lease, "lease", 2*time.Minute, "how long a worker's claim on a delivery holds unrenewed: the deliveries of a receiver that dies go to others after it")
	fs.Usage = func() {}
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		fmt.Fprint(stdout, fs.FlagUsages())
		return err
	case err != nil:
		return fmt.Errorf("%w (see keyburn-webhook --help)", err)
	}
	c.state = store.Where(c.state)
	if c.listen == "" {
		return errors.New("--listen is required (see keyburn-webhook --help)")
	}
	secret, err := loadSecret(c.secretFile)
	if err != nil {
		return err
	}
	if c.dryRun && c.respond == string(respond.Off) {
		return errors.New("--dry-run goes with --respond=deactivate or --respond=delete")
	}
	if c.soak != 0 && !respond.Policy(c.respond).Deletes() {
		return errors.New("--soak goes with --respond=delete or --respond=rotate (it is the wait between deactivating and deleting)")
	}
	if err := store.Prepare(c.state); err != nil {
		return err
	}
	st, err := store.Open(c.state)
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	wopts, err := c.workerOptions(ctx, st, log)
	if err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	wopts.Wake = wake
	mets := newMetrics()
	wopts.Observe = mets.observe
	h := &handler{secret: secret, store: st, log: log, metrics: mets, wake: wake, owners: wopts.Owners, bodies: newBodies(bodyBudget, bodyWait),
		workers: max(0, c.workers)}
	if c.queueURL != "" {
		cfg, err := clients.AWS(ctx)
		if err != nil {
			return fmt.Errorf("--queue: %w", err)
		}
		q := sqsqueue.New(clients.SQS(cfg, c.awsEndpoint), c.queueURL, c.queueDLQ)
		h.queue, wopts.Queue = q, q
	}
	srv := newServer(c.listen, h)
	// At shutdown workers stop claiming (stop), finish what they hold
	// within the grace period, then give back what is left (work).
	stopCtx, stopClaiming := context.WithCancel(context.Background())
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopClaiming()
	defer stopWork()
	var wg sync.WaitGroup
	for i := range max(0, c.workers) {
		wg.Go(func() { runWorker(stopCtx, workCtx, i, worker.New(wopts), &h.alive, log) })
	}
	if c.notices != "" && c.workers == 0 {
		log.Warn("--aws-notices is not read by a receiver with --workers 0: the receivers with workers read it")
	}
	if c.notices != "" && c.workers > 0 {
		// One more worker, reading AWS's notices: its queue is written by
		// EventBridge, and what it cannot process is parked in the state.
		cfg, err := clients.AWS(ctx)
		if err != nil {
			return fmt.Errorf("--aws-notices: %w", err)
		}
		nq := sqsqueue.Raw(clients.SQS(cfg, c.awsEndpoint), c.notices, worker.NoticeEvent, st.Park)
		nq.Wait = noticeWait
		nopts := wopts
		nopts.Queue, nopts.Wake = nq, nil
		var alive atomic.Int32 // not among --workers: /readyz counts those
		wg.Go(func() { runWorker(stopCtx, workCtx, c.workers, worker.New(nopts), &alive, log) })
		log.Info("reading AWS notices", "queue", c.notices)
		if wopts.Responder == nil || c.dryRun {
			log.Error("AWS NOTICES NOT ACTED ON: the responder is off or in a dry run; each notice is parked in the state, to be requeued ('keyburn scan audit --requeue') once it acts")
		}
	}
	if wopts.Responder != nil && c.workers > 0 {
		wg.Go(func() { deleteDue(stopCtx, wopts.Responder, c.dueEvery, log) })
	}
	if len(c.notify) > 0 && c.workers > 0 {
		sender := &notify.Sender{Store: st, Targets: c.notify}
		wg.Go(func() { sendNotifications(stopCtx, sender, log) })
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("listening", "version", buildinfo.Version(), "addr", c.listen, "state", store.Describe(c.state), "workers", c.workers)
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log.Info("shutting down: draining requests and work in flight", "grace_seconds", c.grace.Seconds())
	serr := srv.Shutdown(shutdown)
	stopClaiming()
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(c.grace):
		log.Warn("grace period over: deliveries still in progress are given back to the queue")
		stopWork()
		<-drained
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return serr
}

// workerOptions builds what the workers need from the flags and environment.
func (c *config) workerOptions(ctx context.Context, st *store.Store, log *slog.Logger) (worker.Options, error) {
	var user *rules.UserFile
	if c.configFile != "" {
		text, err := os.ReadFile(c.configFile)
		if err != nil {
			return worker.Options{}, fmt.Errorf("read config: %w", err)
		}
		user = &rules.UserFile{Name: c.configFile, Text: text}
	}
	set, err := rules.Load(rules.DefaultFS(), user)
	if err != nil {
		return worker.Options{}, err
	}
	policy, err := respond.ParsePolicy(c.respond)
	if err != nil {
		return worker.Options{}, fmt.Errorf("--respond: %w", err)
	}
	// keyburn's own AWS credentials (the SDK's default chain, resolved when
	// first used): they name the account of old-format key IDs, so that a
	// canary is never called, and they are the responder's.
	cfg, err := clients.AWS(ctx)
	if err != nil {
		return worker.Options{}, err
	}
	host, err := ghrepo.HostForAPI(c.githubAPI)
	if c.githubURL != "" {
		host, err = ghrepo.NewHost(c.githubURL)
	}
	if err != nil {
		return worker.Options{}, fmt.Errorf("--github-url: %w", err)
	}
	owners := ghrepo.Owners(append(append([]string{}, c.owners...), set.GitHub.Owners...))
	if len(owners) == 0 {
		log.Warn("no owner allowlist: pushes to any GitHub owner are scanned (--owner or [github] owners limits them)")
	}
	if c.notify, err = notify.Targets(set.Notify, nil); err != nil {
		return worker.Options{}, err
	}
	o := worker.Options{Queue: st, State: st, Engine: engine.Options{Matcher: detect.New(set)}, Mirrors: c.mirrors,
		Host: host, Owners: owners, Deadline: c.deadline, Lease: c.lease,
		Rewrites: c.rewrites, Token: os.Getenv("GITHUB_TOKEN"), Log: log}
	cc := clients.Check{Endpoint: c.awsEndpoint, UserAgent: "keyburn-webhook", Rules: set.AWS, Policy: policy,
		DryRun: c.dryRun, Soak: c.soak, Store: st}
	o.Verifier = cc.Verifier(cfg)
	switch {
	case policy == respond.Off:
		log.Warn("RESPONDER OFF: live keys are verified and reported, never deactivated or deleted (--respond=delete to revoke them)")
		if err := clients.CheckCredentials(ctx, cfg); err != nil {
			log.Warn("no AWS credentials of keyburn's own: --respond could not act, and keys whose ID does not encode their account are not verified (AWS_PROFILE, AWS_ACCESS_KEY_ID, or an instance role)", "err", err)
		}
	default:
		o.Responder, err = cc.Responder(ctx, cfg)
		if err != nil {
			// Start anyway: keys are still found, verified and reported.
			// Say loudly that none will be revoked.
			log.Error("RESPONDER DISABLED: live keys will be reported, not revoked", "respond", c.respond, "err", err)
			o.Responder = nil
			break
		}
		level := slog.LevelWarn // acting on keys is worth a warning's attention
		if c.dryRun {
			level = slog.LevelError
		}
		log.Log(ctx, level, "RESPONDER ON: "+o.Responder.Describe(), "respond", c.respond, "dry_run", c.dryRun, "soak", c.soak.String())
	}
	if len(c.notify) > 0 {
		o.Notify = func(ctx context.Context, fs []*finding.Finding, where notify.Where) error {
			now := time.Now()
			_, err := notify.Enqueue(ctx, st, c.notify, notify.Messages(fs, where, now), now)
			return err
		}
		log.Info("notifications on", "targets", len(c.notify))
	} else {
		log.Warn("no notification targets: findings and actions are told only in this log and on GitHub ([[notify.target]] in --config)")
	}
	if o.App, err = clients.App(c.appID, c.appKey, c.githubAPI); err != nil {
		return o, err
	}
	if tok := os.Getenv("GITHUB_TOKEN"); tok != "" || c.githubAPI != "" || o.App != nil {
		if o.GitHub, err = clients.GitHub(tok, c.githubAPI); err != nil {
			return o, err
		}
	}
	if o.Token == "" && o.App == nil {
		log.Warn("NO GITHUB CREDENTIALS: private repositories cannot be fetched, secret-scanning alerts cannot be read, and no commit status, issue or alert resolution is posted (GITHUB_TOKEN, or --github-app-id with --github-app-key)")
	}
	return o, nil
}

// noticeWait is how long one receive from the notices queue waits for a
// message (SQS long polling: one call per wait while the queue is empty).
var noticeWait = 10 * time.Second

// runWorker runs one worker, counted alive while it runs. A panic outside
// a delivery (those are the delivery's failure) ends it loudly, and
// /readyz then fails.
func runWorker(stop, work context.Context, i int, w *worker.Worker, alive *atomic.Int32, log *slog.Logger) {
	alive.Add(1)
	defer alive.Add(-1)
	defer func() {
		if r := recover(); r != nil {
			log.Error("WORKER DIED", "worker", i, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	w.Run(stop, work)
}

// sendNotifications sends what the outbox holds, every second, until ctx
// ends; failures are retried by the sender's backoff.
func sendNotifications(ctx context.Context, s *notify.Sender, log *slog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if n, err := s.Flush(ctx); err != nil && ctx.Err() == nil {
			log.Warn("notifications", "sent", n, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deleteDue carries out the deletions whose soak window has passed, at
// once and then every interval, until ctx ends.
func deleteDue(ctx context.Context, r *respond.Responder, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		done, err := r.DeleteDue(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("due deletions", "err", err)
		}
		for _, res := range done {
			attrs := []any{"key_id", res.KeyID, "action", string(res.Action), "due_at", res.DueAt.UTC().Format(time.RFC3339)}
			if res.Reason != "" {
				attrs = append(attrs, "reason", res.Reason)
			}
			if res.Err != nil {
				log.Error("due deletion: the state could not be written", append(attrs, "err", res.Err)...)
			} else {
				log.Warn("due deletion", attrs...)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// loadSecret reads the webhook secret from a file or KEYBURN_WEBHOOK_SECRET.
func loadSecret(file string) ([]byte, error) {
	s := os.Getenv("KEYBURN_WEBHOOK_SECRET")
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read the webhook secret: %w", err)
		}
		s = strings.TrimRight(string(data), "\r\n")
	}
	if s == "" {
		return nil, errors.New("no webhook secret: set KEYBURN_WEBHOOK_SECRET or --secret-file (GitHub's webhook settings hold the same secret)")
	}
	return []byte(s), nil
}

// newServer builds the HTTP server with every timeout set.
func newServer(addr string, h *handler) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", h.webhook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		depth, err := h.store.QueueDepth(r.Context())
		if err != nil {
			http.Error(w, "state unavailable", http.StatusServiceUnavailable)
			return
		}
		for st, n := range depth {
			h.metrics.queue.WithLabelValues(st).Set(float64(n))
		}
		if n := int(h.alive.Load()); n < h.workers {
			http.Error(w, fmt.Sprintf("%d of %d workers alive", n, h.workers), http.StatusServiceUnavailable)
			return
		}
		if n := depth[store.Parked]; n > 0 {
			// Still ready: taken out of a load balancer, the receiver would
			// lose new deliveries too (GitHub does not redeliver on its
			// own). Said here, in the metric, and by scan audit.
			fmt.Fprintf(w, "ready; %d parked deliveries need attention ('keyburn scan audit' lists them, --requeue retries them)\n", n)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.metrics.reg, promhttp.HandlerOpts{}))
	return &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
