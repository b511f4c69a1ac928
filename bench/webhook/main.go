//go:build bench

// Command webhook measures keyburn's webhook receiver, on loopback only, and
// stops by itself:
//
//  1. acknowledge latency: signed push deliveries at -rate per second for
//     -seconds against a receiver that only stores them (--workers 0); prints
//     p50, p99 and max;
//
//  2. push to deleted: a push of 10 commits carrying a live key (moto_server)
//     to a repository served by git http-backend, then the time from the
//     delivery's POST to the key's deletion; -pushes times, median printed.
//
//  3. notice to deleted: an AWS Health credentials-exposed event for a
//     live key, sent to an SQS queue (moto) the receiver reads with
//     --aws-notices, then the time from the send to the key's deletion;
//     -pushes times, median printed.
//
//     go build ./cmd/keyburn-webhook && go run ./bench/webhook -bin ./keyburn-webhook
//
// -state postgres://… runs both against PostgreSQL instead of SQLite.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/gittest"
)

const secret = "bench-secret"

func main() {
	bin := flag.String("bin", "", "the webhook binary")
	rate := flag.Int("rate", 200, "deliveries per second")
	seconds := flag.Int("seconds", 10, "how long to send")
	pushes := flag.Int("pushes", 5, "push-to-deleted runs")
	state := flag.String("state", "", "the receivers' state: a postgres:// URL in which {db} names the database, ack or push (default: SQLite files in a temporary directory)")
	flag.Parse()
	if *bin == "" {
		fail(fmt.Errorf("-bin is required"))
	}
	dir, err := os.MkdirTemp("", "keyburn-webhook-bench")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	// Each phase has a state of its own: the deliveries the first stores
	// would otherwise queue ahead of the second's.
	where := func(db string) string {
		if *state != "" {
			return strings.ReplaceAll(*state, "{db}", db)
		}
		return filepath.Join(dir, db+".db")
	}
	ackLatency(*bin, where("ack"), *rate, *seconds)
	pushToDeleted(*bin, dir, where("push"), *pushes)
	noticeToDeleted(*bin, dir, where("notice"), *pushes)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/webhook:", err)
	os.Exit(1)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs the receiver and waits until it answers.
func start(bin string, env []string, args ...string) (*exec.Cmd, string) {
	addr := freeAddr()
	cmd := exec.Command(bin, append([]string{"--listen", addr}, args...)...)
	cmd.Env = append(append(os.Environ(), "KEYBURN_WEBHOOK_SECRET="+secret), env...)
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	for range 100 {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return cmd, addr
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	fail(fmt.Errorf("the receiver did not start"))
	return nil, ""
}

func sign(body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func post(client *http.Client, addr, id string, body []byte) (int, time.Duration, error) {
	req, _ := http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", sign(body))
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(t0), nil
}

func payload(ref, before, after, cloneURL string) []byte {
	b, _ := json.Marshal(map[string]any{"ref": ref, "before": before, "after": after,
		"repository": map[string]any{"full_name": "acme/hello", "default_branch": "main", "clone_url": cloneURL}})
	return b
}

func ackLatency(bin, state string, rate, seconds int) {
	cmd, addr := start(bin, nil, "--workers", "0", "--respond", "off", "--state", state)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	n := rate * seconds
	lat := make([]time.Duration, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	begin := time.Now()
	for i := range n {
		<-tick.C
		// A distinct push each: the receiver drops a push it already
		// holds (a replay), which would measure less than storing one.
		body := payload("refs/heads/main", strings.Repeat("1", 40), fmt.Sprintf("%040x", i+1), "https://github.com/acme/hello.git")
		wg.Go(func() {
			code, d, err := post(client, addr, fmt.Sprintf("load-%d", i), body)
			if err != nil {
				code = -1
			}
			lat[i], codes[i] = d, code
		})
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(begin)
	bad := 0
	for _, c := range codes {
		if c != 202 {
			bad++
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("acknowledge: %d deliveries at %.0f/s for %.1f s: p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d not 202 (target p99 < 50 ms)\n",
		n, float64(n)/elapsed.Seconds(), elapsed.Seconds(), ms(lat[n/2]), ms(lat[n*99/100]), ms(lat[n-1]), bad)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func git(dir string, args ...string) string {
	out, err := gittest.Command(dir, args...).CombinedOutput()
	if err != nil {
		fail(fmt.Errorf("git %v: %v\n%s", args, err, out))
	}
	return strings.TrimSpace(string(out))
}

func pushToDeleted(bin, dir, state string, pushes int) {
	m, stop, err := awstest.Run()
	if err != nil {
		fmt.Println("push to deleted: skipped:", err)
		return
	}
	defer stop()
	root := filepath.Join(dir, "git")
	git(dir, "init", "-q", "--bare", "-b", "main", filepath.Join(root, "acme/hello.git"))
	backend, err := gittest.HTTPBackend(root)
	if err != nil {
		fail(err)
	}
	srv := httptest.NewServer(backend)
	defer srv.Close()
	work := filepath.Join(dir, "work")
	os.MkdirAll(work, 0o755)
	git(work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "README"), []byte("hi\n"), 0o644)
	git(work, "add", "-A")
	git(work, "commit", "-q", "-m", "init")
	git(work, "push", "-q", filepath.Join(root, "acme/hello.git"), "main")

	env := []string{"AWS_ACCESS_KEY_ID=" + m.Admin.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + m.Admin.SecretAccessKey,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "GITHUB_TOKEN="}
	cmd, addr := start(bin, env, "--workers", "2", "--respond", "delete", "--aws-endpoint", m.URL,
		"--state", state, "--mirrors", filepath.Join(dir, "mirrors"),
		"--git-url-rewrite", "https://github.com/="+srv.URL+"/")
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	client := &http.Client{Timeout: 10 * time.Second}
	var times []time.Duration
	for p := range pushes {
		user := fmt.Sprintf("deployer%d", p)
		keyID, sec, err := m.NewUserKey(user)
		if err != nil {
			fail(err)
		}
		before := git(work, "rev-parse", "HEAD")
		os.WriteFile(filepath.Join(work, "deploy.env"), []byte("AWS_ACCESS_KEY_ID="+keyID+"\nAWS_SECRET_ACCESS_KEY="+sec+"\n"), 0o644)
		for i := range 10 {
			os.WriteFile(filepath.Join(work, fmt.Sprintf("n%d.txt", i)), []byte(fmt.Sprintf("push %d commit %d\n", p, i)), 0o644)
			git(work, "add", "-A")
			git(work, "commit", "-q", "-m", fmt.Sprintf("push %d commit %d", p, i))
		}
		after := git(work, "rev-parse", "HEAD")
		git(work, "push", "-q", filepath.Join(root, "acme/hello.git"), "main")
		t0 := time.Now()
		if code, _, err := post(client, addr, fmt.Sprintf("push-%d", p), payload("refs/heads/main", before, after, "https://github.com/acme/hello.git")); err != nil || code != 202 {
			fail(fmt.Errorf("push delivery: %d %v", code, err))
		}
		deleted := false
		for range 600 { // up to 60 s
			if st, err := m.Status(user, keyID); err == nil && st == "" {
				deleted = true
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !deleted {
			fail(fmt.Errorf("push %d: the key was not deleted within 60 s", p))
		}
		times = append(times, time.Since(t0))
	}
	sorted := append([]time.Duration{}, times...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	fmt.Printf("push to deleted (10 commits, live key, git http-backend and moto on loopback): median %.2f s over %d pushes %v (target < 5 s)\n",
		sorted[len(sorted)/2].Seconds(), len(times), times)
}

func noticeToDeleted(bin, dir, state string, notices int) {
	m, stop, err := awstest.Run()
	if err != nil {
		fmt.Println("notice to deleted: skipped:", err)
		return
	}
	defer stop()
	q, err := m.MakeQueue("health")
	if err != nil {
		fail(err)
	}
	env := []string{"AWS_ACCESS_KEY_ID=" + m.Admin.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + m.Admin.SecretAccessKey,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "GITHUB_TOKEN="}
	cmd, _ := start(bin, env, "--workers", "1", "--respond", "delete", "--aws-endpoint", m.URL,
		"--state", state, "--mirrors", filepath.Join(dir, "mirrors-notice"), "--aws-notices", q.URL)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var times []time.Duration
	for p := range notices {
		user := fmt.Sprintf("exposed%d", p)
		keyID, _, err := m.NewUserKey(user)
		if err != nil {
			fail(err)
		}
		t0 := time.Now()
		if err := q.Send(awstest.HealthNotice("123456789012", keyID)); err != nil {
			fail(err)
		}
		deleted := false
		for range 600 { // up to 60 s
			if st, err := m.Status(user, keyID); err == nil && st == "" {
				deleted = true
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !deleted {
			fail(fmt.Errorf("notice %d: the key was not deleted within 60 s", p))
		}
		times = append(times, time.Since(t0))
	}
	sorted := append([]time.Duration{}, times...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	fmt.Printf("AWS notice to deleted (Health event on SQS, moto on loopback): median %.2f s over %d notices %v\n",
		sorted[len(sorted)/2].Seconds(), len(times), times)
}
