package ghalert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/internal/source"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// Limits on what is read for one alert: its locations, the blobs they
// name, and the repository's other AWS alerts.
const (
	maxLocations   = 10
	maxBlob        = 1 << 20
	maxOtherAlerts = 100
	maxAlternates  = 3 // as many as a key ID found without its secret tries
	maxSecretLen   = 256
	// maxComment bounds a resolution comment.
	maxComment = 280
)

var (
	shaRE    = regexp.MustCompile(`^[0-9a-f]{40}$`)
	keyIDRE  = regexp.MustCompile(`^(AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}$`)
	secretRE = regexp.MustCompile(`^[A-Za-z0-9/+]{40}$`)
)

// Rule is the rule name of findings made from an alert.
const Rule = "github-secret-scanning"

// Alert is one alert made ready to check: the findings to verify and
// respond to, one of which is the alert's key.
type Alert struct {
	Repo   ghrepo.Name
	Number int64
	// Skip says why the alert is not acted on ("" when it is).
	Skip     string
	Findings []*finding.Finding

	keyID  string        // the alert's key ID, for a key-ID alert
	secret secret.Secret // the alert's secret, for a secret alert
}

// Get fetches an alert, with its secret.
func Get(ctx context.Context, gh *github.Client, name ghrepo.Name, number int64) (*github.SecretScanningAlert, error) {
	a, _, err := gh.SecretScanning.GetAlert(ctx, name.Owner, name.Repo, number)
	if err != nil {
		return nil, fmt.Errorf("secret scanning alert %s#%d: %w", name, number, err)
	}
	return a, nil
}

// ListOpen lists the open AWS alerts of an organisation, page by page, at
// most limit of them.
func ListOpen(ctx context.Context, gh *github.Client, org string, limit int) ([]*github.SecretScanningAlert, error) {
	opts := &github.SecretScanningAlertListOptions{State: "open", SecretType: TypeKeyID + "," + TypeSecret,
		ListOptions: github.ListOptions{PerPage: 100}}
	var out []*github.SecretScanningAlert
	for range 1000 { // pages: bounded
		page, resp, err := gh.SecretScanning.ListAlertsForOrg(ctx, org, opts)
		if err != nil {
			return out, fmt.Errorf("list the secret scanning alerts of %s: %w", org, err)
		}
		for _, a := range page {
			if IsAWS(a.GetSecretType()) && a.GetState() == "open" {
				out = append(out, a)
			}
			if len(out) == limit {
				return out, nil
			}
		}
		switch {
		case resp.After != "":
			opts.ListCursorOptions.After = resp.After
		case resp.NextPage != 0:
			opts.ListOptions.Page = resp.NextPage
		default:
			return out, nil
		}
	}
	return out, nil
}

// Prepare turns an alert into findings. The alert's secret is its key ID
// or its secret access key; its other half is looked for where GitHub
// found it (the blobs of its commit locations, scanned by the engine like
// any file) and in the repository's other open AWS alerts (tried as
// alternates, as for a key ID found without its secret).
func Prepare(ctx context.Context, gh *github.Client, eng engine.Options, name ghrepo.Name, a *github.SecretScanningAlert, rep source.Reporter) (*Alert, error) {
	out := &Alert{Repo: name, Number: int64(a.GetNumber())}
	raw := strings.TrimSpace(a.GetSecret())
	switch {
	case a.GetState() != "open":
		out.Skip = "the alert is " + a.GetState() + ", not open"
		return out, nil
	case !IsAWS(a.GetSecretType()):
		out.Skip = "secret type " + a.GetSecretType() + " is not an AWS key"
		return out, nil
	case len(raw) > maxSecretLen:
		out.Skip = "the alert's secret is not an AWS key ID or secret access key"
		return out, nil
	case keyIDRE.MatchString(raw):
		out.keyID = raw
	case secretRE.MatchString(raw):
		out.secret = secret.New(raw)
	default:
		out.Skip = "the alert's secret is not an AWS key ID or secret access key"
		return out, nil
	}
	byKey := map[string]*finding.Finding{}
	var order []string
	add := func(f *finding.Finding) {
		if g, ok := byKey[f.KeyID]; ok {
			g.Locations = append(g.Locations, f.Locations...)
			if !g.Paired() && f.Paired() {
				g.Secret = f.Secret
			}
			return
		}
		byKey[f.KeyID] = f
		order = append(order, f.KeyID)
	}
	locs, err := locations(ctx, gh, name, out.Number)
	if err != nil {
		rep.Failed(err)
	}
	// When the key was committed is when it leaked (the alert comes
	// later): CloudTrail's evidence is read from then. Unknown, it is
	// read from the start of CloudTrail's history.
	commitDate(ctx, gh, name, locs)
	var where []finding.Location
	for _, l := range locs {
		where = append(where, l.loc)
		if l.blob == "" {
			continue
		}
		fs, err := scanBlob(ctx, gh, eng, name, l, rep)
		if err != nil {
			rep.Failed(err)
			continue
		}
		for _, f := range fs {
			if f.KeyID != "" {
				add(f)
			}
		}
	}
	ids, secrets, err := others(ctx, gh, name, out.Number)
	if err != nil {
		rep.Failed(err)
	}
	alertFinding := func(keyID string) *finding.Finding {
		acct, _ := detect.AccountID(keyID)
		f := &finding.Finding{Rule: Rule, Severity: "high", KeyID: keyID, AccountID: acct, Temporary: strings.HasPrefix(keyID, "ASIA"),
			Locations: slices.Clone(where)}
		if len(f.Locations) == 0 {
			f.Locations = []finding.Location{{File: fmt.Sprintf("GitHub secret scanning alert %s#%d", name, out.Number)}}
		}
		return f
	}
	if out.keyID != "" {
		if _, ok := byKey[out.keyID]; !ok {
			add(alertFinding(out.keyID))
		}
		if f := byKey[out.keyID]; !f.Paired() {
			f.Alternates = append(f.Alternates, secrets[:min(len(secrets), maxAlternates)]...)
		}
	} else {
		paired := false
		for _, f := range byKey {
			paired = paired || f.Secret.Reveal() == out.secret.Reveal()
		}
		if !paired {
			// The key IDs of the other alerts (or the blobs) may be
			// this secret's: each tries it.
			for _, id := range slices.Concat(order, ids) { // a copy: add grows order
				f, ok := byKey[id]
				if !ok {
					f = alertFinding(id)
					add(f)
				}
				if !f.Paired() && len(f.Alternates) < maxAlternates {
					f.Alternates = append(f.Alternates, out.secret)
				}
			}
		}
	}
	for _, id := range order {
		out.Findings = append(out.Findings, byKey[id])
	}
	if out.keyID == "" && !out.tries() {
		out.Skip = "no key ID was found for this secret access key (not where GitHub found it, nor in another open alert)"
	}
	return out, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// commitDate sets the date of the first commit location's commit on the
// locations of that commit: one API call, read from the repository (never
// from the alert's URLs).
func commitDate(ctx context.Context, gh *github.Client, name ghrepo.Name, locs []location) {
	for _, l := range locs {
		if l.loc.Commit == "" {
			continue
		}
		c, _, err := gh.Git.GetCommit(ctx, name.Owner, name.Repo, l.loc.Commit)
		if err != nil || c.GetCommitter().Date == nil {
			return
		}
		date := c.GetCommitter().GetDate().UTC().Format(time.RFC3339)
		for i := range locs {
			if locs[i].loc.Commit == l.loc.Commit {
				locs[i].loc.Date = date
			}
		}
		return
	}
}

// location is an alert location: where it is, and the blob holding it.
type location struct {
	loc  finding.Location
	blob string
}

// locations reads the alert's first locations. Only commit locations name
// a blob; the others (issues, pull requests, wikis) are named.
func locations(ctx context.Context, gh *github.Client, name ghrepo.Name, number int64) ([]location, error) {
	ls, _, err := gh.SecretScanning.ListLocationsForAlert(ctx, name.Owner, name.Repo, number, &github.ListOptions{PerPage: maxLocations})
	if err != nil {
		return nil, fmt.Errorf("locations of alert %s#%d: %w", name, number, err)
	}
	var out []location
	for _, l := range ls[:min(len(ls), maxLocations)] {
		d := l.GetDetails()
		if l.GetType() != "commit" || d == nil {
			out = append(out, location{loc: finding.Location{File: "GitHub " + label(l.GetType())}})
			continue
		}
		loc := finding.Location{File: label(d.GetPath()), Line: d.GetStartline(), Column: d.GetStartColumn() + 1}
		if c := d.GetCommitSHA(); shaRE.MatchString(c) {
			loc.Commit = c
		}
		blob := d.GetBlobSHA()
		if !shaRE.MatchString(blob) {
			blob = ""
		}
		out = append(out, location{loc: loc, blob: blob})
	}
	return out, nil
}

// label bounds a name from an API answer to a printable, short string: it
// is shown, never used as a path.
func label(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '\uFFFD'
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return or(s, "?")
}

// scanBlob fetches a blob by its SHA (bounded) and scans it with the
// engine, as the file it is.
func scanBlob(ctx context.Context, gh *github.Client, eng engine.Options, name ghrepo.Name, l location, rep source.Reporter) ([]*finding.Finding, error) {
	req, err := gh.NewRequest(http.MethodGet, fmt.Sprintf("repos/%s/%s/git/blobs/%s", name.Owner, name.Repo, l.blob), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.github.raw+json")
	resp, err := gh.BareDo(ctx, req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, fmt.Errorf("blob %s of %s: %w", l.blob, name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBlob+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s of %s: %w", l.blob, name, err)
	}
	if len(data) > maxBlob {
		return nil, fmt.Errorf("blob %s of %s: over %d bytes, not scanned", l.blob, name, maxBlob)
	}
	res, err := engine.ScanReader(ctx, eng, bytes.NewReader(data), l.loc.File, rep)
	if err != nil {
		return nil, err
	}
	for _, f := range res.Findings {
		for i := range f.Locations {
			f.Locations[i].Commit, f.Locations[i].Blob, f.Locations[i].Date = l.loc.Commit, l.blob, l.loc.Date
		}
	}
	return res.Findings, nil
}

// others reads the key IDs and secrets of the repository's other open AWS
// alerts.
func others(ctx context.Context, gh *github.Client, name ghrepo.Name, number int64) (ids []string, secrets []secret.Secret, err error) {
	as, _, err := gh.SecretScanning.ListAlertsForRepo(ctx, name.Owner, name.Repo, &github.SecretScanningAlertListOptions{
		State: "open", SecretType: TypeKeyID + "," + TypeSecret, ListOptions: github.ListOptions{PerPage: maxOtherAlerts}})
	if err != nil {
		return nil, nil, fmt.Errorf("the other alerts of %s: %w", name, err)
	}
	for _, a := range as[:min(len(as), maxOtherAlerts)] {
		raw := strings.TrimSpace(a.GetSecret())
		switch {
		case int64(a.GetNumber()) == number || a.GetState() != "open":
		case keyIDRE.MatchString(raw):
			ids = append(ids, raw)
		case secretRE.MatchString(raw):
			secrets = append(secrets, secret.New(raw))
		}
	}
	return ids, secrets, nil
}

// Target is the finding the alert is about: its key ID's, or, for a
// secret, the one whose secret it is (paired where it was found, or proven
// its key's by verification). A key that merely tried the secret, and was
// proven live with another, is not the alert's: resolving the alert for it
// would hide a live leak. Nil when there is none.
func (a *Alert) Target() *finding.Finding {
	for _, f := range a.Findings {
		if a.keyID != "" {
			if f.KeyID == a.keyID {
				return f
			}
			continue
		}
		if f.Secret.Reveal() == a.secret.Reveal() {
			return f
		}
	}
	return nil
}

// tries reports whether any finding holds or tries the alert's secret.
func (a *Alert) tries() bool {
	if a.Target() != nil {
		return true
	}
	for _, f := range a.Findings {
		if slices.ContainsFunc(f.Alternates, func(s secret.Secret) bool { return s.Reveal() == a.secret.Reveal() }) {
			return true
		}
	}
	return false
}

// Outcome is what was done with an alert after its key was checked.
type Outcome struct {
	Resolved bool   // resolved as revoked, with Comment
	Would    bool   // a dry run: it would have been resolved, with Comment
	Comment  string // the resolution comment
	Why      string // why it was left open
}

// ErrResolve wraps a failure to resolve an alert whose key was acted on.
var ErrResolve = errors.New("resolve the alert")

// ResolveOptions are what Resolve reads besides the alert.
type ResolveOptions struct {
	// State's audit log names keys keyburn acted on before (nil: none).
	State *store.Store
	// DryRun resolves nothing: the outcome says what would be.
	DryRun bool
}

// Resolve resolves the alert as revoked, with a comment naming the action
// and the audit record, when its own key was acted on (deactivated or
// deleted); otherwise it leaves the alert open and says why. GitHub takes
// a comment only with a resolution (it must be null when an alert is
// open), so an alert left open carries none: the why is for the caller's
// report. Under DryRun nothing is sent: Outcome.Would says what would be.
//
// A key keyburn acted on before (the other alert of the same key, found
// first) verifies invalid now: when the audit log says keyburn deactivated
// or deleted it, the alert is resolved citing that. For a secret's alert,
// only when the audit records that this secret verified the key then.
func (a *Alert) Resolve(ctx context.Context, gh *github.Client, o ResolveOptions) (Outcome, error) {
	t := a.Target()
	var earlier string
	if t == nil && a.Skip == "" && a.keyID == "" && o.State != nil {
		// The secret's key may have been acted on by an earlier run
		// (it verifies invalid now, so no key took the secret this time):
		// a key that tried it counts only if the audit records that this
		// secret verified it when it was acted on.
		for _, f := range a.Findings {
			if !slices.ContainsFunc(f.Alternates, func(s secret.Secret) bool { return s.Reveal() == a.secret.Reveal() }) ||
				f.Verification == nil || f.Verification.Status != string(verify.Invalid) {
				continue
			}
			done, err := a.actedBefore(ctx, o.State, f.KeyID)
			if err != nil {
				return Outcome{Why: "the audit log could not be read"}, err
			}
			if done != "" {
				t, earlier = f, done
				break
			}
		}
	}
	switch {
	case earlier != "":
	case a.Skip != "":
		return Outcome{Why: a.Skip}, nil
	case t == nil && a.keyID == "":
		return Outcome{Why: "no key verified live with this secret (a key that tried it was not its own)"}, nil
	case t == nil:
		return Outcome{Why: "no key was found for it"}, nil
	case t.Verification == nil:
		return Outcome{Why: "the key was not verified"}, nil
	case t.Verification.Status == string(verify.Invalid) && o.State != nil:
		var err error
		if earlier, err = a.actedBefore(ctx, o.State, t.KeyID); err != nil {
			return Outcome{Why: "the key is invalid, and the audit log could not be read"}, err
		}
	}
	switch {
	case earlier != "":
	case t.Response == nil || !respond.Action(t.Response.Action).Acted():
		why := "the key is " + t.Verification.Status
		if t.Verification.Status == string(verify.Live) {
			why = "the key is live and was not revoked"
			if t.Response != nil {
				why += " (" + t.Response.Action + paren(t.Response.Reason) + ")"
			}
		} else if t.Verification.Error != "" {
			why += " (" + t.Verification.Error + ")"
		} else if t.Verification.Status == string(verify.Invalid) {
			why += " (AWS does not know it: deleted, deactivated, or never issued)"
		}
		return Outcome{Why: why}, nil
	}
	comment := ""
	if earlier != "" {
		comment = fmt.Sprintf("keyburn %s; AWS now answers InvalidClientTokenId for it; audit: keyburn scan audit --key %s", earlier, t.KeyID)
	} else {
		comment = fmt.Sprintf("keyburn verified this AWS key live (%s) and %s it at %s; audit: keyburn scan audit --key %s",
			t.Verification.ARN, t.Response.Action, t.Response.At, t.KeyID)
	}
	if r := []rune(comment); len(r) > maxComment {
		comment = string(r[:maxComment-1]) + "…"
	}
	if o.DryRun {
		return Outcome{Would: true, Comment: comment, Why: "a dry run: it would be resolved as revoked"}, nil
	}
	body := struct {
		State      string `json:"state"`
		Resolution string `json:"resolution"`
		Comment    string `json:"resolution_comment"`
	}{"resolved", "revoked", comment}
	req, err := gh.NewRequest(http.MethodPatch, fmt.Sprintf("repos/%s/%s/secret-scanning/alerts/%d", a.Repo.Owner, a.Repo.Repo, a.Number), body)
	if err != nil {
		return Outcome{}, err
	}
	if _, err := gh.Do(ctx, req, nil); err != nil {
		return Outcome{Why: "the key is out of use, but the alert could not be resolved"},
			fmt.Errorf("%w %s#%d as revoked: %w", ErrResolve, a.Repo, a.Number, err)
	}
	return Outcome{Resolved: true, Comment: comment}, nil
}

// actedBefore reads the audit log for keyburn's own deactivation or
// deletion of keyID: "deleted it at T" or "deactivated it at T", "" when
// there is none. For a secret's alert, an action counts only when the
// audit records that the alert's secret verified the key in that run: the
// key that was deleted must be the one the secret belongs to.
func (a *Alert) actedBefore(ctx context.Context, st *store.Store, keyID string) (string, error) {
	log, err := st.AuditLog(ctx, keyID)
	if err != nil {
		return "", err
	}
	sha := ""
	if a.keyID == "" {
		sha = a.secret.SHA256()
	}
	ours := sha == ""
	done := ""
	for _, r := range log {
		if sha != "" && r.SecretSHA256 == sha {
			ours = true
		}
		if r.Outcome != "ok" || r.Before == r.After {
			continue
		}
		switch r.Action {
		case "delete":
			done = "deleted it at " + r.At.UTC().Format(time.RFC3339)
		case "deactivate":
			if done == "" {
				done = "deactivated it at " + r.At.UTC().Format(time.RFC3339)
			}
		}
	}
	if !ours {
		return "", nil
	}
	return done, nil
}

// Merge returns the findings of several alerts, one per key ID, and points
// each alert at the merged ones: a key that two alerts are about (its
// ID's and its secret's) is verified and acted on once.
func Merge(alerts []*Alert) []*finding.Finding {
	byKey := map[string]*finding.Finding{}
	var out []*finding.Finding
	for _, a := range alerts {
		for i, f := range a.Findings {
			g, ok := byKey[f.KeyID]
			if !ok {
				byKey[f.KeyID] = f
				out = append(out, f)
				continue
			}
			if g != f {
				g.Locations = append(g.Locations, f.Locations...)
				if !g.Paired() && f.Paired() {
					g.Secret = f.Secret
				}
				for _, s := range f.Alternates {
					if len(g.Alternates) < maxAlternates && !slices.ContainsFunc(g.Alternates, func(x secret.Secret) bool { return x.Reveal() == s.Reveal() }) {
						g.Alternates = append(g.Alternates, s)
					}
				}
				a.Findings[i] = g
			}
		}
	}
	return out
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
