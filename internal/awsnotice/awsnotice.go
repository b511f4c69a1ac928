// Package awsnotice reads AWS's own "credentials exposed" notices: the
// AWS Health event AWS_RISK_CREDENTIALS_EXPOSED that AWS raises when it
// finds one of an account's access keys in public (on GitHub among
// others), as EventBridge delivers it to an SQS queue the operator names.
// Each notice becomes findings the check stage acts on without asking STS:
// the notice, arriving through the operator's own account, vouches that
// the key leaked (finding.Vouch), and every other rail of the responder
// still holds.
//
// Every field is hostile input: the message is bounded, the envelope must
// say it is AWS Health's (source aws.health, detail-type "AWS Health
// Event"), accounts must be twelve digits and key IDs must be key IDs; the
// event ARN is kept only as a label (capped, never fetched).
package awsnotice

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/keyburn/keyburn/internal/finding"
)

// Event names a notice as a delivery of keyburn's queues.
const Event = "aws-notice"

// EventType is the Health event type of an exposed key.
const EventType = "AWS_RISK_CREDENTIALS_EXPOSED"

// Source and DetailType are what EventBridge writes in a Health event's
// envelope; only AWS can put events with an aws.* source on a bus.
const (
	Source     = "aws.health"
	DetailType = "AWS Health Event"
)

// MaxSize bounds a message read (SQS allows 1 MiB; a notice is a few KiB).
const MaxSize = 256 << 10

// maxKeys bounds the key IDs taken from one notice.
const maxKeys = 100

// ErrMalformed is wrapped by Parse's errors for a message that is not a
// well-formed event, or a credentials-exposed event keyburn cannot act
// on (no account, no key ID): it is parked, never retried.
var ErrMalformed = errors.New("malformed AWS notice")

// ErrOther is wrapped by Parse's errors for a well-formed event of
// another kind (another source, or another Health event type): it is
// logged and dropped.
var ErrOther = errors.New("not an AWS credentials-exposed notice")

// Notice is one credentials-exposed notice.
type Notice struct {
	ID        string    // the EventBridge event's ID
	Account   string    // the account the keys are in
	EventARN  string    // the Health event's ARN, a label
	Region    string    // where the event was delivered
	StartTime time.Time // when AWS found the keys; zero when not given
	Keys      []string  // the exposed key IDs
	// Ignored counts affected entities that are not access key IDs.
	Ignored int
}

// envelope is the EventBridge event as keyburn reads it.
type envelope struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Account    string          `json:"account"`
	Region     string          `json:"region"`
	Time       string          `json:"time"`
	Detail     json.RawMessage `json:"detail"`
}

type detail struct {
	EventARN         string `json:"eventArn"`
	EventTypeCode    string `json:"eventTypeCode"`
	StartTime        string `json:"startTime"`
	AffectedAccount  string `json:"affectedAccount"` // organisational view: the member account
	AffectedEntities []struct {
		EntityValue string `json:"entityValue"`
	} `json:"affectedEntities"`
}

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	keyIDRE   = regexp.MustCompile(`^(AKIA|ASIA)[A-Z2-7]{16}$`)
)

// Parse reads one queue message.
func Parse(body []byte) (Notice, error) {
	if len(body) > MaxSize {
		return Notice{}, fmt.Errorf("%w: %d bytes, over the %d a notice may have", ErrMalformed, len(body), MaxSize)
	}
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return Notice{}, fmt.Errorf("%w: not a JSON event: %s", ErrMalformed, finding.JSONErrorWhere(err))
	}
	if e.Source != Source || e.DetailType != DetailType {
		return Notice{}, fmt.Errorf("%w: source %q, detail-type %q", ErrOther, clip(e.Source), clip(e.DetailType))
	}
	var d detail
	if len(e.Detail) == 0 {
		return Notice{}, fmt.Errorf("%w: a Health event without detail", ErrMalformed)
	}
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		return Notice{}, fmt.Errorf("%w: its detail: %s", ErrMalformed, finding.JSONErrorWhere(err))
	}
	if d.EventTypeCode != EventType {
		return Notice{}, fmt.Errorf("%w: Health event type %q", ErrOther, clip(d.EventTypeCode))
	}
	n := Notice{Region: label(e.Region), EventARN: label(d.EventARN), ID: label(e.ID)}
	// In an organisation's aggregated view the event comes to the
	// management account and names the member account it is about.
	n.Account = e.Account
	if d.AffectedAccount != "" {
		n.Account = d.AffectedAccount
	}
	if !accountRE.MatchString(n.Account) {
		return Notice{}, fmt.Errorf("%w: account %q is not a 12-digit account ID", ErrMalformed, clip(n.Account))
	}
	if !accountRE.MatchString(e.Account) {
		return Notice{}, fmt.Errorf("%w: envelope account %q is not a 12-digit account ID", ErrMalformed, clip(e.Account))
	}
	seen := map[string]bool{}
	for _, ent := range d.AffectedEntities {
		v := strings.TrimSpace(ent.EntityValue)
		switch {
		case !keyIDRE.MatchString(v):
			n.Ignored++
		case seen[v]:
		case len(n.Keys) >= maxKeys:
			n.Ignored++
		default:
			seen[v] = true
			n.Keys = append(n.Keys, v)
		}
	}
	if len(n.Keys) == 0 {
		return Notice{}, fmt.Errorf("%w: a credentials-exposed event with no access key ID among its %d affected entities", ErrMalformed, len(d.AffectedEntities))
	}
	// The key's account is checked against the notice's by the
	// responder, with AWS's own answer (sts:GetAccessKeyInfo), before
	// anything is read in the account.
	for _, layout := range []string{time.RFC1123, time.RFC3339} {
		if t, err := time.Parse(layout, d.StartTime); err == nil {
			n.StartTime = t.UTC()
			break
		}
	}
	return n, nil
}

// By names AWS's notices in a finding's Vouch.
const By = "AWS Health " + EventType

// Findings are the notice's keys as findings: key ID only (no secret),
// vouched for by the notice.
func (n Notice) Findings() []*finding.Finding {
	var out []*finding.Finding
	for _, k := range n.Keys {
		loc := finding.Location{File: "(AWS Health notice)", Ref: n.EventARN}
		if !n.StartTime.IsZero() {
			loc.Date = n.StartTime.Format(time.RFC3339)
		}
		out = append(out, &finding.Finding{
			Rule: "aws-exposed-notice", Severity: "high", KeyID: k, AccountID: n.Account,
			Temporary: strings.HasPrefix(k, "ASIA"), Locations: []finding.Location{loc},
			Vouched: &finding.Vouch{By: By, Event: n.EventARN, Account: n.Account},
		})
	}
	return out
}

// label keeps s when it reads as an ARN, an ID or a region (200
// characters at most, of letters, digits and :/_.-), else "". A loop, not
// a regular expression: {1,200} compiled at start-up cost every keyburn
// command half a millisecond.
func label(s string) string {
	if len(s) == 0 || len(s) > 200 {
		return ""
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(":/_.-", c) >= 0
		if !ok {
			return ""
		}
	}
	return s
}

// clip bounds a hostile string quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
