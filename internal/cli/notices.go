package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	flag "github.com/spf13/pflag"

	"github.com/keyburn/keyburn/internal/awsnotice"
	"github.com/keyburn/keyburn/internal/check"
	"github.com/keyburn/keyburn/internal/clients"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/pipeline"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/sqsqueue"
	"github.com/keyburn/keyburn/internal/store"
)

const noticesUsage = `usage: keyburn scan aws-notices --queue URL --respond deactivate|delete|rotate [flags]

Acts on AWS's own notices that keys leaked: the AWS Health events
AWS_RISK_CREDENTIALS_EXPOSED that EventBridge sends to the SQS queue URL. It
reads what the queue holds now, once. Each notice's keys are acted on like live
keys without an STS call (there is no secret: the notice, through your own
account, is the proof): keyburn asks AWS which account and user each key is
in, and every rail holds (accounts allowed, denied and canary, its own keys,
the audit log first, --dry-run). A notice is deleted from the queue once each
of its keys is settled; one that failed (AWS unreachable) stays for a later
run, and is parked in the state after 12 tries. Other events are dropped; a
malformed one is parked at once ('keyburn scan audit' lists parked ones).
Under --dry-run nothing changes, on the queue either.

Flags:
`

// How notices are claimed from their queue: each is invisible to others
// for noticeLease while it is worked on; one that did not settle comes
// back after noticeRetry, and is parked after noticeAttempts receives.
const (
	noticeLease    = 5 * time.Minute
	noticeRetry    = time.Minute
	noticeAttempts = 12
)

func runNotices(ctx context.Context, args []string, stdout io.Writer, u *ui) (int, error) {
	var c common
	var queueURL string
	var maxNotices int
	fs := flag.NewFlagSet("aws-notices", flag.ContinueOnError)
	c.register(fs)
	fs.StringVar(&queueURL, "queue", "", "the SQS queue `URL` EventBridge sends AWS Health events to")
	fs.IntVar(&maxNotices, "max", 1000, "read at most this many `messages`")
	if err := parseFlags(fs, args, u, noticesUsage, stdout); err != nil {
		return exitError, err
	}
	if queueURL == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitError, errors.New("scan aws-notices takes --queue URL and no other argument")
	}
	if maxNotices < 1 {
		return exitError, fmt.Errorf("--max %d: want 1 or more", maxNotices)
	}
	s, err := c.resolve(ctx, u, ".")
	if err != nil {
		return exitError, err
	}
	if s.policy == respond.Off {
		return exitError, errors.New("scan aws-notices acts on AWS's notices: give --respond=deactivate, delete or rotate (with --dry-run to see what it would do)")
	}
	s.where = "AWS notices from " + queueURL
	// The responder first: nothing is taken off the queue by a run that
	// could not act on it.
	k, err := c.prepare(ctx, u, s)
	if err != nil {
		return exitError, err
	}
	defer c.closeChecker()
	q := sqsqueue.Raw(clients.SQS(k.cfg, c.awsEndpoint), queueURL, awsnotice.Event, k.st.Park)
	type held struct {
		d  store.Delivery
		fs []*finding.Finding
	}
	var holds []held
	// A dry run keeps what it read in flight until its end, then gives it
	// all back: released at once, a message would come round again
	// before the queue was read through.
	var giveBack []store.Delivery
	scan := func(ctx context.Context) (*engine.Result, error) {
		seen := map[string]bool{}
		var all []*finding.Finding
		var dropped, parked int
		for len(seen) < maxNotices {
			d, ok, err := q.Claim(ctx, noticeLease, noticeAttempts)
			if errors.Is(err, sqsqueue.ErrParked) {
				// Received too often: parked by Claim. Said, and on.
				u.errorf("%v", err)
				parked++
				continue
			}
			if err != nil {
				return &engine.Result{Findings: all}, fmt.Errorf("read %s: %w", queueURL, err)
			}
			if !ok {
				break
			}
			if seen[d.ID] {
				_ = q.Release(ctx, d) // round the queue once: it is read once
				break
			}
			seen[d.ID] = true
			n, err := awsnotice.Parse(d.Payload)
			switch {
			case errors.Is(err, awsnotice.ErrOther):
				dropped++
				u.debugf("%s: dropped: %v", d.ID, err)
				if c.dryRun {
					giveBack = append(giveBack, d)
				} else {
					err = q.Finish(ctx, d)
				}
			case err != nil && c.dryRun:
				u.errorf("%s: %v: would be parked in the state", d.ID, err)
				giveBack = append(giveBack, d)
				err = nil
			case err != nil:
				parked++
				u.errorf("%s: %v: parked in the state", d.ID, err)
				err = q.Fail(ctx, d, err.Error(), 0, 0)
			default:
				holds = append(holds, held{d: d, fs: n.Findings()})
				all = append(all, holds[len(holds)-1].fs...)
				err = nil
			}
			if err != nil {
				u.Failed(err)
			}
		}
		u.printf("%d message(s) read from %s: %d notice(s) of exposed keys, %d other event(s) dropped, %d parked", len(seen), queueURL, len(holds), dropped, parked)
		return &engine.Result{Findings: all}, nil
	}
	// Once the keys are checked and the results written: a notice whose
	// keys are all settled is deleted; one that is not comes back later.
	settle := pipeline.Sink{Name: "settle the queue", Take: func(ctx context.Context, _ *pipeline.Outcome) error {
		var errs []error
		for _, d := range giveBack {
			errs = append(errs, q.Release(ctx, d))
		}
		for _, h := range holds {
			if c.dryRun {
				errs = append(errs, q.Release(ctx, h.d))
				continue
			}
			var why []string
			for _, f := range h.fs {
				if w := check.UnsettledOrUnchecked(f); w != "" {
					why = append(why, f.KeyID+": "+w)
				}
			}
			if len(why) == 0 {
				errs = append(errs, q.Finish(ctx, h.d))
				continue
			}
			u.errorf("%s: not settled (%s): left on the queue for a later run", h.d.ID, strings.Join(why, "; "))
			errs = append(errs, q.Fail(ctx, h.d, strings.Join(why, "; "), noticeRetry, noticeAttempts))
		}
		if c.dryRun && len(holds) > 0 {
			u.printf("a dry run: %d notice(s) left on the queue", len(holds))
		}
		return errors.Join(errs...)
	}}
	return c.run(ctx, u, s, stdout, scan, settle)
}
