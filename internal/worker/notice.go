package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyburn/keyburn/internal/awsnotice"
	"github.com/keyburn/keyburn/internal/check"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/notify"
	"github.com/keyburn/keyburn/internal/store"
)

// NoticeEvent is an AWS credentials-exposed notice, read from the queue
// EventBridge sends them to.
const NoticeEvent = awsnotice.Event

// errNoticeNotActed parks a notice a receiver that does not act (the
// responder off, or a dry run) looked at: acted on later, once requeued
// ('keyburn scan audit --requeue'), by a responder that acts.
var errNoticeNotActed = errors.New("not acted on (the responder is off, or a dry run): kept parked, to be requeued once the responder acts")

// processNotice acts on AWS's own notice that keys leaked: each key is
// found in IAM and acted on, every rail held (check.Stage, respond.Vouch),
// without an STS verification (there is no secret). Another kind of event
// is acknowledged and dropped; a malformed one is parked. A notice whose
// keys were not all settled (IAM unreachable, an action failed) fails, to
// be retried with backoff and parked at last.
func (w *Worker) processNotice(ctx context.Context, d store.Delivery) (Result, error) {
	n, err := awsnotice.Parse(d.Payload)
	if errors.Is(err, awsnotice.ErrOther) {
		w.o.Log.Info("notice dropped", "reason", err.Error())
		return Result{Ignored: err.Error()}, nil
	}
	if err != nil {
		return Result{}, err
	}
	res := Result{Repo: "aws:" + n.Account, Range: "AWS Health notice " + n.EventARN}
	log := w.o.Log.With("account", n.Account, "notice", n.EventARN)
	if w.o.Responder == nil {
		log.Error("AWS NOTICE OF EXPOSED KEYS, NOT ACTED ON: the responder is off", "keys", strings.Join(n.Keys, ","))
	}
	scan := func(context.Context) (*engine.Result, error) { return &engine.Result{Findings: n.Findings()}, nil }
	res.Findings, err = w.run(ctx, log, notify.Where{Repository: "AWS account " + n.Account}, scan)
	if err != nil {
		return res, err
	}
	if w.o.Responder == nil || w.o.Responder.DryRun() {
		return res, errNoticeNotActed
	}
	var unsettled []string
	for _, f := range res.Findings {
		if why := check.UnsettledOrUnchecked(f); why != "" {
			unsettled = append(unsettled, f.KeyID+": "+why)
		}
	}
	if len(unsettled) > 0 {
		return res, fmt.Errorf("notice %s: %s", n.EventARN, strings.Join(unsettled, "; "))
	}
	return res, nil
}
