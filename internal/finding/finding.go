// Package finding is keyburn's data model between detection and reporting: a
// Finding is one credential (a key ID and, when paired, its secret) with every
// place it was seen, and later its verdict and the action taken.
//
// A Collector groups the matches of a run into findings. It does no I/O.
package finding

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keyburn/keyburn/internal/secret"
)

// Location is one place a credential was seen. Line and Column are 1-based,
// of the key ID in the file (not in a diff).
type Location struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	// SecretLine is the line of the paired secret, 0 when unpaired.
	SecretLine int `json:"secret_line,omitempty"`
	// Secret is the secret paired here (zero: none here), redacted in
	// every format: each place says what it holds, which may differ from
	// the finding's headline secret (the one that verified, else the one
	// paired most often).
	Secret secret.Secret `json:"secret_redacted,omitzero"`
	// SecretFile names the file the secret was in when it is not File (a
	// commit that added the ID in one file and its secret in another).
	SecretFile string `json:"secret_file,omitempty"`
	Commit     string `json:"commit,omitempty"`
	Author     string `json:"author,omitempty"`
	Date       string `json:"date,omitempty"`
	Ref        string `json:"ref,omitempty"`
	// Refs are all the references that contain Commit.
	Refs []string `json:"refs,omitempty"`
	// Encoding says how the key was hidden at this place: "base64",
	// "percent", or nested ("base64>base64": base64 inside base64); empty
	// for plain text. Line and Column are those of the encoded text.
	Encoding string `json:"encoding,omitempty"`
	// Binary is true when the file is binary: the key is one of its
	// printable strings, and Line counts its newline bytes.
	Binary bool `json:"binary,omitempty"`
	// Blob is the git blob that holds the key.
	Blob string `json:"blob,omitempty"`
	// Staged is true for a blob that is only in the index (added, not
	// committed): File is its path there, and there is no commit.
	Staged bool `json:"staged,omitempty"`
	// Unreachable is true when no reference leads to the commit (or, with
	// no commit, to the blob): it survives only until git gc, and in every
	// clone made before.
	Unreachable bool `json:"unreachable,omitempty"`
}

// Match is one occurrence of a credential, as the engine hands it over.
type Match struct {
	Rule         string
	Severity     string
	KeyID        string
	AccountID    string
	Temporary    bool
	Secret       secret.Secret // zero: unpaired
	Alternates   []secret.Secret
	SessionToken secret.Secret
	Location     Location
}

// Finding is one credential with all its locations.
type Finding struct {
	Rule         string
	Severity     string
	KeyID        string
	AccountID    string
	Temporary    bool
	Secret       secret.Secret
	Alternates   []secret.Secret
	SessionToken secret.Secret
	Locations    []Location // sorted, the first is the earliest

	// Vouched, when set, says who vouches that the key leaked and was in
	// use, in place of verification: AWS's own exposure notice. There is
	// no secret to try; the responder finds the key's owner itself.
	Vouched *Vouch

	Verification *Verification // nil: not verified
	Response     *Response     // nil: no response taken
}

// Vouch is a notice that a key leaked, from a source the operator trusts
// for it (AWS Health, through the operator's own account).
type Vouch struct {
	By      string `json:"by"`              // "AWS Health AWS_RISK_CREDENTIALS_EXPOSED"
	Event   string `json:"event,omitempty"` // the notice's ID (an ARN), a label
	Account string `json:"account"`         // the account the notice is about
}

// Verification is the verdict on a credential.
type Verification struct {
	Status  string `json:"status"`
	ARN     string `json:"arn,omitempty"`
	Account string `json:"account,omitempty"`
	UserID  string `json:"user_id,omitempty"`
	Error   string `json:"error,omitempty"`
	// Root is true for a live key of an account's root user: it grants
	// everything in the account (the finding's severity is critical).
	Root bool `json:"root,omitempty"`
	// Reach is what the key could do, read from its principal's policies
	// (nil when not read).
	Reach *Reach `json:"reach,omitempty"`
	// Quarantine names the policies AWS attached to the key's user when
	// it found the key exposed (AWSCompromisedKeyQuarantineV2, …).
	Quarantine []string `json:"quarantine,omitempty"`
}

// Response is the action taken on a live credential.
type Response struct {
	Action string `json:"action"`
	At     string `json:"at,omitempty"`
	// DueAt is when a scheduled deletion is due.
	DueAt  string `json:"due_at,omitempty"`
	Reason string `json:"reason,omitempty"` // why nothing was done, or what the action met
	Error  string `json:"error,omitempty"`  // what failed
	// Evidence is what CloudTrail recorded the key doing before it died;
	// nil when nothing was acted on.
	Evidence *Evidence `json:"evidence,omitempty"`
	// Replacement is the new key made for the key's user (respond =
	// "rotate"), and where it is kept; never its secret.
	Replacement *Replacement `json:"replacement,omitempty"`
}

// Replacement is a new access key made for a leaked key's user, kept in
// AWS Secrets Manager.
type Replacement struct {
	KeyID     string `json:"key_id"`
	Secret    string `json:"secret_name"` // the Secrets Manager secret's name
	SecretARN string `json:"secret_arn,omitempty"`
}

// Evidence is what CloudTrail's event history holds of a key's calls
// between its leak and its death: read after acting, with the responder's
// credentials in the key's account, never with the key.
type Evidence struct {
	From time.Time `json:"from"` // the window read
	To   time.Time `json:"to"`
	// Regions are the regions whose event history was read: CloudTrail
	// keeps each region's events apart.
	Regions []string `json:"regions_read"`
	// Calls is how many calls the key made in the window, keyburn's own
	// verification excluded (Own counts those).
	Calls int `json:"calls"`
	// Own counts the calls keyburn recorded making with the key (by
	// request ID), listed in OwnCalls; they are not in Calls. A call that
	// only says it is keyburn's (its User-Agent) is the key user's.
	Own         int       `json:"keyburn_calls,omitempty"`
	OwnCalls    []OwnCall `json:"keyburn_calls_list,omitempty"`
	First       time.Time `json:"first,omitzero"`
	Last        time.Time `json:"last,omitzero"`
	SourceIPs   []Count   `json:"source_ips,omitempty"`   // most first
	EventNames  []Count   `json:"event_names,omitempty"`  // most first
	CallRegions []Count   `json:"call_regions,omitempty"` // where the calls were made
	// Truncated is true when the page cap was reached: there were more.
	Truncated bool `json:"truncated,omitempty"`
	// Notes say what limits the evidence: the 90-day window, an unknown
	// leak time, CloudTrail's delivery delay.
	Notes []string `json:"notes,omitempty"`
	// Unread says why no evidence (or only part) could be read: no
	// credentials in the account, no permission, an error.
	Unread string `json:"unread,omitempty"`
}

// Reach is what a live key could do: its principal's policies, read with
// keyburn's own credentials (never the key's), summed up.
type Reach struct {
	// Level is the most it could do: admin (everything), iam (manage IAM:
	// make itself an administrator), data (read S3 objects, secrets,
	// parameters), compute (run instances, functions), none (nothing of
	// these), unknown (its policies could not be read).
	Level string `json:"level"`
	// Why names, for each capability, the action and the policy that grant
	// it: "admin: * on * (AdministratorAccess, attached to group admins)".
	Why []string `json:"why,omitempty"`
	// Policies are the policies read: attached, inline, of its groups.
	Policies []string `json:"policies,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	// Boundary is the permissions boundary, which caps the level.
	Boundary string `json:"boundary,omitempty"`
	// Roles are roles whose trust policy lets it assume them, with their
	// own level: "deploy (admin)".
	Roles []string `json:"roles,omitempty"`
	// Unread says what could not be read, and why.
	Unread []string `json:"unread,omitempty"`
}

// Reach levels, most first.
const (
	ReachAdmin   = "admin"
	ReachIAM     = "iam"
	ReachData    = "data"
	ReachCompute = "compute"
	ReachNone    = "none"
	ReachUnknown = "unknown"
)

// Severity is the severity a live key of this reach has: critical for an
// administrator or an IAM manager (who can make itself one), high for one
// that reads data or runs compute, or whose reach is unknown, medium for
// one that can do none of these.
func (r *Reach) Severity() string {
	switch r.Level {
	case ReachAdmin, ReachIAM:
		return SeverityCritical
	case ReachNone:
		return "medium"
	}
	return "high"
}

// Summary is the reach in one line.
func (r *Reach) Summary() string {
	var b strings.Builder
	b.WriteString(map[string]string{ReachAdmin: "administrator: it can do everything", ReachIAM: "can manage IAM (and so make itself an administrator)",
		ReachData: "can read data", ReachCompute: "can run compute", ReachNone: "nothing notable", ReachUnknown: "unknown"}[r.Level])
	for _, w := range r.Why {
		b.WriteString("; " + w)
	}
	if r.Boundary != "" {
		b.WriteString("; bounded by " + r.Boundary)
	}
	if len(r.Roles) > 0 {
		b.WriteString("; can assume " + strings.Join(r.Roles, ", "))
	}
	for _, u := range r.Unread {
		b.WriteString("; not read: " + u)
	}
	return b.String()
}

// Count is a value and how often it was seen.
type Count struct {
	Value string `json:"value"`
	N     int    `json:"n"`
}

// OwnCall is one call keyburn made with the key, found in CloudTrail.
type OwnCall struct {
	At        time.Time `json:"at"`
	Event     string    `json:"event"`
	RequestID string    `json:"request_id"`
	SourceIP  string    `json:"source_ip,omitempty"`
}

// Summary is the evidence in one line, for the audit log and the text
// report.
func (e *Evidence) Summary() string {
	var b strings.Builder
	window := e.From.UTC().Format(time.RFC3339) + " to " + e.To.UTC().Format(time.RFC3339)
	switch {
	case e.Unread != "" && e.Calls == 0:
		b.WriteString("no evidence read: " + e.Unread)
	case e.Calls == 0:
		fmt.Fprintf(&b, "no calls by the key in CloudTrail (%s, %s)", strings.Join(e.Regions, ","), window)
	default:
		fmt.Fprintf(&b, "%d call(s) by the key, first %s, last %s", e.Calls, e.First.UTC().Format(time.RFC3339), e.Last.UTC().Format(time.RFC3339))
		if e.Truncated {
			b.WriteString(" (at least: more than keyburn reads)")
		}
		fmt.Fprintf(&b, "; from %s; calls %s; in %s; read %s, %s", counts(e.SourceIPs), counts(e.EventNames), counts(e.CallRegions),
			strings.Join(e.Regions, ","), window)
		if e.Unread != "" {
			b.WriteString("; partly unread: " + e.Unread)
		}
	}
	if e.Own > 0 {
		var at []string
		for i, c := range e.OwnCalls {
			if i == 3 {
				at = append(at, fmt.Sprintf("and %d more", len(e.OwnCalls)-3))
				break
			}
			at = append(at, c.Event+" at "+c.At.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(&b, "; besides %d by keyburn's own verification (told by the request IDs it recorded", e.Own)
		if len(at) > 0 {
			b.WriteString(": " + strings.Join(at, ", "))
		}
		b.WriteString(")")
	}
	for _, n := range e.Notes {
		b.WriteString("; " + n)
	}
	return b.String()
}

// counts renders "a (3), b (1)", at most 5, then "and N more".
func counts(cs []Count) string {
	const most = 5
	var parts []string
	for i, c := range cs {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-most))
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", c.Value, c.N))
	}
	return strings.Join(parts, ", ")
}

// SeverityCritical is a live root key's: it grants everything in its
// account. Rules never set it; verification does.
const SeverityCritical = "critical"

// QuarantineAdvice says what to do with the quarantine policies AWS
// attached to a key's user when it found the key exposed
// (AWSCompromisedKeyQuarantineV2, …), given whether the key is deleted:
// they deny the user much of what it does, so they come off once the
// leaked key is gone and the user's new key is in place.
func QuarantineAdvice(policies []string, deleted bool) string {
	if len(policies) == 0 {
		return ""
	}
	p := strings.Join(policies, ", ")
	if deleted {
		return "AWS attached " + p + " to the key's user when it found the key exposed; the key is deleted: detach the policy once the user's new key is in place"
	}
	return "AWS attached " + p + " to the key's user when it found the key exposed: keep it until the leaked key is deleted, then detach it once the user's new key is in place"
}

// RootKeyAdvice says what keyburn does with a live root key (nothing) and
// who can delete it, and how.
func RootKeyAdvice(keyID, account string) string {
	return "root user's access key of account " + account + ": keyburn does not act on root keys; " +
		"the root user deletes it (sign in as root: Security credentials, Access keys, Delete), or, with " +
		"AWS Organizations' centralized root access, the management account: aws sts assume-root --target-principal " +
		account + " --task-policy-arn arn=arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials, then " +
		"aws iam delete-access-key --access-key-id " + keyID
}

// Paired reports whether the finding carries a secret.
func (f *Finding) Paired() bool { return !f.Secret.IsZero() }

// Fingerprint identifies a credential wherever it is seen, so that a baseline
// can accept it once:
//
//	hex(sha256("keyburn/v1" 0x00 rule 0x00 key_id 0x00 secret_sha256))
//
// with an empty secret_sha256 for an unpaired key ID. It names neither the
// file nor the commit: moving an accepted key does not raise it again.
func (f *Finding) Fingerprint() string {
	return Fingerprint(f.Rule, f.KeyID, f.Secret.SHA256())
}

// Fingerprint computes the recipe of Finding.Fingerprint.
func Fingerprint(rule, keyID, secretSHA256 string) string {
	h := sha256.New()
	for i, s := range []string{"keyburn/v1", rule, keyID, secretSHA256} {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Collector groups matches into findings: one per key ID (and rule), with
// all its locations. When the places a key is seen pair it with different
// secrets, the finding's secret is the one paired at the most locations
// (the earliest on a tie); the others are kept as alternates, tried in turn
// by verification. It is not safe for concurrent use: one goroutine owns it.
type Collector struct {
	byKey map[key]*entry
	seen  map[locKey]bool
}

type key struct{ rule, keyID string }

type locKey struct {
	key
	file         string
	line, column int
	commit       string
}

// entry is a finding being collected, with the secrets it was paired with.
type entry struct {
	f        *Finding
	severity string // of the first match
	paired   string // of the first match with a secret
	final    bool   // severity is already lowered (a merged unpaired finding)
	secrets  []vote // in the order first seen
}

type vote struct {
	s     secret.Secret
	n     int      // locations that paired it
	first Location // the earliest of them
}

// maxAlternates bounds the secrets kept besides the chosen one.
const maxAlternates = 16

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{byKey: map[key]*entry{}, seen: map[locKey]bool{}}
}

// Add records a match. A location seen before for the same key (the
// overlap of two chunks) is recorded once.
func (c *Collector) Add(m Match) { c.add(m, false) }

func (c *Collector) add(m Match, final bool) {
	if FixturePath(m.Location.File) {
		m.Severity = "low" // a test fixture's key, until verified live
	}
	if m.Location.Secret.IsZero() {
		m.Location.Secret = m.Secret
	}
	k := key{m.Rule, m.KeyID}
	if m.KeyID == "" { // a secret without its key ID: one finding per secret
		k.keyID = "secret:" + m.Secret.SHA256()
	}
	lk := locKey{k, m.Location.File, m.Location.Line, m.Location.Column, m.Location.Commit + m.Location.Blob}
	if c.seen[lk] {
		return
	}
	c.seen[lk] = true
	e, ok := c.byKey[k]
	if !ok {
		e = &entry{f: &Finding{Rule: m.Rule, KeyID: m.KeyID, AccountID: m.AccountID, Temporary: m.Temporary}, severity: m.Severity, final: final}
		c.byKey[k] = e
	} else if severityRank(m.Severity) > severityRank(e.severity) {
		// The surest location decides, whatever order matches come in.
		e.severity = m.Severity
	}
	if !m.Secret.IsZero() {
		// The surest pairing anywhere decides.
		if e.paired == "" || severityRank(m.Severity) > severityRank(e.paired) {
			e.paired = m.Severity
		}
		e.vote(m.Secret, m.Location)
	}
	for _, a := range m.Alternates {
		e.alternate(a)
	}
	if e.f.SessionToken.IsZero() {
		e.f.SessionToken = m.SessionToken
	}
	e.f.Locations = append(e.f.Locations, m.Location)
}

func (e *entry) vote(s secret.Secret, at Location) {
	for i := range e.secrets {
		if e.secrets[i].s.Reveal() == s.Reveal() {
			e.secrets[i].n++
			if compareLocations(at, e.secrets[i].first) < 0 {
				e.secrets[i].first = at
			}
			return
		}
	}
	e.secrets = append(e.secrets, vote{s: s, n: 1, first: at})
}

func (e *entry) alternate(s secret.Secret) {
	if !slices.ContainsFunc(e.f.Alternates, func(b secret.Secret) bool { return b.Reveal() == s.Reveal() }) {
		e.f.Alternates = append(e.f.Alternates, s)
	}
}

// finish chooses the secret and orders the alternates.
func (e *entry) finish() *Finding {
	f := e.f
	slices.SortFunc(f.Locations, compareLocations)
	slices.SortStableFunc(e.secrets, func(a, b vote) int {
		return cmp.Or(cmp.Compare(b.n, a.n), compareLocations(a.first, b.first))
	})
	if len(e.secrets) == 0 {
		f.Severity = e.severity
		if !e.final {
			f.Severity = lower(f.Severity)
		}
		return f
	}
	f.Severity = e.paired
	f.Secret = e.secrets[0].s
	alts := make([]secret.Secret, 0, len(e.secrets)-1+len(f.Alternates))
	for _, v := range e.secrets[1:] {
		alts = append(alts, v.s)
	}
	for _, a := range f.Alternates {
		if a.Reveal() != f.Secret.Reveal() && !slices.ContainsFunc(alts, func(b secret.Secret) bool { return b.Reveal() == a.Reveal() }) {
			alts = append(alts, a)
		}
	}
	f.Alternates = alts[:min(len(alts), maxAlternates)]
	return f
}

// Findings returns the findings, each with its locations sorted, ordered by
// their first location.
func (c *Collector) Findings() []*Finding {
	out := make([]*Finding, 0, len(c.byKey))
	for _, e := range c.byKey {
		out = append(out, e.finish())
	}
	Sort(out)
	pairLone(out)
	return out
}

// maxLoneTried bounds the secrets found without a key ID that are tried
// for each key ID found without a secret, so verification stays a few
// calls per key.
const maxLoneTried = 3

// pairLone gives each key ID found without a secret the secrets found
// without a key ID elsewhere in the same scan (another file, another
// commit, another repository of the organisation) as alternates, earliest
// first: verification tries them, and keeps one that proves the key live.
func pairLone(fs []*Finding) {
	lone := map[string][]secret.Secret{}
	for _, f := range fs {
		if f.KeyID == "" {
			lone[f.Rule] = append(lone[f.Rule], f.Secret)
		}
	}
	if len(lone) == 0 {
		return
	}
	for _, f := range fs {
		if f.KeyID == "" || f.Paired() {
			continue
		}
		for _, s := range lone[f.Rule] {
			if len(f.Alternates) >= maxLoneTried {
				break
			}
			if !slices.ContainsFunc(f.Alternates, func(a secret.Secret) bool { return a.Reveal() == s.Reveal() }) {
				f.Alternates = append(f.Alternates, s)
			}
		}
	}
}

// Merge joins findings of the same key from several scans (the
// repositories of an organisation) into one per key, as a Collector does.
func Merge(fs []*Finding) []*Finding {
	c := NewCollector()
	for _, f := range fs {
		// Each location keeps the secret paired there, when they say.
		own := slices.ContainsFunc(f.Locations, func(l Location) bool { return !l.Secret.IsZero() })
		for i, l := range f.Locations {
			sec := f.Secret
			if own {
				sec = l.Secret
			}
			m := Match{Rule: f.Rule, Severity: f.Severity, KeyID: f.KeyID, AccountID: f.AccountID, Temporary: f.Temporary,
				Secret: sec, SessionToken: f.SessionToken, Location: l}
			if i == 0 {
				m.Alternates = f.Alternates
			}
			c.add(m, f.Secret.IsZero())
		}
	}
	return c.Findings()
}

func pairedRank(f *Finding) int {
	if f.Paired() {
		return 0
	}
	return 1
}

// Sort orders findings by first location, then key ID, paired before
// unpaired, then secret.
func Sort(fs []*Finding) {
	slices.SortFunc(fs, func(a, b *Finding) int {
		if c := compareLocations(a.Locations[0], b.Locations[0]); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.KeyID, b.KeyID), cmp.Compare(pairedRank(a), pairedRank(b)),
			cmp.Compare(a.Secret.SHA256(), b.Secret.SHA256()))
	})
}

func compareLocations(a, b Location) int {
	return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
		cmp.Compare(a.Column, b.Column), cmp.Compare(a.Commit, b.Commit))
}

// FixturePath reports whether path is a test fixture's: under testdata/,
// test_data/, test-data/, fixtures/, __fixtures__/ or __mocks__/, or a test file by its name
// (*_test.go, test_*.py, *_test.py, *.spec.js|ts, *.test.js|ts). A key
// found only in such files is low until it is verified live.
func FixturePath(path string) bool {
	p := "/" + strings.ToLower(filepath.ToSlash(path))
	for _, dir := range []string{"/testdata/", "/test_data/", "/test-data/", "/fixtures/", "/__fixtures__/", "/__mocks__/"} {
		if strings.Contains(p, dir) {
			return true
		}
	}
	base := p[strings.LastIndexByte(p, '/')+1:]
	if strings.HasSuffix(base, "_test.go") || strings.HasSuffix(base, "_test.py") || strings.HasPrefix(base, "test_") && strings.HasSuffix(base, ".py") {
		return true
	}
	for _, suf := range []string{".spec.js", ".spec.ts", ".test.js", ".test.ts"} {
		if strings.HasSuffix(base, suf) {
			return true
		}
	}
	return false
}

// AtLeast reports whether severity sev is min or above (low, medium, high,
// critical); an unknown min is never reached.
func AtLeast(sev, min string) bool {
	m := severityRank(min)
	return m >= 0 && severityRank(sev) >= m
}

// severityRank orders severities, least first.
func severityRank(sev string) int {
	return slices.Index([]string{"low", "medium", "high", SeverityCritical}, sev)
}

func lower(sev string) string {
	switch sev {
	case "high":
		return "medium"
	default:
		return "low"
	}
}
