// Package notify tells the people who must act about live keys: through
// Slack-compatible incoming webhooks and a generic JSON webhook whose body
// is signed (HMAC-SHA256, X-Keyburn-Signature-256: sha256=HEX, as GitHub
// signs its own). A message is sent when a key is found live (stored
// before it is acted on, through check's Live hook), and again when it was
// acted on or could not be. It names the key ID, account, severity and reach,
// repository and commit, verdict and action; never the secret, and never
// the file of a key that is still live unless the repository is known to
// be private.
//
// Messages go through the store's outbox: written first, sent after, so a
// restart loses none; a failed send is retried with backoff, and parked
// with the reason after too many.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/store"
)

// Kinds of target.
const (
	Slack = "slack"
	JSON  = "json"
)

// Target is where messages go.
type Target struct {
	Kind   string
	URL    string // a secret of its own (a Slack webhook URL is a bearer token): never logged or stored
	Secret []byte // JSON: the HMAC key; required
}

// ID names the target in the outbox without its URL.
func (t Target) ID() string {
	sum := sha256.Sum256([]byte(t.Kind + " " + t.URL))
	return t.Kind + ":" + hex.EncodeToString(sum[:8])
}

// Check validates a target: a known kind, an http(s) URL with a host, and
// a signing secret for JSON.
func (t Target) Check() error {
	u, err := url.Parse(t.URL)
	switch {
	case t.Kind != Slack && t.Kind != JSON:
		return fmt.Errorf("notify: kind %q: want slack or json", t.Kind)
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("notify: the %s target's URL is not an http or https URL", t.Kind)
	case t.Kind == JSON && len(t.Secret) == 0:
		return errors.New("notify: a json target needs a signing secret (secret_env)")
	}
	return nil
}

// Message is one key's news, the JSON target's body.
type Message struct {
	Event      string `json:"event"` // live, acted, not-acted
	KeyID      string `json:"key_id"`
	Account    string `json:"account,omitempty"`
	Severity   string `json:"severity,omitempty"`
	Reach      string `json:"reach,omitempty"`
	Verdict    string `json:"verdict"`
	Principal  string `json:"principal,omitempty"`
	Action     string `json:"action,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Repository string `json:"repository,omitempty"`
	Commit     string `json:"commit,omitempty"`
	File       string `json:"file,omitempty"`
	// VouchedBy names who vouched that the key leaked, in place of a
	// verification (AWS's own notice).
	VouchedBy string `json:"vouched_by,omitempty"`
	// Replacement is the new key made for the key's user, and the
	// Secrets Manager secret its owners find it in (never its secret).
	Replacement       string `json:"replacement_key_id,omitempty"`
	ReplacementSecret string `json:"replacement_secret,omitempty"`
	// Quarantine says what to do with AWS's quarantine policy on the
	// key's user.
	Quarantine string `json:"quarantine,omitempty"`
	At         string `json:"at"`
}

// The events.
const (
	EventLive     = "live"      // found live; no responder
	EventActed    = "acted"     // deactivated, deleted, or its sessions revoked
	EventNotActed = "not-acted" // live, and left alone: refused, failed, dry run, below the severity floor
)

// Where says where findings were found.
type Where struct {
	Repository string // owner/name, or a path
	// Private is true when the repository is known to be private: only
	// then is the file of a still-live key named.
	Private bool
}

// Messages makes one message per live key of fs.
func Messages(fs []*finding.Finding, where Where, now time.Time) []Message {
	var out []Message
	for _, f := range fs {
		v := f.Verification
		if v == nil || v.Status != "live" && v.Status != "exposed" {
			continue // news is of live keys, and of those AWS found exposed
		}
		m := Message{Event: EventLive, KeyID: f.KeyID, Account: f.AccountID, Severity: f.Severity, Verdict: v.Status,
			Principal: v.ARN, Repository: where.Repository, At: now.UTC().Format(time.RFC3339)}
		if v.Reach != nil {
			m.Reach = v.Reach.Summary()
		}
		if r := f.Response; r != nil {
			m.Action, m.Reason, m.Event = r.Action, r.Reason, EventNotActed
			if acted(r.Action) {
				m.Event = EventActed
			}
			if r.Replacement != nil {
				m.Replacement, m.ReplacementSecret = r.Replacement.KeyID, r.Replacement.Secret
			}
		}
		if f.Vouched != nil {
			m.VouchedBy = f.Vouched.By
		}
		if len(v.Quarantine) > 0 {
			m.Quarantine = finding.QuarantineAdvice(v.Quarantine, f.Response != nil && f.Response.Action == "deleted")
		}
		if len(f.Locations) > 0 {
			l := f.Locations[0]
			m.Commit = l.Commit
			if m.Event == EventActed || where.Private {
				m.File = l.File
			}
		}
		out = append(out, m)
	}
	return out
}

// acted reports whether an action left the key unable to sign.
func acted(action string) bool {
	switch action {
	case "deactivated", "deleted", "deactivated, deletion scheduled", "sessions revoked":
		return true
	}
	return false
}

// Enqueue writes each message for each target to the outbox. The same
// news (key, event, action) for the same target is stored once.
func Enqueue(ctx context.Context, st *store.Store, targets []Target, msgs []Message, now time.Time) (int, error) {
	n := 0
	for _, t := range targets {
		for _, m := range msgs {
			body, err := json.Marshal(m)
			if err != nil {
				return n, err
			}
			added, err := st.AddNotification(ctx, store.Notification{Target: t.ID(), Body: body,
				Dedupe: m.KeyID + " " + m.Event + " " + m.Action + " " + m.Repository}, now)
			if err != nil {
				return n, err
			}
			if added {
				n++
			}
		}
	}
	return n, nil
}

// Sender sends what the outbox holds.
type Sender struct {
	Store   *store.Store
	Targets []Target
	Client  *http.Client // default: 10 s timeout
	// Backoff is the wait after a first failure, doubled each time, at
	// most an hour (default 5 s); MaxAttempts parks a notification
	// (default 8).
	Backoff     time.Duration
	MaxAttempts int
	Now         func() time.Time
}

// maxBody bounds what is read of a target's answer.
const maxBody = 64 << 10

// Flush sends every due notification once: sent ones are marked sent,
// failed ones rescheduled. It returns how many were sent and the errors
// of those that failed (already recorded).
func (s *Sender) Flush(ctx context.Context) (int, error) {
	now := s.now()
	// Claimed, not just read: processes sharing one state each send a
	// message once (one that dies holding some leaves them to another
	// after the lease).
	due, err := s.Store.ClaimNotifications(ctx, now, sendLease, 100)
	if err != nil {
		return 0, err
	}
	byID := map[string]Target{}
	for _, t := range s.Targets {
		byID[t.ID()] = t
	}
	sent := 0
	var errs []error
	for _, n := range due {
		t, ok := byID[n.Target]
		if !ok {
			// Its target is no longer configured: nothing will send it.
			errs = append(errs, s.Store.NotificationFailed(ctx, n.ID, "its target is no longer configured", now, 1))
			continue
		}
		if err := s.send(ctx, t, n); err != nil {
			backoff := min(s.backoff()<<min(n.Attempts, 12), time.Hour)
			errs = append(errs, fmt.Errorf("notify %s: %w", t.Kind, err),
				s.Store.NotificationFailed(ctx, n.ID, err.Error(), now.Add(backoff), s.maxAttempts()))
			continue
		}
		if err := s.Store.NotificationSent(ctx, n.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		sent++
	}
	return sent, errors.Join(errs...)
}

// sendLease bounds how long a sender holds the notifications it claimed.
const sendLease = 10 * time.Minute

// Drain flushes until nothing is due or within is over, waiting for
// retries in between; it returns how many are still waiting, and the last
// failure met.
func (s *Sender) Drain(ctx context.Context, within time.Duration) (int, error) {
	deadline := time.Now().Add(within)
	var last error
	for {
		// The last failure is kept: a later round in which nothing was
		// due (all waiting for their retry) is no news of success.
		if _, err := s.Flush(ctx); err != nil {
			last = err
		}
		pending, perr := s.Store.PendingNotifications(ctx)
		if perr != nil {
			return 0, perr
		}
		if pending == 0 || !time.Now().Before(deadline) {
			return pending, last
		}
		select {
		case <-ctx.Done():
			return pending, ctx.Err()
		case <-time.After(min(s.backoff(), time.Until(deadline))):
		}
	}
}

func (s *Sender) send(ctx context.Context, t Target, n store.Notification) error {
	body := n.Body
	if t.Kind == Slack {
		var m Message
		if err := json.Unmarshal(n.Body, &m); err != nil {
			return err
		}
		body, _ = json.Marshal(map[string]string{"text": SlackText(m)})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("the target's URL is unusable")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keyburn-notify")
	if t.Kind == JSON {
		mac := hmac.New(sha256.New, t.Secret)
		mac.Write(body)
		req.Header.Set("X-Keyburn-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		req.Header.Set("X-Keyburn-Delivery", fmt.Sprint(n.ID))
	}
	c := s.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%s: %v", ue.Op, ue.Err) // the error names the URL: leave it out
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the target answered %s", resp.Status)
	}
	return nil
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) backoff() time.Duration {
	if s.Backoff > 0 {
		return s.Backoff
	}
	return 5 * time.Second
}

func (s *Sender) maxAttempts() int {
	if s.MaxAttempts > 0 {
		return s.MaxAttempts
	}
	return 8
}

// SlackText is a message as one Slack line.
func SlackText(m Message) string {
	var b strings.Builder
	head := map[string]string{EventLive: "Live AWS key", EventActed: "Live AWS key killed", EventNotActed: "Live AWS key NOT acted on"}[m.Event]
	fmt.Fprintf(&b, "*%s* `%s`", head, m.KeyID)
	if m.Severity != "" {
		fmt.Fprintf(&b, " (%s)", m.Severity)
	}
	for _, kv := range [][2]string{{"account", m.Account}, {"principal", m.Principal}, {"reach", m.Reach}, {"action", m.Action},
		{"reason", m.Reason}, {"repository", m.Repository}, {"commit", m.Commit}, {"file", m.File}, {"vouched for by", m.VouchedBy},
		{"replacement key", replacementText(m)}, {"quarantine", m.Quarantine}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "\n• %s: %s", kv[0], slackEscape(kv[1]))
		}
	}
	return b.String()
}

// replacementText says where a replacement key is, for its owners.
func replacementText(m Message) string {
	if m.Replacement == "" {
		return ""
	}
	return m.Replacement + ", in AWS Secrets Manager as " + m.ReplacementSecret + ": move the application to it"
}

// slackEscape keeps a value from being read as Slack markup: & < > are
// escaped, as Slack asks.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
