package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/ghrepo"
	"github.com/keyburn/keyburn/internal/ghtest"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
	"github.com/keyburn/keyburn/rules"
)

func alertPayload(repo string, number int, secretType string) []byte {
	b, _ := json.Marshal(map[string]any{"action": "created", "alert": map[string]any{"number": number, "secret_type": secretType,
		"updated_at": "2026-11-28T09:00:00Z"}, "repository": map[string]any{"full_name": repo}})
	return b
}

// TestAlertEndToEnd: GitHub raises two secret-scanning alerts for one
// leaked pair, its key ID's and its secret's. From delivery to the end:
// the worker fetches the first alert (with its secret) and the blob where
// GitHub found it, pairs the key, verifies it live against moto, deletes
// it, reads its CloudTrail evidence, resolves the alert as revoked with a
// comment naming the action and the audit record, and opens an issue. The
// second alert, handled after, finds the key dead and is resolved citing
// keyburn's earlier deletion. No secret reaches GitHub.
func TestAlertEndToEnd(t *testing.T) {
	m := awstest.Start(t)
	front := awstest.StartFront(t, m)
	committed := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	var from []float64
	front.LookupEvents = func(c awstest.LookupEventsCall) (awstest.LookupEventsPage, *awstest.APIError) {
		if c.Body.StartTime != nil {
			from = append(from, *c.Body.StartTime)
		}
		return awstest.LookupEventsPage{}, nil
	}
	ctx := context.Background()
	keyID, sec := m.UserKey(t, "deployer")
	api := ghtest.Start(t)
	api.Token = "ghs_installation"
	blob, commit := strings.Repeat("ab", 20), strings.Repeat("cd", 20)
	api.AddBlob(blob, []byte("AWS_ACCESS_KEY_ID="+keyID+"\nAWS_SECRET_ACCESS_KEY="+sec+"\n"))
	api.AddCommit(commit, committed)
	api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 42, SecretType: "aws_access_key_id", Secret: keyID,
		Locations: []ghtest.Location{{Path: "deploy/prod.env", Line: 1, Column: 18, Blob: blob, Commit: commit}}})
	api.AddAlert(&ghtest.Alert{Repo: "acme/app", Number: 43, SecretType: "aws_secret_access_key", Secret: sec,
		Locations: []ghtest.Location{{Path: "deploy/prod.env", Line: 2, Column: 22, Blob: blob, Commit: commit}}})

	st := openStore(t)
	set, _ := rules.Default()
	r, err := respond.New(ctx, respond.Options{Policy: respond.Delete, Credentials: m.AdminProvider(), Endpoint: front.URL, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	owners := ghrepo.Owners{"acme"}
	w := New(Options{Queue: st, State: st, Engine: engine.Options{Matcher: detect.New(set)}, Verifier: verify.New(verify.Options{Endpoint: front.URL, Cache: st}),
		Responder: r, GitHub: api.Client("ghs_installation"), Mirrors: t.TempDir(), Owners: owners})

	for i, number := range []int{42, 43} {
		typ := []string{"aws_access_key_id", "aws_secret_access_key"}[i]
		id := fmt.Sprintf("a%d", number)
		if err := st.Enqueue(ctx, store.Delivery{ID: id, Event: AlertEvent, Payload: alertPayload("acme/app", number, typ)}); err != nil {
			t.Fatal(err)
		}
		if n, err := w.Once(ctx); n != 1 || err != nil {
			t.Fatalf("Once = %d, %v", n, err)
		}
		if d, _ := st.GetDelivery(ctx, id); d.Status != store.Done {
			t.Fatalf("delivery %s: %s %s", id, d.Status, d.LastError)
		}
		if s := m.KeyStatus(t, "deployer", keyID); s != "" {
			t.Fatalf("after alert #%d the key is %q, want deleted", number, s)
		}
	}
	ups := api.Updates()
	if len(ups) != 2 {
		t.Fatalf("alert updates %+v, want both alerts resolved", ups)
	}
	for i, u := range ups {
		if u.Number != 42+i || u.State != "resolved" || u.Resolution != "revoked" || !strings.Contains(u.Comment, "deleted") ||
			!strings.Contains(u.Comment, "keyburn scan audit --key "+keyID) {
			t.Errorf("update of alert #%d: %+v", 42+i, u)
		}
	}
	if !strings.Contains(ups[0].Comment, "verified this AWS key live (arn:aws:iam::123456789012:user/deployer)") ||
		!strings.Contains(ups[1].Comment, "AWS now answers InvalidClientTokenId") {
		t.Errorf("comments: %q, %q", ups[0].Comment, ups[1].Comment)
	}
	// The key was deleted and both alerts resolved: no issue (the README:
	// an issue is for a live key keyburn did not revoke).
	if is := api.Issues(); len(is) != 0 {
		t.Errorf("issues %v, want none for a key deleted and its alerts resolved", is)
	}
	if strings.Contains(fmt.Sprint(ups, api.Issues()), sec) {
		t.Error("the secret reached GitHub")
	}
	log, _ := st.AuditLog(ctx, keyID)
	var steps []string
	for _, rec := range log {
		steps = append(steps, rec.Action+":"+rec.Outcome)
	}
	if got := strings.Join(steps, ","); !strings.Contains(got, "delete:ok,evidence:ok") {
		t.Errorf("audit %s", got)
	}
	// The evidence was read from the commit that leaked the key.
	if len(from) != 1 || int64(from[0]) != committed.Unix() {
		t.Errorf("CloudTrail read from %v, want the commit's date %v", from, committed)
	}
	for _, req := range api.Requests() {
		if strings.Contains(req, "..") {
			t.Errorf("request %q", req)
		}
	}
}

// TestAlertRefusals: an alert of an owner keyburn does not act for is
// acknowledged and left alone; a worker without the GitHub API parks an
// alert at once with the reason (retrying cannot help); a malformed job
// is parked too.
func TestAlertRefusals(t *testing.T) {
	ctx := context.Background()
	set, _ := rules.Default()
	api := ghtest.Start(t)
	owners := ghrepo.Owners{"acme"}
	for _, tt := range []struct {
		name    string
		payload []byte
		opts    Options
		status  string
		reason  string
	}{
		{"other owner", alertPayload("evil/app", 1, "aws_access_key_id"), Options{GitHub: api.Client(""), Owners: owners}, store.Done, ""},
		{"no GitHub API", alertPayload("acme/app", 1, "aws_access_key_id"), Options{}, store.Parked, "needs the GitHub API"},
		{"malformed", []byte(`{"action":"created","alert":{"number":-1}}`), Options{GitHub: api.Client("")}, store.Parked, "not a usable secret_scanning_alert event"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			tt.opts.Queue, tt.opts.Engine, tt.opts.Mirrors, tt.opts.MaxAttempts = st, engine.Options{Matcher: detect.New(set)}, t.TempDir(), 3
			w := New(tt.opts)
			if err := st.Enqueue(ctx, store.Delivery{ID: "x", Event: AlertEvent, Payload: tt.payload}); err != nil {
				t.Fatal(err)
			}
			if n, err := w.Once(ctx); n != 1 || err != nil {
				t.Fatalf("Once = %d, %v", n, err)
			}
			d, _ := st.GetDelivery(ctx, "x")
			if d.Status != tt.status || !strings.Contains(d.LastError, tt.reason) {
				t.Errorf("delivery %s (%q), want %s (%q)", d.Status, d.LastError, tt.status, tt.reason)
			}
		})
	}
	if reqs := api.Requests(); len(reqs) != 0 {
		t.Errorf("GitHub was asked %v", reqs)
	}
}
