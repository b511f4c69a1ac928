package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/ghpush"
	"github.com/keyburn/keyburn/internal/gittest"
	"github.com/keyburn/keyburn/internal/mirror"
	"github.com/keyburn/keyburn/internal/org"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/testkeys"
	"github.com/keyburn/keyburn/internal/testtools"
	"github.com/keyburn/keyburn/internal/worker"
	"github.com/keyburn/keyburn/rules"
)

// cliKeys runs the CLI in dir and returns the key IDs it reports, sorted.
func cliKeys(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	t.Chdir(dir)
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{args[0], "--format", "json"}, args[1:]...), nil, &out, &errOut)
	if code == exitError {
		t.Fatalf("keyburn %v: exit %d\n%s", args, code, errOut.String())
	}
	var fs []struct {
		KeyID string `json:"key_id"`
	}
	if err := json.Unmarshal(out.Bytes(), &fs); err != nil && out.Len() > 0 {
		t.Fatalf("keyburn %v: %v\n%s", args, err, out.String())
	}
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.KeyID)
	}
	sort.Strings(ids)
	return ids
}

// idsOf is the sorted key IDs of findings.
func idsOf(fs []*finding.Finding) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.KeyID)
	}
	sort.Strings(ids)
	return ids
}

func sorted(ids ...string) []string {
	out := append([]string{}, ids...)
	sort.Strings(out)
	return out
}

// TestEveryPathOneRule runs one repository through every source and caller:
// a key in a normal path (main), one in a path its .keyburn.toml allowlists
// (main), one on a side branch, one only in an unreachable blob. Each
// reports the keys it can see, and none reports the allowlisted one.
func TestEveryPathOneRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	pair := func() (string, string) {
		id := testkeys.KeyID(rng, "AKIA", 100000000000+rng.Uint64N(1e11))
		return id, fmt.Sprintf("aws_access_key_id = %s\naws_secret_access_key = %s\n", id, testkeys.Secret(rng))
	}
	normal, normalText := pair()
	// A key base64-encoded in a Kubernetes Secret: found by decoding, on
	// every path that finds the plain one.
	encoded, encodedPlain := pair()
	encSecret := strings.TrimSpace(strings.SplitN(strings.Split(encodedPlain, "\n")[1], "=", 2)[1])
	encodedText := "kind: Secret\ndata:\n  AWS_ACCESS_KEY_ID: " + base64.StdEncoding.EncodeToString([]byte(encoded)) +
		"\n  AWS_SECRET_ACCESS_KEY: " + base64.StdEncoding.EncodeToString([]byte(encSecret)) + "\n"
	_, allowedText := pair()
	side, sideText := pair()
	dangling, danglingText := pair()
	config := "[allowlist]\ndescription = \"fixtures\"\npaths = ['^fixtures/']\n"

	root, work, elsewhere := t.TempDir(), t.TempDir(), t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(work, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string { t.Helper(); return gittest.Run(t, work, args...) }
	git("init", "-q", "-b", "main")
	write(".keyburn.toml", config)
	write("src/app.env", normalText)
	write("deploy/secret.yaml", encodedText)
	write("fixtures/k.env", allowedText)
	write("README", "hello\n")
	git("add", "-A")
	staged := cliKeys(t, work, "staged") // the index against an empty HEAD
	git("commit", "-q", "-m", "one")
	mainHead := git("rev-parse", "HEAD")
	git("checkout", "-q", "-b", "feature")
	write("feature.env", sideText)
	git("add", "-A")
	git("commit", "-q", "-m", "side")
	featureHead := git("rev-parse", "HEAD")
	git("checkout", "-q", "main")
	blob := filepath.Join(t.TempDir(), "dangling.env")
	os.WriteFile(blob, []byte(danglingText), 0o644)
	git("hash-object", "-w", blob) // in the object store, on no ref
	gittest.Run(t, root, "init", "-q", "--bare", "-b", "main", "acme/hello.git")
	git("push", "-q", filepath.Join(root, "acme/hello.git"), "main", "feature")

	// The callers that read mirrors use the same rules, as an operator
	// passes them with --config.
	set, err := rules.Load(rules.DefaultFS(), &rules.UserFile{Name: "keyburn.toml", Text: []byte(config)})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.Options{Matcher: detect.New(set)}
	backend, err := gittest.HTTPBackend(root)
	if err != nil {
		testtools.Missing(t, "git", "apt-get install git", "the tests that run git")
	}
	gitSrv := httptest.NewServer(backend)
	defer gitSrv.Close()
	rewrites := []mirror.Rewrite{{From: "https://github.com/", To: gitSrv.URL + "/"}}
	ctx := context.Background()

	pushKeys := func(t *testing.T, before, after, ref string) []string {
		t.Helper()
		st, _ := store.Open(filepath.Join(t.TempDir(), "s.db"))
		defer st.Close()
		w := worker.New(worker.Options{Queue: st, Engine: eng, Mirrors: t.TempDir(), Rewrites: rewrites})
		body, _ := json.Marshal(ghpush.Push{Ref: ref, Before: before, After: after,
			Repository: ghpush.Repository{FullName: "acme/hello", DefaultBranch: "main"}})
		res, err := w.Process(ctx, store.Delivery{ID: "p", Event: "push", Payload: body})
		if err != nil {
			t.Fatalf("push %s..%s: %v", before, after, err)
		}
		return idsOf(res.Findings)
	}
	jobKeys := func(t *testing.T) []string {
		t.Helper()
		st, _ := store.Open(filepath.Join(t.TempDir(), "s.db"))
		defer st.Close()
		st.Enqueue(ctx, store.Delivery{ID: "j", Event: org.JobEvent, Payload: []byte(`{"full_name":"acme/hello"}`)})
		w := worker.New(worker.Options{Queue: st, State: st, Engine: eng, Mirrors: t.TempDir(), Rewrites: rewrites})
		res, err := w.Process(ctx, store.Delivery{ID: "j", Event: org.JobEvent, Payload: []byte(`{"full_name":"acme/hello"}`)})
		if err != nil {
			t.Fatalf("repository-scan job: %v", err)
		}
		return idsOf(res.Findings)
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/orgs/acme/repos") {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode([]map[string]any{{"name": "hello", "full_name": "acme/hello",
			"clone_url": "file:///not/used", "pushed_at": time.Now().UTC().Format(time.RFC3339)}})
	}))
	defer api.Close()
	orgKeys := func(t *testing.T) []string {
		t.Helper()
		client, _ := github.NewClient(nil).WithEnterpriseURLs(api.URL+"/", api.URL+"/")
		res, err := org.Scan(ctx, org.Options{Client: client, Org: "acme", Mirrors: t.TempDir(), Rewrites: rewrites, Engine: eng})
		if err != nil {
			t.Fatalf("organisation scan: %v", err)
		}
		return idsOf(res.Findings)
	}
	// The CLI against a GitHub Enterprise-shaped API: clone URLs are built
	// on that server's host, which the rewrite sends to the git server.
	cliOrgKeys := func(t *testing.T) []string {
		t.Helper()
		t.Setenv("GITHUB_TOKEN", "")
		cfg := filepath.Join(t.TempDir(), "keyburn.toml")
		os.WriteFile(cfg, []byte(config), 0o644)
		return cliKeys(t, elsewhere, "github", "--org", "acme", "--github-api", api.URL+"/api/v3/", "--config", cfg,
			"--git-url-rewrite", api.URL+"/="+gitSrv.URL+"/", "--mirrors", t.TempDir(), "--state", filepath.Join(t.TempDir(), "s.db"))
	}
	// Twice on one state, the first run's check unable to finish (AWS
	// unreachable): the second run meets the keys again; once a run's
	// check finishes (no verification asked), the next finds nothing new.
	cliOrgUnchecked := func(t *testing.T) []string {
		t.Helper()
		t.Setenv("GITHUB_TOKEN", "")
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		t.Setenv("AWS_CONFIG_FILE", "/dev/null")
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		cfg := filepath.Join(t.TempDir(), "keyburn.toml")
		os.WriteFile(cfg, []byte(config), 0o644)
		state, mirrors := filepath.Join(t.TempDir(), "s.db"), t.TempDir()
		args := []string{"github", "--org", "acme", "--github-api", api.URL + "/api/v3/", "--config", cfg,
			"--git-url-rewrite", api.URL + "/=" + gitSrv.URL + "/", "--mirrors", mirrors, "--state", state}
		first := cliKeys(t, elsewhere, append(args, "--verify", "--aws-endpoint", "http://127.0.0.1:1")...)
		second := cliKeys(t, elsewhere, args...)
		if strings.Join(first, ",") != strings.Join(second, ",") {
			t.Errorf("the run after an unfinished check found %v, want %v again", second, first)
		}
		if third := cliKeys(t, elsewhere, args...); len(third) != 0 {
			t.Errorf("after a finished check: %v, want nothing new", third)
		}
		return second
	}

	tests := []struct {
		name string
		got  func(t *testing.T) []string
		want []string
	}{
		{"scan dir from the root", func(t *testing.T) []string { return cliKeys(t, work, "dir", ".") }, sorted(normal, encoded)},
		{"scan dir from a subdirectory", func(t *testing.T) []string { return cliKeys(t, filepath.Join(work, "src"), "dir", ".") }, sorted(normal)}, // not deploy/,
		{"scan dir of the allowlisted directory", func(t *testing.T) []string { return cliKeys(t, filepath.Join(work, "fixtures"), "dir", ".") }, nil},
		{"scan dir by absolute path, from elsewhere", func(t *testing.T) []string { return cliKeys(t, elsewhere, "dir", work) }, sorted(normal, encoded)},
		{"scan staged", func(*testing.T) []string { return staged }, sorted(normal, encoded)},
		{"scan git", func(t *testing.T) []string { return cliKeys(t, elsewhere, "git", work) }, sorted(normal, encoded, side, dangling)},
		{"scan git --go-git", func(t *testing.T) []string { return cliKeys(t, elsewhere, "git", "--go-git", work) }, sorted(normal, encoded, side, dangling)},
		{"scan git --reachable-only", func(t *testing.T) []string { return cliKeys(t, elsewhere, "git", "--reachable-only", work) }, sorted(normal, encoded, side)},
		{"scan git --range", func(t *testing.T) []string { return cliKeys(t, work, "git", "--range", mainHead+".."+featureHead, ".") }, sorted(side)},
		{"a push of main", func(t *testing.T) []string { return pushKeys(t, ghpush.Zero, mainHead, "refs/heads/main") }, sorted(normal, encoded)},
		{"a push of the side branch", func(t *testing.T) []string { return pushKeys(t, ghpush.Zero, featureHead, "refs/heads/feature") }, sorted(side)},
		{"an organisation scan", orgKeys, sorted(normal, encoded, side)},
		{"scan github", cliOrgKeys, sorted(normal, encoded, side)},
		{"scan github after a check that could not finish", cliOrgUnchecked, sorted(normal, encoded, side)},
		{"a worker's repository job", jobKeys, sorted(normal, encoded, side)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got(t); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("found %v, want %v", got, tt.want)
			}
		})
	}
}
