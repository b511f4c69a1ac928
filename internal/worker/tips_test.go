package worker

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/testkeys"
	"github.com/keyburn/keyburn/internal/verify"
	"github.com/keyburn/keyburn/rules"
)

// TestRepoJobRemembersOnlyWhatWasChecked: a repository-scan job whose key
// could not be verified (AWS unreachable) does not remember where its scan
// ended, so the next job reads those commits again and finds the key; once
// the check finishes (AWS answers), the scan is remembered and the next
// job reads nothing.
func TestRepoJobRemembersOnlyWhatWasChecked(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	work, bare, _ := newRepo(t, root)
	rng := rand.New(rand.NewPCG(9, 24))
	id, sec := testkeys.KeyID(rng, "AKIA", 111122223333), testkeys.Secret(rng)
	os.WriteFile(filepath.Join(work, "deploy.env"), []byte("AWS_ACCESS_KEY_ID="+id+"\nAWS_SECRET_ACCESS_KEY="+sec+"\n"), 0o644)
	runGit(t, work, "add", "-A")
	runGit(t, work, "commit", "-q", "-m", "deploy")
	runGit(t, work, "push", "-q", bare, "main")
	gitSrv := gitServer(t, root)
	set, _ := rules.Default()
	st := openStore(t)
	job := func(v *verify.Verifier) Result {
		t.Helper()
		w := New(Options{Queue: st, State: st, Engine: engine.Options{Matcher: detect.New(set)}, Mirrors: filepath.Join(root, "mirrors"),
			Verifier: v, Rewrites: []mirror.Rewrite{{From: "https://github.com/", To: gitSrv.URL + "/"}}})
		res, err := w.Process(ctx, store.Delivery{ID: "j", Event: repoScanEvent, Payload: []byte(`{"full_name":"acme/hello"}`)})
		if err != nil {
			t.Fatalf("job: %v", err)
		}
		return res
	}
	down := verify.New(verify.Options{Endpoint: "http://127.0.0.1:1", Attempts: 1, Backoff: time.Millisecond})
	if res := job(down); len(res.Findings) != 1 || res.Findings[0].Verification == nil || res.Findings[0].Verification.Status != string(verify.Error) {
		t.Fatalf("first job: %+v, want the key found and its verification failed", res.Findings)
	}
	if tips, _, _ := st.RepoTips(ctx, "acme/hello"); tips != nil {
		t.Errorf("tips %v remembered although the key could not be checked: the next scan would never see it again", tips)
	}
	if res := job(down); len(res.Findings) != 1 {
		t.Fatalf("second job: %d findings, want the key found again", len(res.Findings))
	}
	if res := job(nil); len(res.Findings) != 1 {
		t.Fatalf("a job that does not verify: %d findings, want the key", len(res.Findings))
	}
	if res := job(nil); len(res.Findings) != 0 {
		t.Errorf("after a finished check: %d findings, want none (the scan remembered)", len(res.Findings))
	}
}
