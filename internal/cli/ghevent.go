package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/keyburn/keyburn/internal/engine"
)

// maxEventSize bounds the GitHub Actions event file read (GitHub caps
// webhook payloads at 25 MB).
const maxEventSize = 25 << 20

var shaRE = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)

// githubEvent is what --github-event reads of a GitHub Actions event.
type githubEvent struct {
	Before      string `json:"before"`
	After       string `json:"after"`
	PullRequest *struct {
		Base struct {
			SHA string `json:"sha"`
		} `json:"base"`
		Head struct {
			SHA string `json:"sha"`
		} `json:"head"`
	} `json:"pull_request"`
}

// eventRange returns the range of commits a GitHub Actions event brings: a
// push's before..after (the zero SHA before a new branch, after a deleted
// one: engine.ParseRange reads both), a pull request's base..head. name is
// GITHUB_EVENT_NAME, path GITHUB_EVENT_PATH. The SHAs are checked to be
// SHAs before they go anywhere.
func eventRange(name, path string) (string, error) {
	if name == "" || path == "" {
		return "", fmt.Errorf("--github-event: GITHUB_EVENT_NAME and GITHUB_EVENT_PATH are unset (GitHub Actions sets them)")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--github-event: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxEventSize+1))
	if err != nil {
		return "", fmt.Errorf("--github-event: read %s: %w", path, err)
	}
	if len(data) > maxEventSize {
		return "", fmt.Errorf("--github-event: %s is over %d bytes", path, maxEventSize)
	}
	var ev githubEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return "", fmt.Errorf("--github-event: %s: %w", path, err)
	}
	var from, to string
	switch name {
	case "push":
		from, to = ev.Before, ev.After
	case "pull_request", "pull_request_target":
		if ev.PullRequest == nil {
			return "", fmt.Errorf("--github-event: a %s event without pull_request", name)
		}
		from, to = ev.PullRequest.Base.SHA, ev.PullRequest.Head.SHA
	default:
		return "", fmt.Errorf("--github-event: a %s event names no commits (push and pull_request do); scan the whole history without --github-event", name)
	}
	for _, s := range []string{from, to} {
		if !shaRE.MatchString(s) {
			return "", fmt.Errorf("--github-event: %s event: %q is not a commit SHA", name, s)
		}
	}
	if from == engine.ZeroSHA && to == engine.ZeroSHA {
		return "", fmt.Errorf("--github-event: %s event with no commit on either side", name)
	}
	return from + ".." + to, nil
}
