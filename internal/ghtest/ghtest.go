// Package ghtest is a GitHub-shaped REST API on loopback for tests: the
// secret-scanning calls keyburn makes (an alert, its locations, a
// repository's and an organisation's open alerts, paginated, and the
// update that resolves one), raw blobs, a repository's visibility and
// issues. It holds the secrets its alerts carry, as GitHub's API does, and
// records every change asked of it. Commits answer with a committer date. It checks what GitHub checks of an
// update: a resolution with "resolved", no comment with "open".
package ghtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"
)

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Alert is a secret-scanning alert the API serves.
type Alert struct {
	Repo       string // owner/name
	Number     int
	State      string // open (default) or resolved
	SecretType string
	Secret     string
	CreatedAt  time.Time
	Locations  []Location
}

// Location is where GitHub found an alert's secret: a commit location.
type Location struct {
	Path         string
	Line, Column int
	Blob, Commit string
}

// Update is a recorded PATCH of an alert.
type Update struct {
	Repo       string
	Number     int
	State      string
	Resolution string
	Comment    string
}

// API is the server.
type API struct {
	URL   string
	Token string // when set, every call must carry it

	mu         sync.Mutex
	alerts     []*Alert
	blobs      map[string][]byte
	commits    map[string]time.Time // committer dates
	private    bool
	updates    []Update
	issues     []map[string]any
	statuses   []Status
	notCommits []string
	requests   []string
}

// Status is a recorded commit status.
type Status struct {
	Repo, SHA, State, Context string
}

// Start starts an API, closed at the test's end.
func Start(t testing.TB) *API {
	t.Helper()
	a := &API{blobs: map[string][]byte{}, commits: map[string]time.Time{}}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// Client returns a go-github client for the API.
func (a *API) Client(token string) *github.Client {
	c := github.NewClient(&http.Client{Timeout: 10 * time.Second})
	if token != "" {
		c = c.WithAuthToken(token)
	}
	u, err := url.Parse(a.URL + "/")
	if err != nil {
		panic(err)
	}
	c.BaseURL = u
	return c
}

// AddAlert adds an alert; AddBlob a blob its locations name.
func (a *API) AddAlert(al *Alert) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if al.State == "" {
		al.State = "open"
	}
	if al.CreatedAt.IsZero() {
		al.CreatedAt = time.Now().Add(-time.Hour).Truncate(time.Second)
	}
	a.alerts = append(a.alerts, al)
}

func (a *API) AddBlob(sha string, data []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.blobs[sha] = data
}

// AddCommit gives a commit its committer date.
func (a *API) AddCommit(sha string, date time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.commits[sha] = date
}

// SetPrivate makes the repositories private.
func (a *API) SetPrivate(p bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.private = p
}

// Updates returns the alert updates made.
func (a *API) Updates() []Update {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.updates)
}

// Issues returns the issues opened.
func (a *API) Issues() []map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.issues)
}

// NotCommits names SHAs that are not commits (a tag object's): a status
// posted on one is refused, as GitHub refuses it.
func (a *API) NotCommits(shas ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.notCommits = append(a.notCommits, shas...)
}

func (a *API) commitless(sha string) bool { return slices.Contains(a.notCommits, sha) }

// Statuses returns the commit statuses posted, in order.
func (a *API) Statuses() []Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.statuses)
}

// Requests returns "METHOD path" of every call, in order.
func (a *API) Requests() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

// Alert returns an alert's current state.
func (a *API) Alert(repo string, number int) Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, al := range a.alerts {
		if al.Repo == repo && al.Number == number {
			return *al
		}
	}
	return Alert{}
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, r.Method+" "+r.URL.Path)
	if a.Token != "" && r.Header.Get("Authorization") != "Bearer "+a.Token {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials"})
		return
	}
	// GitHub Enterprise's layout (--github-api) is served too.
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v3"), "/"), "/")
	switch {
	case len(parts) == 4 && parts[0] == "orgs" && parts[2] == "secret-scanning" && parts[3] == "alerts" && r.Method == http.MethodGet:
		var list []*Alert
		for _, al := range a.alerts {
			if strings.HasPrefix(al.Repo, parts[1]+"/") {
				list = append(list, al)
			}
		}
		a.list(w, r, list)
	case len(parts) == 3 && parts[0] == "repos" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"full_name": parts[1] + "/" + parts[2], "private": a.private})
	case len(parts) == 5 && parts[0] == "repos" && parts[3] == "statuses" && r.Method == http.MethodPost:
		var m struct{ State, Context string }
		json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m)
		if !shaRE.MatchString(parts[4]) || a.commitless(parts[4]) {
			// GitHub takes a status only on a commit it has.
			writeJSON(w, 422, map[string]string{"message": "No commit found for SHA: " + parts[4]})
			return
		}
		a.statuses = append(a.statuses, Status{Repo: parts[1] + "/" + parts[2], SHA: parts[4], State: m.State, Context: m.Context})
		writeJSON(w, 201, map[string]any{"id": len(a.statuses)})
	case len(parts) == 4 && parts[0] == "repos" && parts[3] == "issues" && r.Method == http.MethodPost:
		var m map[string]any
		json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m)
		a.issues = append(a.issues, m)
		writeJSON(w, 201, map[string]any{"number": len(a.issues)})
	case len(parts) == 6 && parts[0] == "repos" && parts[3] == "git" && parts[4] == "commits" && r.Method == http.MethodGet:
		date, ok := a.commits[parts[5]]
		if !ok {
			writeJSON(w, 404, map[string]string{"message": "Not Found"})
			return
		}
		who := map[string]any{"name": "Dev", "email": "dev@example.invalid", "date": date.UTC().Format(time.RFC3339)}
		writeJSON(w, 200, map[string]any{"sha": parts[5], "author": who, "committer": who, "message": "deploy"})
	case len(parts) == 6 && parts[0] == "repos" && parts[3] == "git" && parts[4] == "blobs" && r.Method == http.MethodGet:
		data, ok := a.blobs[parts[5]]
		if !ok {
			writeJSON(w, 404, map[string]string{"message": "Not Found"})
			return
		}
		w.Header().Set("Content-Type", "application/vnd.github.raw")
		w.Write(data)
	case len(parts) >= 5 && parts[0] == "repos" && parts[3] == "secret-scanning" && parts[4] == "alerts":
		repo := parts[1] + "/" + parts[2]
		if len(parts) == 5 && r.Method == http.MethodGet {
			var list []*Alert
			for _, al := range a.alerts {
				if al.Repo == repo {
					list = append(list, al)
				}
			}
			a.list(w, r, list)
			return
		}
		n, _ := strconv.Atoi(parts[5])
		var al *Alert
		for _, x := range a.alerts {
			if x.Repo == repo && x.Number == n {
				al = x
			}
		}
		switch {
		case al == nil:
			writeJSON(w, 404, map[string]string{"message": "Not Found"})
		case len(parts) == 7 && parts[6] == "locations" && r.Method == http.MethodGet:
			var locs []map[string]any
			for _, l := range al.Locations {
				locs = append(locs, map[string]any{"type": "commit", "details": map[string]any{"path": l.Path, "start_line": l.Line,
					"end_line": l.Line, "start_column": l.Column, "end_column": l.Column + len(al.Secret), "blob_sha": l.Blob, "commit_sha": l.Commit,
					"blob_url": "https://api.github.com/repos/" + repo + "/git/blobs/" + l.Blob}})
			}
			writeJSON(w, 200, locs)
		case len(parts) == 6 && r.Method == http.MethodGet:
			writeJSON(w, 200, a.alertJSON(al))
		case len(parts) == 6 && r.Method == http.MethodPatch:
			var u struct {
				State      string  `json:"state"`
				Resolution *string `json:"resolution"`
				Comment    *string `json:"resolution_comment"`
			}
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&u); err != nil {
				writeJSON(w, 400, map[string]string{"message": "Problems parsing JSON"})
				return
			}
			switch {
			case u.State == "resolved" && (u.Resolution == nil || !slices.Contains([]string{"false_positive", "wont_fix", "revoked", "used_in_tests"}, *u.Resolution)):
				writeJSON(w, 422, map[string]string{"message": "resolution is required when state is resolved"})
				return
			case u.State == "open" && u.Comment != nil:
				writeJSON(w, 422, map[string]string{"message": "resolution_comment must be null when state is open"})
				return
			case u.State != "open" && u.State != "resolved":
				writeJSON(w, 422, map[string]string{"message": "state must be open or resolved"})
				return
			}
			al.State = u.State
			up := Update{Repo: repo, Number: n, State: u.State}
			if u.Resolution != nil {
				up.Resolution = *u.Resolution
			}
			if u.Comment != nil {
				up.Comment = *u.Comment
			}
			a.updates = append(a.updates, up)
			writeJSON(w, 200, a.alertJSON(al))
		default:
			writeJSON(w, 404, map[string]string{"message": "Not Found"})
		}
	default:
		writeJSON(w, 404, map[string]string{"message": "Not Found"})
	}
}

// list writes alerts filtered by state and secret_type, a page at a time
// (per_page, page), with GitHub's Link header.
func (a *API) list(w http.ResponseWriter, r *http.Request, all []*Alert) {
	q := r.URL.Query()
	var out []map[string]any
	for _, al := range all {
		if s := q.Get("state"); s != "" && al.State != s {
			continue
		}
		if ts := q.Get("secret_type"); ts != "" && !slices.Contains(strings.Split(ts, ","), al.SecretType) {
			continue
		}
		out = append(out, a.alertJSON(al))
	}
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 30
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	start := min((page-1)*per, len(out))
	end := min(start+per, len(out))
	if end < len(out) {
		next := *r.URL
		nq := next.Query()
		nq.Set("page", strconv.Itoa(page+1))
		next.RawQuery = nq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, a.URL, next.RequestURI()))
	}
	writeJSON(w, 200, out[start:end])
}

func (a *API) alertJSON(al *Alert) map[string]any {
	api := "https://api.github.com/repos/" + al.Repo + "/secret-scanning/alerts/" + strconv.Itoa(al.Number)
	return map[string]any{"number": al.Number, "created_at": al.CreatedAt.UTC().Format(time.RFC3339), "updated_at": al.CreatedAt.UTC().Format(time.RFC3339),
		"url": api, "html_url": "https://github.com/" + al.Repo + "/security/secret-scanning/" + strconv.Itoa(al.Number), "locations_url": api + "/locations",
		"state": al.State, "resolution": nil, "secret_type": al.SecretType, "secret_type_display_name": "Amazon AWS", "secret": al.Secret,
		"validity": "unknown", "repository": map[string]any{"full_name": al.Repo, "name": strings.SplitN(al.Repo, "/", 2)[1]}}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
