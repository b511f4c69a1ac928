// Package ghalert acts on GitHub's own secret-scanning alerts for AWS keys:
// it reads the secret_scanning_alert webhook event (checked as the hostile
// input it is), fetches the alert through the REST API (the event does not
// carry the secret), turns it into findings that the rest of keyburn
// verifies and responds to like any other, and resolves the alert as
// revoked once its key is out of use.
//
// Nothing in an event or an API answer becomes a URL or a path: API paths
// are built by go-github from the validated repository name and numbers,
// blobs are fetched by a SHA checked to be one, and the token goes only to
// the configured API host.
package ghalert

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/keyburn/keyburn/internal/ghrepo"
)

// Event is the part of a secret_scanning_alert event keyburn reads.
type Event struct {
	Action     string     `json:"action"`
	Alert      EventAlert `json:"alert"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

// EventAlert is the alert an event is about. The event never carries the
// secret: it is fetched.
type EventAlert struct {
	Number     int64  `json:"number"`
	SecretType string `json:"secret_type"`
	UpdatedAt  string `json:"updated_at,omitempty"`
}

// ErrNotAlert is wrapped by Parse's errors: the payload is not a usable
// secret-scanning alert event.
var ErrNotAlert = errors.New("not a usable secret_scanning_alert event")

// maxField bounds the strings kept from an event.
const maxField = 100

// Parse reads and checks an event payload.
func Parse(body []byte) (Event, ghrepo.Name, error) {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return Event{}, ghrepo.Name{}, fmt.Errorf("%w: malformed JSON: %v", ErrNotAlert, err)
	}
	name, err := e.Check()
	return e, name, err
}

// Check validates an event read from elsewhere (the queue) and returns its
// repository's name.
func (e *Event) Check() (ghrepo.Name, error) {
	name, err := ghrepo.Parse(e.Repository.FullName)
	if err != nil {
		return ghrepo.Name{}, fmt.Errorf("%w: %v", ErrNotAlert, err)
	}
	switch {
	case e.Alert.Number <= 0 || e.Alert.Number > 1<<40:
		return ghrepo.Name{}, fmt.Errorf("%w: alert number %d", ErrNotAlert, e.Alert.Number)
	case !token(e.Action):
		return ghrepo.Name{}, fmt.Errorf("%w: action %q", ErrNotAlert, e.Action)
	case !token(e.Alert.SecretType):
		return ghrepo.Name{}, fmt.Errorf("%w: secret type %q", ErrNotAlert, e.Alert.SecretType)
	case len(e.Alert.UpdatedAt) > maxField:
		return ghrepo.Name{}, fmt.Errorf("%w: updated_at too long", ErrNotAlert)
	}
	return name, nil
}

// token reports whether s is a short lower-case identifier, as GitHub's
// actions and secret types are.
func token(s string) bool {
	if s == "" || len(s) > maxField {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// Wanted says whether keyburn acts on the event: an AWS alert that was
// created, reopened, or found in a public place. It says why not otherwise.
func (e Event) Wanted() (bool, string) {
	if !IsAWS(e.Alert.SecretType) {
		return false, "secret type " + e.Alert.SecretType + " is not an AWS key"
	}
	switch e.Action {
	case "created", "reopened", "publicly_leaked":
		return true, ""
	}
	return false, "action " + e.Action + " needs nothing done"
}

// DedupeKey names what the event asks for, so that a redelivery under a
// new delivery ID is not acted on twice, while a later reopening is.
func (e Event) DedupeKey(name ghrepo.Name) string {
	return fmt.Sprintf("secret_scanning_alert %s#%d %s %s", strings.ToLower(name.String()), e.Alert.Number, e.Action, e.Alert.UpdatedAt)
}

// AWS's secret types in GitHub's secret scanning.
const (
	TypeKeyID  = "aws_access_key_id"
	TypeSecret = "aws_secret_access_key"
)

// IsAWS reports whether a secret type is one of AWS's keys (the key ID,
// the secret, and their temporary forms).
func IsAWS(secretType string) bool {
	return strings.HasPrefix(secretType, "aws_") && secretType != "aws_session_token"
}
