package ghalert

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/ghtest"
	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/testkeys"
	"github.com/keyburn/keyburn/rules"
)

const (
	blobA   = "af5626b4a114abcb82d63db7c8082c3c4756e51b"
	commitA = "f14d7debf9775f957cf4f1e8176da0786431f72b"
)

type failures []error

func (f *failures) Skipped(string, string) {}
func (f *failures) Failed(err error)       { *f = append(*f, err) }

func engineOptions(t *testing.T) engine.Options {
	t.Helper()
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	return engine.Options{Matcher: detect.New(set)}
}

// TestPrepare: an alert becomes findings to verify. Its other half is
// found where GitHub found it (the blob of a commit location, scanned by
// the engine) or in another open AWS alert of the repository; a resolved,
// foreign or malformed alert is skipped with the reason; a hostile blob
// SHA is never fetched and an oversized blob never scanned.
func TestPrepare(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 1))
	id, sec := testkeys.KeyID(rng, "AKIA", 123456789012), testkeys.Secret(rng)
	other := testkeys.Secret(rng)
	env := "# deploy\nAWS_ACCESS_KEY_ID=" + id + "\nAWS_SECRET_ACCESS_KEY=" + sec + "\n"
	idOnly := "AWS_ACCESS_KEY_ID=" + id + "\n"
	name := ghrepo.Name{Owner: "acme", Repo: "app"}
	tests := []struct {
		name      string
		alerts    []*ghtest.Alert
		blob      string
		paired    bool   // the target carries its secret
		alternate string // the target tries this secret
		skip      string
		noBlob    bool // the blob must not be fetched
		failed    string
	}{
		{name: "key ID, its secret beside it", blob: env, paired: true,
			alerts: []*ghtest.Alert{{Number: 1, SecretType: TypeKeyID, Secret: id, Locations: []ghtest.Location{{Path: "deploy/prod.env", Line: 2, Blob: blobA, Commit: commitA}}}}},
		{name: "key ID, its secret in another alert", blob: idOnly, alternate: sec,
			alerts: []*ghtest.Alert{{Number: 1, SecretType: TypeKeyID, Secret: id, Locations: []ghtest.Location{{Path: "a.env", Line: 1, Blob: blobA, Commit: commitA}}},
				{Number: 2, SecretType: TypeSecret, Secret: sec}, {Number: 3, SecretType: TypeSecret, Secret: other, State: "resolved"}}},
		{name: "secret, its key ID beside it", blob: env, paired: true,
			alerts: []*ghtest.Alert{{Number: 1, SecretType: TypeSecret, Secret: sec, Locations: []ghtest.Location{{Path: "deploy/prod.env", Line: 3, Blob: blobA, Commit: commitA}}}}},
		{name: "secret, its key ID in another alert", alternate: sec,
			alerts: []*ghtest.Alert{{Number: 1, SecretType: TypeSecret, Secret: sec}, {Number: 2, SecretType: TypeKeyID, Secret: id}}},
		{name: "secret, no key ID anywhere", skip: "no key ID was found",
			alerts: []*ghtest.Alert{{Number: 1, SecretType: TypeSecret, Secret: sec}}},
		{name: "resolved already", skip: "the alert is resolved",
			alerts: []*ghtest.Alert{{Number: 1, SecretType: TypeKeyID, Secret: id, State: "resolved"}}},
		{name: "not an AWS alert", skip: "not an AWS key",
			alerts: []*ghtest.Alert{{Number: 1, SecretType: "slack_api_token", Secret: "xoxb-1"}}},
		{name: "not a key", skip: "not an AWS key ID or secret access key",
			alerts: []*ghtest.Alert{{Number: 1, SecretType: TypeKeyID, Secret: "AKIA; DROP TABLE"}}},
		{name: "hostile blob SHA", blob: env, noBlob: true,
			alerts: []*ghtest.Alert{{Number: 1, SecretType: TypeKeyID, Secret: id, Locations: []ghtest.Location{{Path: "x", Blob: "../../../etc/passwd", Commit: commitA}}}}},
		{name: "oversized blob", blob: env + strings.Repeat("x", maxBlob), failed: "over 1048576 bytes",
			alerts: []*ghtest.Alert{{Number: 1, SecretType: TypeKeyID, Secret: id, Locations: []ghtest.Location{{Path: "big", Blob: blobA, Commit: commitA}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := ghtest.Start(t)
			for _, a := range tt.alerts {
				a.Repo = "acme/app"
				api.AddAlert(a)
			}
			api.AddBlob(blobA, []byte(tt.blob))
			api.AddCommit(commitA, time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC))
			gh := api.Client("")
			ctx := context.Background()
			al, err := Get(ctx, gh, name, 1)
			if err != nil {
				t.Fatal(err)
			}
			var fails failures
			p, err := Prepare(ctx, gh, engineOptions(t), name, al, &fails)
			if err != nil {
				t.Fatal(err)
			}
			if tt.skip != "" || p.Skip != "" {
				if !strings.Contains(p.Skip, tt.skip) || tt.skip == "" {
					t.Errorf("skip %q, want %q", p.Skip, tt.skip)
				}
				return
			}
			f := p.Target()
			if f == nil && p.keyID == "" && tt.alternate != "" {
				// A secret whose key ID is elsewhere: the key tries it, and
				// is its alert's target only once it verifies with it.
				for _, g := range p.Findings {
					if g.KeyID == id {
						f = g
					}
				}
			}
			if f == nil || f.KeyID != id {
				t.Fatalf("target %+v among %d findings, want key %s", f, len(p.Findings), id)
			}
			if f.Paired() != tt.paired || tt.paired && f.Secret.Reveal() != sec {
				t.Errorf("target paired %v, want %v", f.Paired(), tt.paired)
			}
			if tt.alternate != "" && (len(f.Alternates) != 1 || f.Alternates[0].Reveal() != tt.alternate) {
				t.Errorf("target tries %d alternates, want the other alert's secret only", len(f.Alternates))
			}
			for _, r := range api.Requests() {
				if tt.noBlob && !strings.HasPrefix(r, "GET /repos/acme/app/secret-scanning/alerts") && r != "GET /repos/acme/app/git/commits/"+commitA {
					t.Errorf("with a hostile blob SHA, asked for %q", r)
				}
			}
			if tt.failed != "" && (len(fails) != 1 || !strings.Contains(fails[0].Error(), tt.failed)) {
				t.Errorf("failures %v, want %q", fails, tt.failed)
			}
			if tt.blob != "" && !tt.noBlob && tt.failed == "" {
				if l := f.Locations[0]; l.Commit != commitA || l.File == "" || l.Date != "2026-11-20T09:30:00Z" {
					t.Errorf("location %+v, want the alert's commit and its date (when the key leaked)", l)
				}
			}
		})
	}
}

// TestResolve: an alert whose key was acted on is resolved as revoked,
// with a comment naming the action and the audit record and no secret;
// one whose key was not is left open, untouched, with the reason; a
// failed update is an error, not a silent success.
func TestResolve(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 2))
	id, sec := testkeys.KeyID(rng, "AKIA", 123456789012), testkeys.Secret(rng)
	tests := []struct {
		name     string
		v        *finding.Verification
		r        *finding.Response
		resolved bool
		why      string
	}{
		{"deleted", &finding.Verification{Status: "live", ARN: "arn:aws:iam::123456789012:user/ci"}, &finding.Response{Action: "deleted", At: "2026-11-28T10:00:00Z"}, true, ""},
		{"deactivated, deletion due", &finding.Verification{Status: "live", ARN: "arn:aws:iam::123456789012:user/ci"}, &finding.Response{Action: "deactivated, deletion scheduled", At: "2026-11-28T10:00:00Z"}, true, ""},
		{"live, policy off", &finding.Verification{Status: "live"}, nil, false, "the key is live and was not revoked"},
		{"live, refused", &finding.Verification{Status: "live"}, &finding.Response{Action: "skipped", Reason: "refused: account 123456789012 is in the deny list"}, false, "deny list"},
		{"dry run", &finding.Verification{Status: "live"}, &finding.Response{Action: "dry-run", Reason: "would delete"}, false, "dry-run"},
		{"invalid", &finding.Verification{Status: "invalid", Error: "InvalidClientTokenId"}, nil, false, "the key is invalid (InvalidClientTokenId)"},
		{"not verified", nil, nil, false, "not verified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := ghtest.Start(t)
			api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 7, SecretType: TypeKeyID, Secret: id})
			f := &finding.Finding{KeyID: id, Verification: tt.v, Response: tt.r}
			a := &Alert{Repo: ghrepo.Name{Owner: "acme", Repo: "app"}, Number: 7, keyID: id, Findings: []*finding.Finding{f}}
			out, err := a.Resolve(context.Background(), api.Client(""), ResolveOptions{})
			if err != nil || out.Resolved != tt.resolved || !strings.Contains(out.Why, tt.why) {
				t.Fatalf("Resolve = %+v, %v; want resolved %v (%q)", out, err, tt.resolved, tt.why)
			}
			ups := api.Updates()
			if !tt.resolved {
				if len(ups) != 0 || api.Alert("acme/app", 7).State != "open" {
					t.Errorf("an alert left open was updated: %+v", ups)
				}
				return
			}
			if len(ups) != 1 || ups[0].State != "resolved" || ups[0].Resolution != "revoked" || !strings.Contains(ups[0].Comment, tt.r.Action) ||
				!strings.Contains(ups[0].Comment, "keyburn scan audit --key "+id) || strings.Contains(ups[0].Comment, sec) {
				t.Errorf("updates %+v", ups)
			}
		})
	}
	// GitHub refuses the update: the caller hears of it.
	api := ghtest.Start(t)
	f := &finding.Finding{KeyID: id, Verification: &finding.Verification{Status: "live"}, Response: &finding.Response{Action: "deleted"}}
	a := &Alert{Repo: ghrepo.Name{Owner: "acme", Repo: "app"}, Number: 99, keyID: id, Findings: []*finding.Finding{f}}
	if out, err := a.Resolve(context.Background(), api.Client(""), ResolveOptions{}); err == nil || out.Resolved || !strings.Contains(out.Why, "could not be resolved") {
		t.Errorf("resolving a missing alert: %+v, %v", out, err)
	}
	// A dry run resolves nothing, and says what it would resolve.
	api2 := ghtest.Start(t)
	api2.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 7, SecretType: TypeKeyID, Secret: id})
	a = &Alert{Repo: ghrepo.Name{Owner: "acme", Repo: "app"}, Number: 7, keyID: id, Findings: []*finding.Finding{f}}
	if out, err := a.Resolve(context.Background(), api2.Client(""), ResolveOptions{DryRun: true}); err != nil || out.Resolved || !out.Would || len(api2.Updates()) != 0 {
		t.Errorf("a dry run: %+v, %v, %d updates; want none, and Would", out, err, len(api2.Updates()))
	}
}

// TestResolveOnlyTheAlertsOwnKey: a secret's alert is resolved only for the
// key that secret belongs to. Key A, verified live with its own secret and
// deleted, had the alert's secret S_B among the secrets it tried: B's alert
// stays open (B is still live), whether A was acted on in this run or an
// earlier one.
func TestResolveOnlyTheAlertsOwnKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 9))
	idA, secA, secB := testkeys.KeyID(rng, "AKIA", 123456789012), testkeys.Secret(rng), testkeys.Secret(rng)
	api := ghtest.Start(t)
	api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 5, SecretType: TypeSecret, Secret: secB})
	name := ghrepo.Name{Owner: "acme", Repo: "app"}
	ctx := context.Background()
	// This run: A verified live with its own secret and deleted.
	a := &Alert{Repo: name, Number: 5, secret: secret.New(secB), Findings: []*finding.Finding{{KeyID: idA, Secret: secret.New(secA),
		Alternates: []secret.Secret{secret.New(secB)}, Verification: &finding.Verification{Status: "live", ARN: "arn:aws:iam::123456789012:user/a"},
		Response: &finding.Response{Action: "deleted", At: "2026-12-05T10:00:00Z"}}}}
	out, err := a.Resolve(ctx, api.Client(""), ResolveOptions{})
	if err != nil || out.Resolved || !strings.Contains(out.Why, "no key verified live with this secret") || len(api.Updates()) != 0 {
		t.Fatalf("B's alert after A was deleted with A's secret: %+v, %v, updates %+v; want it left open", out, err, api.Updates())
	}
	// An earlier run deleted A, verified with A's secret; now A is invalid.
	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, r := range []store.AuditRecord{
		{At: at, Action: "deactivate", KeyID: idA, Outcome: "ok", Before: "Active", After: "Inactive", SecretSHA256: secret.New(secA).SHA256()},
		{At: at, Action: "delete", KeyID: idA, Outcome: "ok", Before: "Inactive", After: "deleted", SecretSHA256: secret.New(secA).SHA256()},
	} {
		if err := st.Audit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	a.Findings[0] = &finding.Finding{KeyID: idA, Alternates: []secret.Secret{secret.New(secB)}, Verification: &finding.Verification{Status: "invalid"}}
	out, err = a.Resolve(ctx, api.Client(""), ResolveOptions{State: st})
	if err != nil || out.Resolved || len(api.Updates()) != 0 {
		t.Fatalf("B's alert after an earlier run deleted A with A's secret: %+v, %v; want it left open", out, err)
	}
	// Had S_B been what verified A, the alert is A's and is resolved.
	if err := st.Audit(ctx, store.AuditRecord{At: at, Action: "owner-check", KeyID: idA, Outcome: "ok", SecretSHA256: secret.New(secB).SHA256()}); err != nil {
		t.Fatal(err)
	}
	out, err = a.Resolve(ctx, api.Client(""), ResolveOptions{State: st})
	if err != nil || !out.Resolved || len(api.Updates()) != 1 {
		t.Fatalf("B's alert when S_B verified A: %+v, %v; want it resolved", out, err)
	}
}

// TestMergeAndEarlierAction: GitHub raises two alerts for one leaked pair
// (its key ID's and its secret's). Merged, the key is one finding both
// alerts point at; and an alert handled after keyburn already deleted the
// key (it verifies invalid now) is resolved citing the audit log, while
// an invalid key keyburn never touched is left open.
func TestMergeAndEarlierAction(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 3))
	id, sec := testkeys.KeyID(rng, "AKIA", 123456789012), testkeys.Secret(rng)
	api := ghtest.Start(t)
	api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 1, SecretType: TypeKeyID, Secret: id})
	api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 2, SecretType: TypeSecret, Secret: sec})
	gh := api.Client("")
	ctx := context.Background()
	name := ghrepo.Name{Owner: "acme", Repo: "app"}
	var alerts []*Alert
	for _, n := range []int64{1, 2} {
		al, err := Get(ctx, gh, name, n)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Prepare(ctx, gh, engineOptions(t), name, al, &failures{})
		if err != nil || p.Skip != "" {
			t.Fatalf("alert %d: %v %q", n, err, p.Skip)
		}
		alerts = append(alerts, p)
	}
	fs := Merge(alerts)
	if len(fs) != 1 || alerts[0].Target() != fs[0] || alerts[1].Target() != nil || !alerts[1].tries() || len(fs[0].Alternates) != 1 {
		t.Fatalf("merged into %d findings; targets %p %p; want one the ID's alert points at, trying the secret once", len(fs), alerts[0].Target(), alerts[1].Target())
	}
	// Verified live with the secret (check makes it the finding's own), the
	// key is the secret's alert's too.
	fs[0].Secret = secret.New(sec)
	if alerts[1].Target() != fs[0] {
		t.Fatalf("once the secret verified the key, the secret's alert points at %p, want %p", alerts[1].Target(), fs[0])
	}
	fs[0].Secret = secret.Secret{}

	st, err := store.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fs[0].Verification = &finding.Verification{Status: "invalid", Error: "InvalidClientTokenId"}
	if out, err := alerts[1].Resolve(ctx, gh, ResolveOptions{State: st}); err != nil || out.Resolved {
		t.Fatalf("an invalid key keyburn never touched: %+v, %v; want left open", out, err)
	}
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, r := range []store.AuditRecord{
		{At: at, Action: "deactivate", KeyID: id, Outcome: "started", Before: "Active", SecretSHA256: secret.New(sec).SHA256()},
		{At: at, Action: "deactivate", KeyID: id, Outcome: "ok", Before: "Active", After: "Inactive", SecretSHA256: secret.New(sec).SHA256()},
		{At: at.Add(time.Second), Action: "delete", KeyID: id, Outcome: "ok", Before: "Inactive", After: "deleted"},
	} {
		if err := st.Audit(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Under a dry run, nothing is resolved.
	if out, err := alerts[1].Resolve(ctx, gh, ResolveOptions{State: st, DryRun: true}); err != nil || out.Resolved || !out.Would || len(api.Updates()) != 0 {
		t.Fatalf("a dry run after keyburn deleted the key: %+v, %v, %d updates; want it left alone", out, err, len(api.Updates()))
	}
	out, err := alerts[1].Resolve(ctx, gh, ResolveOptions{State: st})
	if err != nil || !out.Resolved || !strings.Contains(out.Comment, "deleted it at 2026-11-28T10:00:01Z") {
		t.Fatalf("after keyburn deleted the key: %+v, %v", out, err)
	}
	if ups := api.Updates(); len(ups) != 1 || ups[0].Number != 2 || ups[0].Resolution != "revoked" {
		t.Errorf("updates %+v", ups)
	}
}

// TestListOpen: an organisation's open AWS alerts are read page by page
// (GitHub's Link header), other types and resolved alerts left out, and no
// more than the limit.
func TestListOpen(t *testing.T) {
	api := ghtest.Start(t)
	for i := range 250 {
		typ, state := TypeKeyID, "open"
		switch i % 10 {
		case 3:
			typ = "slack_api_token"
		case 7:
			state = "resolved"
		}
		api.AddAlert(&ghtest.Alert{Repo: fmt.Sprintf("acme/r%d", i%4), Number: i + 1, SecretType: typ, State: state, Secret: "x"})
	}
	api.AddAlert(&ghtest.Alert{Repo: "other/r", Number: 1, SecretType: TypeKeyID, Secret: "x"})
	gh := api.Client("")
	all, err := ListOpen(context.Background(), gh, "acme", 10000)
	if err != nil || len(all) != 200 {
		t.Fatalf("ListOpen = %d alerts, %v; want 200", len(all), err)
	}
	pages := 0
	for _, r := range api.Requests() {
		if strings.HasPrefix(r, "GET /orgs/acme/secret-scanning/alerts") {
			pages++
		}
	}
	if pages != 2 {
		t.Errorf("%d pages read, want 2 (100 a page)", pages)
	}
	if some, err := ListOpen(context.Background(), gh, "acme", 30); err != nil || len(some) != 30 {
		t.Errorf("with a limit of 30: %d, %v", len(some), err)
	}
}
