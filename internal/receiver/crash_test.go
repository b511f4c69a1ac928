package receiver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/store"
)

func TestMain(m *testing.M) {
	if os.Getenv("KEYBURN_WEBHOOK_MAIN") == "1" {
		Main()
		return
	}
	os.Exit(m.Run())
}

// startReceiver runs this test binary as the webhook on a free port, its
// state at state (a file), responding to nothing.
func startReceiver(t *testing.T, state string, workers int, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	return launchReceiver(t, append([]string{"--state", state, "--respond", "off",
		"--workers", fmt.Sprint(workers), "--mirrors", filepath.Join(filepath.Dir(state), "mirrors")}, extra...)...)
}

// launchReceiver runs this test binary as the webhook with args on a free
// port, killed at the test's end (its log shown when the test failed).
func launchReceiver(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(os.Args[0], append([]string{"--listen", addr}, args...)...)
	cmd.Env = append(os.Environ(), "KEYBURN_WEBHOOK_MAIN=1", "KEYBURN_WEBHOOK_SECRET="+testSecret)
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("receiver %s's log:\n%s", addr, logs.String())
		}
	})
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
	postDeletion(t, addr, "crash-1")
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

// TestFleetThroughSQS runs a receive-only receiver and a separate worker
// process sharing a queue in moto's SQS: a delivery accepted by the first is
// processed by the second.
func TestFleetThroughSQS(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	api := sqs.New(sqs.Options{Region: "us-east-1", Credentials: m.AdminProvider(), BaseEndpoint: aws.String(m.URL)})
	out, err := api.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("deliveries.fifo"),
		Attributes: map[string]string{"FifoQueue": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	queue := aws.ToString(out.QueueUrl)
	t.Setenv("AWS_ACCESS_KEY_ID", m.Admin.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.Admin.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	extra := []string{"--queue", queue, "--aws-endpoint", m.URL}
	_, addr := startReceiver(t, filepath.Join(t.TempDir(), "a.db"), 0, extra...)
	postDeletion(t, addr, "fleet-1")
	pending := func() int {
		a, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queue),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, v := range a.Attributes {
			k, _ := strconv.Atoi(v)
			n += k
		}
		return n
	}
	if pending() != 1 {
		t.Fatalf("the queue holds %d messages after the POST, want 1", pending())
	}
	startReceiver(t, filepath.Join(t.TempDir(), "b.db"), 1, extra...)
	for range 100 { // up to 10 s
		if pending() == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the worker process did not take the delivery off the queue")
}

// postDeletion sends a signed branch-deletion push and expects 202.
func postDeletion(t *testing.T, addr, delivery string) {
	t.Helper()
	body := pushPayloadDeleted()
	req, _ := http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", sign([]byte(testSecret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("POST %s = %d, want 202", delivery, resp.StatusCode)
	}
}

// TestSIGTERMWithADeliveryInFlight: a receiver told to stop while a worker
// is fetching a push (from a git server that never answers) stops claiming,
// waits out its grace period, gives the delivery back to the queue (no
// attempt counted, no lease held) and exits.
func TestSIGTERMWithADeliveryInFlight(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	defer hang.Close()
	state := filepath.Join(t.TempDir(), "state.db")
	cmd, addr := startReceiver(t, state, 1, "--grace", "300ms", "--git-url-rewrite", "https://github.com/="+hang.URL+"/")
	body := []byte(`{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000",` +
		`"after":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","repository":{"full_name":"acme/hello","default_branch":"main"}}`)
	req, _ := http.NewRequest("POST", "http://"+addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "inflight")
	req.Header.Set("X-Hub-Signature-256", sign([]byte(testSecret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	running := false
	for range 100 { // up to 10 s
		if d, err := st.GetDelivery(context.Background(), "inflight"); err == nil && d.Status == store.Running {
			running = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !running {
		t.Fatal("the delivery was never taken")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the receiver did not exit after SIGTERM")
	}
	d, err := st.GetDelivery(context.Background(), "inflight")
	if err != nil || d.Status != store.Queued || d.Attempts != 0 {
		t.Errorf("after SIGTERM the delivery is %s (attempt %d, %v), want queued again with no attempt counted", d.Status, d.Attempts, err)
	}
}
