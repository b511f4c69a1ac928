package receiver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"golang.org/x/sync/semaphore"

	"github.com/keyburn/keyburn/internal/ghalert"
	"github.com/keyburn/keyburn/internal/ghpush"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/worker"
)

// maxBody caps a delivery's body before anything reads it: GitHub caps
// webhook payloads at 25 MB.
const maxBody = 25 << 20

// Bodies are read before their signature can be checked: anyone may send
// them. bodyBudget bounds the bytes all requests being read may hold at
// once (a request reserves its Content-Length, or maxBody when it has
// none); one that cannot reserve within bodyWait is answered 503 with
// Retry-After, as GitHub retries. 24 bodies of 25 MB at once took the
// receiver from 25 MB to 1 GB before this bound.
const (
	bodyBudget = 4 * maxBody
	bodyWait   = 2 * time.Second
)

// bodies is the budget of bytes held by bodies being read and checked.
type bodies struct {
	sem  *semaphore.Weighted
	wait time.Duration
}

func newBodies(budget int64, wait time.Duration) *bodies {
	return &bodies{sem: semaphore.NewWeighted(budget), wait: wait}
}

// handler receives GitHub webhook deliveries: it checks the signature,
// stores push deliveries durably, and only then answers 202.
type handler struct {
	secret  []byte
	store   *store.Store // state: readiness, and the queue unless queue is set
	queue   enqueuer     // nil: the store's queue
	log     *slog.Logger
	metrics *metrics
	wake    chan<- struct{} // nil, or a worker to wake after a delivery is stored
	owners  ghrepo.Owners   // empty: every owner
	// workers is how many workers should be alive, alive how many are:
	// /readyz fails when one has died.
	workers int
	alive   atomic.Int32
	// bodies bounds the memory of bodies read before their signature is
	// checked.
	bodies *bodies
}

type metrics struct {
	deliveries *prometheus.CounterVec // by event and outcome
	ackLatency prometheus.Histogram   // time to answer
	queue      *prometheus.GaugeVec   // deliveries by status
	scan       prometheus.Histogram   // time to process a delivery
	findings   prometheus.Counter
	verdicts   *prometheus.CounterVec // by status
	actions    *prometheus.CounterVec // by action
	errors     prometheus.Counter     // failed deliveries (retried or parked)
	unfetched  prometheus.Counter     // pushed commits that could not be fetched, even by SHA
	alerts     *prometheus.CounterVec // secret-scanning alerts, by outcome: resolved or open
	reg        *prometheus.Registry
}

func newMetrics() *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyburn_webhook_deliveries_total",
			Help: "Webhook deliveries received, by event and outcome."}, []string{"event", "outcome"}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keyburn_webhook_ack_seconds",
			Help: "Time to answer a delivery.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "keyburn_queue_deliveries",
			Help: "Stored deliveries by status."}, []string{"status"}),
		scan: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keyburn_scan_seconds",
			Help: "Time to process a push: fetch, scan, verify, respond, report.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		findings: prometheus.NewCounter(prometheus.CounterOpts{Name: "keyburn_findings_total", Help: "Keys found in pushes."}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyburn_verdicts_total",
			Help: "Verification verdicts, by status."}, []string{"status"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyburn_actions_total",
			Help: "Actions taken on keys, by action."}, []string{"action"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "keyburn_delivery_errors_total",
			Help: "Deliveries whose processing failed (retried, then parked)."}),
		unfetched: prometheus.NewCounter(prometheus.CounterOpts{Name: "keyburn_unfetchable_commits_total",
			Help: "Pushed commits that could not be fetched, even by SHA: nobody scanned them."}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyburn_alerts_total",
			Help: "GitHub secret-scanning alerts acted on, by outcome: resolved (as revoked) or open (left open, with the reason in the log)."}, []string{"outcome"}),
		reg: prometheus.NewRegistry(),
	}
	m.reg.MustRegister(m.deliveries, m.ackLatency, m.queue, m.scan, m.findings, m.verdicts, m.actions, m.errors, m.unfetched, m.alerts)
	return m
}

// observe records a processed delivery.
func (m *metrics) observe(res worker.Result, took time.Duration, err error) {
	m.scan.Observe(took.Seconds())
	m.unfetched.Add(float64(len(res.Unfetchable)))
	// What was found and done counts even in a delivery that failed
	// after it (a notice with one key acted on and one not settled).
	for _, f := range res.Findings {
		if f.Verification != nil {
			m.verdicts.WithLabelValues(f.Verification.Status).Inc()
		}
		if f.Response != nil {
			m.actions.WithLabelValues(f.Response.Action).Inc()
		}
	}
	if err != nil {
		m.errors.Inc()
		return
	}
	m.findings.Add(float64(len(res.Findings)))
	switch {
	case res.Alert == worker.AlertResolved:
		m.alerts.WithLabelValues("resolved").Inc()
	case res.Alert != "":
		m.alerts.WithLabelValues("open").Inc()
	}
}

// readBody reads the body into one buffer of its declared length (no
// doubling as it grows), capped at maxBody.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, maxBody)
	if r.ContentLength < 0 {
		return io.ReadAll(rd)
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(rd, body); err != nil {
		return nil, err
	}
	return body, nil
}

// enqueuer stores a delivery: the SQLite store or an SQS queue.
type enqueuer interface {
	Enqueue(ctx context.Context, d store.Delivery) error
}

func (h *handler) webhook(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	event := r.Header.Get("X-GitHub-Event")
	delivery := r.Header.Get("X-GitHub-Delivery")
	log := h.log.With("delivery", delivery, "event", event)
	reply := func(code int, outcome, msg string) {
		h.metrics.deliveries.WithLabelValues(metricEvent(event), outcome).Inc()
		h.metrics.ackLatency.Observe(time.Since(start).Seconds())
		if code >= 400 {
			log.Warn("delivery refused", "status", code, "reason", msg)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"status": outcome, "message": msg})
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && mt != formType) {
		reply(http.StatusUnsupportedMediaType, "unsupported-media-type", "content type must be application/json or "+formType+" (GitHub's two)")
		return
	}
	if r.ContentLength > maxBody {
		reply(http.StatusRequestEntityTooLarge, "too-large", "body over 25 MB")
		return
	}
	reserve := r.ContentLength
	if reserve < 0 {
		reserve = maxBody // no length given: the most it may be
	}
	wctx, cancel := context.WithTimeout(r.Context(), h.bodies.wait)
	err = h.bodies.sem.Acquire(wctx, reserve)
	cancel()
	if err != nil {
		w.Header().Set("Retry-After", "5")
		reply(http.StatusServiceUnavailable, "busy", "too many deliveries being read at once; retry")
		return
	}
	defer h.bodies.sem.Release(reserve)
	body, err := readBody(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(http.StatusRequestEntityTooLarge, "too-large", "body over 25 MB")
			return
		}
		reply(http.StatusBadRequest, "bad-request", "could not read the body")
		return
	}
	if !validSignature(h.secret, body, r.Header.Get("X-Hub-Signature-256")) {
		// Never log the MAC received or expected.
		reply(http.StatusUnauthorized, "bad-signature", "missing or wrong X-Hub-Signature-256")
		return
	}
	if event == "" || delivery == "" || len(delivery) > 128 {
		reply(http.StatusBadRequest, "bad-request", "missing X-GitHub-Event or X-GitHub-Delivery")
		return
	}
	if mt == formType {
		// GitHub's default: payload=<JSON>, signed over the form body as
		// sent (checked above).
		form, err := url.ParseQuery(string(body))
		if err != nil || len(form["payload"]) != 1 {
			reply(http.StatusBadRequest, "bad-request", "a form-encoded delivery needs exactly one payload field")
			return
		}
		body = []byte(form.Get("payload"))
	}
	switch event {
	case "ping":
		if !json.Valid(body) {
			reply(http.StatusBadRequest, "bad-request", "malformed JSON")
			return
		}
		reply(http.StatusOK, "pong", "keyburn is listening")
	case "push":
		p, name, err := ghpush.Parse(body)
		if err != nil {
			reply(http.StatusBadRequest, "bad-request", err.Error())
			return
		}
		log = log.With("repo", name.String())
		if !h.owners.Allows(name.Owner) {
			log.Warn("push ignored: its owner is not in the owner allowlist", "owner", name.Owner)
			reply(http.StatusAccepted, "ignored", "owner "+name.Owner+" is not scanned here")
			return
		}
		h.enqueue(r.Context(), log, reply, store.Delivery{ID: delivery, Event: event, DedupeKey: p.DedupeKey()}, p,
			"push", "ref", p.Ref, "before", p.Before, "after", p.After)
	case worker.AlertEvent:
		e, name, err := ghalert.Parse(body)
		if err != nil {
			reply(http.StatusBadRequest, "bad-request", err.Error())
			return
		}
		log = log.With("repo", name.String(), "alert", e.Alert.Number)
		if ok, why := e.Wanted(); !ok {
			reply(http.StatusAccepted, "ignored", why)
			return
		}
		if !h.owners.Allows(name.Owner) {
			log.Warn("alert ignored: its owner is not in the owner allowlist", "owner", name.Owner)
			reply(http.StatusAccepted, "ignored", "owner "+name.Owner+" is not scanned here")
			return
		}
		h.enqueue(r.Context(), log, reply, store.Delivery{ID: delivery, Event: event, DedupeKey: e.DedupeKey(name)}, e,
			"secret scanning alert", "action", e.Action, "type", e.Alert.SecretType)
	default:
		reply(http.StatusAccepted, "ignored", "event "+event+" is not scanned")
	}
}

// enqueue stores a delivery whose payload is v, compacted to what the
// worker reads (GitHub's bodies reach 25 MB, an SQS message 256 KB), and
// answers.
func (h *handler) enqueue(ctx context.Context, log *slog.Logger, reply func(int, string, string), d store.Delivery, v any, what string, logArgs ...any) {
	compact, err := json.Marshal(v)
	if err != nil {
		reply(http.StatusBadRequest, "bad-request", "unusable "+what)
		return
	}
	d.Payload = compact
	q := enqueuer(h.store)
	if h.queue != nil {
		q = h.queue
	}
	err = q.Enqueue(ctx, d)
	switch {
	case errors.Is(err, store.ErrDuplicate):
		reply(http.StatusAccepted, "duplicate", "already queued (this delivery, or the same "+what+" under another delivery ID)")
	case errors.Is(err, store.ErrRequeued):
		h.wakeWorker()
		log.Warn(what+" was parked: requeued by its redelivery", logArgs...)
		reply(http.StatusAccepted, "requeued", "this "+what+" was parked after failing; it is queued again")
	case err != nil:
		log.Error("store delivery", "err", err)
		reply(http.StatusServiceUnavailable, "store-failed", "could not store the delivery; GitHub may redeliver it")
	default:
		h.wakeWorker()
		log.Info(what+" queued", logArgs...)
		reply(http.StatusAccepted, "queued", "")
	}
}

// wakeWorker tells a waiting worker that a delivery is ready.
func (h *handler) wakeWorker() {
	if h.wake != nil {
		select {
		case h.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// formType is GitHub's default webhook content type.
const formType = "application/x-www-form-urlencoded"

// validSignature checks GitHub's X-Hub-Signature-256 header, "sha256=" and
// the hex HMAC-SHA256 of the body, in constant time. SHA-1 signatures
// (X-Hub-Signature) are not accepted.
func validSignature(secret, body []byte, header string) bool {
	hexMAC, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(secret) == 0 {
		return false
	}
	got, err := hex.DecodeString(hexMAC)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// metricEvent bounds the event label to known events.
func metricEvent(e string) string {
	switch e {
	case "push", "ping", worker.AlertEvent:
		return e
	}
	return "other"
}
