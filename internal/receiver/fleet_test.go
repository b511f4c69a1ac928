//go:build unix

package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/gittest"
	"github.com/keyburn/keyburn/internal/pgtest"
	"github.com/keyburn/keyburn/internal/store"
)

// TestFleetSharesOneState: three receivers, as processes of their own,
// share one PostgreSQL state; git's http-backend serves ten repositories,
// a GitHub-shaped API takes their reports, moto is AWS. Fifty signed
// pushes each add a live key. The first receiver, alone at first,
// deactivates five keys (a soak window schedules their deletion) and is
// killed with SIGKILL; the two others carry out its deletions; it comes
// back and the rest of the pushes go to all three. In the end: every
// delivery done, every key deleted by exactly one DeleteAccessKey, one
// deletion in each key's audit trail, and each key's news sent once.
func TestFleetSharesOneState(t *testing.T) {
	m, front, api := receiverWorld(t)
	url := pgtest.Private(t)
	const repos, perRepo = 10, 5

	// The repositories: each commit of each adds one key of its own.
	root := t.TempDir()
	type push struct {
		repo, before, after, keyID, user string
	}
	var pushes []push
	for r := range repos {
		work := filepath.Join(t.TempDir(), "work")
		os.MkdirAll(work, 0o755)
		gittest.Run(t, work, "init", "-q", "-b", "main")
		os.WriteFile(filepath.Join(work, "README"), []byte("hello\n"), 0o644)
		gittest.Run(t, work, "add", ".")
		gittest.Run(t, work, "commit", "-q", "-m", "start")
		before := strings.TrimSpace(gittest.Run(t, work, "rev-parse", "HEAD"))
		for c := range perRepo {
			user := fmt.Sprintf("u%d-%d", r, c)
			id, sec := m.UserKey(t, user)
			os.WriteFile(filepath.Join(work, fmt.Sprintf("deploy%d.env", c)), []byte("AWS_ACCESS_KEY_ID="+id+"\nAWS_SECRET_ACCESS_KEY="+sec+"\n"), 0o644)
			gittest.Run(t, work, "add", ".")
			gittest.Run(t, work, "commit", "-q", "-m", "deploy "+user)
			after := strings.TrimSpace(gittest.Run(t, work, "rev-parse", "HEAD"))
			pushes = append(pushes, push{repo: fmt.Sprintf("acme/r%d", r), before: before, after: after, keyID: id, user: user})
			before = after
		}
		bare := filepath.Join(root, "acme", fmt.Sprintf("r%d.git", r))
		os.MkdirAll(filepath.Dir(bare), 0o755)
		gittest.Run(t, "", "clone", "-q", "--bare", work, bare)
	}
	h, err := gittest.HTTPBackend(root)
	if err != nil {
		t.Fatalf("git http-backend: %v", err)
	}
	git := httptest.NewServer(h)
	defer git.Close()

	// News goes to one JSON target; each message is counted by key and event.
	var mu sync.Mutex
	news := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Event string `json:"event"`
			KeyID string `json:"key_id"`
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if json.Unmarshal(body, &msg) == nil {
			mu.Lock()
			news[msg.KeyID+" "+msg.Event]++
			mu.Unlock()
		}
	}))
	defer hook.Close()
	t.Setenv("KEYBURN_TEST_NOTIFY_SECRET", "notify-key")
	conf := filepath.Join(t.TempDir(), "keyburn.toml")
	os.WriteFile(conf, []byte("[[notify.target]]\nkind = \"json\"\nurl = \""+hook.URL+"\"\nsecret_env = \"KEYBURN_TEST_NOTIFY_SECRET\"\n"), 0o600)

	var addrs [3]string
	var procs [3]*exec.Cmd
	start := func(i int) {
		procs[i], addrs[i] = launchReceiver(t, "--state", url, "--workers", "2", "--mirrors", t.TempDir(), "--respond=delete", "--soak", "3s",
			"--due-interval", "200ms", "--lease", "3s", "--aws-endpoint", front.URL, "--github-api", api.URL, "--github-url", git.URL, "--config", conf)
	}
	deliver := func(i int, p push, n int) {
		body, _ := json.Marshal(map[string]any{"ref": "refs/heads/main", "before": p.before, "after": p.after,
			"created": false, "deleted": false, "forced": false, "commits": []any{}, "head_commit": nil,
			"repository": map[string]any{"full_name": p.repo, "name": strings.TrimPrefix(p.repo, "acme/"), "default_branch": "main",
				"owner": map[string]any{"login": "acme"}}})
		req, _ := http.NewRequest("POST", "http://"+addrs[i]+"/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("fleet-%02d", n))
		req.Header.Set("X-Hub-Signature-256", sign([]byte(testSecret), body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("delivery %d to receiver %d: %v", n, i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("delivery %d to receiver %d answered %d", n, i, resp.StatusCode)
		}
	}
	status := func(p push) string { s, _ := m.Status(p.user, p.keyID); return s }
	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if ok() {
				return
			}
		}
		t.Fatalf("after %v: %s never happened", within, what)
	}

	// The first receiver alone deactivates the first five keys and
	// schedules their deletion; then it is killed.
	start(0)
	for n, p := range pushes[:5] {
		deliver(0, p, n)
	}
	waitFor("the first five keys deactivated", 60*time.Second, func() bool {
		for _, p := range pushes[:5] {
			if status(p) != "Inactive" {
				return false
			}
		}
		return true
	})
	procs[0].Process.Kill() // SIGKILL: no shutdown
	procs[0].Wait()

	// The two others carry out its deletions.
	start(1)
	start(2)
	waitFor("the killed receiver's deletions carried out by the others", 60*time.Second, func() bool {
		for _, p := range pushes[:5] {
			if status(p) != "" {
				return false
			}
		}
		return true
	})

	// It comes back, and the rest goes to all three.
	start(0)
	for n, p := range pushes[5:] {
		deliver((n+5)%3, p, n+5)
	}
	waitFor("every key deleted", 120*time.Second, func() bool {
		for _, p := range pushes {
			if status(p) != "" {
				return false
			}
		}
		return true
	})

	st, err := store.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	// The killed receiver's deliveries in flight go to the others once
	// their lease (3 s here) runs out, and the keys it was acting on once
	// their locks (15 s) do.
	waitFor("every delivery done", 60*time.Second, func() bool {
		depth, err := st.QueueDepth(ctx)
		return err == nil && depth[store.Done] == len(pushes) && len(depth) == 1
	})
	deletes := 0
	for _, c := range front.Calls() {
		if c == "moto:DeleteAccessKey" {
			deletes++
		}
	}
	if deletes != len(pushes) {
		t.Errorf("%d DeleteAccessKey calls for %d keys, want one each", deletes, len(pushes))
	}
	for _, p := range pushes {
		log, err := st.AuditLog(ctx, p.keyID)
		n := 0
		for _, r := range log {
			if r.Action == "delete" && r.Outcome == "ok" {
				n++
			}
		}
		if err != nil || n != 1 {
			t.Errorf("%s: %d deletions in its audit trail (%v), want one", p.keyID, n, err)
		}
	}
	defer func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("notifications: %v", news)
			mu.Unlock()
		}
	}()
	// News of each key: that it is live (stored before anyone acts), then
	// what became of it, once. A key whose action a killed receiver had
	// not yet reported is told by the receiver that finished its delivery,
	// which found it deleted already (not-acted, with that reason).
	waitFor("every key's news", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pushes {
			if news[p.keyID+" live"] != 1 || news[p.keyID+" acted"]+news[p.keyID+" not-acted"] != 1 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for k, n := range news {
		if n != 1 {
			t.Errorf("notification %q sent %d times", k, n)
		}
	}
}
