package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/store"
)

func TestMain(m *testing.M) {
	if os.Getenv("KEYBURN_WEBHOOK_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startReceiver runs this test binary as the webhook on a free port.
func startReceiver(t *testing.T, state string, workers int) (*exec.Cmd, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], "--listen", addr, "--state", state, "--respond", "off",
		"--workers", fmt.Sprint(workers), "--mirrors", filepath.Join(filepath.Dir(state), "mirrors"))
	cmd.Env = append(os.Environ(), "KEYBURN_WEBHOOK_MAIN=1", "KEYBURN_WEBHOOK_SECRET="+testSecret)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 100 { // up to 10 s
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			return cmd, addr
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the receiver did not start on %s", addr)
	return nil, ""
}

// TestKillNineLosesNothing accepts a delivery, kills the receiver with
// SIGKILL before any worker runs, and starts it again with a worker: the
// delivery is processed.
func TestKillNineLosesNothing(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.db")
	cmd, addr := startReceiver(t, state, 0)
	body := pushPayloadDeleted()
	req, _ := http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "crash-1")
	req.Header.Set("X-Hub-Signature-256", sign([]byte(testSecret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	cmd.Process.Kill() // SIGKILL: no shutdown, no flush
	cmd.Wait()

	startReceiver(t, state, 1)
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for range 100 { // up to 10 s
		d, err := st.GetDelivery(context.Background(), "crash-1")
		if err == nil && d.Status == store.Done {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	d, err := st.GetDelivery(context.Background(), "crash-1")
	t.Fatalf("after the restart the delivery is %q (%v, %q), want done", d.Status, err, d.LastError)
}

// pushPayloadDeleted is a branch deletion: a push that adds nothing, so a
// worker finishes it without fetching.
func pushPayloadDeleted() []byte {
	return []byte(`{"ref":"refs/heads/gone","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246",` +
		`"after":"0000000000000000000000000000000000000000","deleted":true,` +
		`"repository":{"full_name":"acme/hello","clone_url":"https://github.com/acme/hello.git","default_branch":"main"}}`)
}
