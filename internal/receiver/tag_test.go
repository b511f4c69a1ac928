package receiver

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/gittest"
	"github.com/keyburn/keyburn/internal/testtools"
)

// TestAnnotatedTagPush: a tag push names the tag object as "after". The
// running receiver fetches the repository from git's own http-backend,
// peels the tag (and a tag of that tag) to its commit, scans what the
// commit adds (a key reachable from the tag alone), deletes the key in
// moto, and posts its status on the commit, not on the tag object. No
// "could not scan" issue, no retries.
func TestAnnotatedTagPush(t *testing.T) {
	m, front, api := receiverWorld(t)
	keyID, sec := m.UserKey(t, "release")

	// The repository: main holds nothing; a release commit, reachable only
	// from the tags, holds the key.
	root := t.TempDir()
	work := filepath.Join(t.TempDir(), "work")
	os.MkdirAll(work, 0o755)
	gittest.Run(t, work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "README"), []byte("hello\n"), 0o644)
	gittest.Run(t, work, "add", ".")
	gittest.Run(t, work, "commit", "-q", "-m", "start")
	gittest.Run(t, work, "checkout", "-q", "-b", "release")
	os.WriteFile(filepath.Join(work, "release.env"), []byte("AWS_ACCESS_KEY_ID="+keyID+"\nAWS_SECRET_ACCESS_KEY="+sec+"\n"), 0o644)
	gittest.Run(t, work, "add", ".")
	gittest.Run(t, work, "commit", "-q", "-m", "release")
	commit := strings.TrimSpace(gittest.Run(t, work, "rev-parse", "HEAD"))
	gittest.Run(t, work, "tag", "-a", "v1", "-m", "v1")
	gittest.Run(t, work, "tag", "-a", "v1-signed", "v1", "-m", "a tag of a tag")
	gittest.Run(t, work, "checkout", "-q", "main")
	gittest.Run(t, work, "branch", "-q", "-D", "release")
	tagOfTag := strings.TrimSpace(gittest.Run(t, work, "rev-parse", "v1-signed"))
	if tagOfTag == commit {
		t.Fatal("v1-signed is not a tag object")
	}
	bare := filepath.Join(root, "acme", "app.git")
	os.MkdirAll(filepath.Dir(bare), 0o755)
	gittest.Run(t, "", "clone", "-q", "--bare", work, bare)
	h, err := gittest.HTTPBackend(root)
	if err != nil {
		testtools.Missing(t, "git-http-backend", "it comes with git: "+err.Error(), "the tests that serve git over HTTP")
	}
	git := httptest.NewServer(h)
	defer git.Close()

	api.NotCommits(tagOfTag, strings.TrimSpace(gittest.Run(t, work, "rev-parse", "v1")))
	event, _ := json.Marshal(map[string]any{"ref": "refs/tags/v1-signed", "before": strings.Repeat("0", 40), "after": tagOfTag,
		"created": true, "deleted": false, "forced": false, "commits": []any{}, "head_commit": nil,
		"repository": map[string]any{"full_name": "acme/app", "name": "app", "default_branch": "main", "owner": map[string]any{"login": "acme"}}})

	log := deliverUntil(t, freeAddr(t), []string{"--state", filepath.Join(t.TempDir(), "state.db"), "--workers", "1",
		"--mirrors", t.TempDir(), "--respond=delete", "--aws-endpoint", front.URL, "--github-api", api.URL, "--github-url", git.URL},
		"push", "92d3162e-cc78-11e3-81ab-4c9367dc0958", event, func(metrics string) bool {
			return strings.Contains(metrics, `keyburn_actions_total{action="deleted"} 1`) || strings.Contains(metrics, "keyburn_delivery_errors_total 1")
		})
	if s := m.KeyStatus(t, "release", keyID); s != "" {
		t.Errorf("the key reachable from the tag alone is %q, want deleted\n%s", s, log)
	}
	if st := api.Statuses(); len(st) != 1 || st[0].SHA != commit || st[0].State != "failure" {
		t.Errorf("statuses %+v, want one failure on the tagged commit %s", st, commit)
	}
	for _, is := range api.Issues() {
		if strings.Contains(is["title"].(string), "could not scan") {
			t.Errorf("a false issue: %v", is["title"])
		}
	}
	// The log tells the operator what was found and done, one line each.
	found := logLines(t, log, "key found")
	if len(found) != 1 || found[0]["key_id"] != keyID || found[0]["repo"] != "acme/app" || found[0]["commit"] != commit ||
		found[0]["path"] != "release.env" || found[0]["verdict"] != "live" || found[0]["action"] != "deleted" ||
		found[0]["severity"] == nil || found[0]["fingerprint"] == nil || len(fmt.Sprint(found[0]["fingerprint"])) != 64 {
		t.Errorf("key found lines %v\n%s", found, log)
	}
	acted := logLines(t, log, "key acted on")
	if len(acted) != 1 || acted[0]["action"] != "deleted" || acted[0]["audit"] != "keyburn scan audit --key "+keyID {
		t.Errorf("key acted on lines %v", acted)
	}
	if strings.Contains(log, sec) || strings.Contains(log, "not a commit") {
		t.Errorf("the log shows the secret, or a failure to read the tag:\n%s", log)
	}
}

// logLines returns the receiver's JSON log lines whose msg is msg.
func logLines(t *testing.T, log, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}
