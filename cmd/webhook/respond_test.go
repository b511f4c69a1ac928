package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/store"
)

// syncBuffer is a bytes.Buffer safe for the receiver's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runUntil runs the receiver until done reports true (checked every 50 ms,
// for at most 10 s), then stops it and returns its log.
func runUntil(t *testing.T, args []string, done func() bool) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuffer
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, args, io.Discard, &log) }()
	ok := false
	for range 200 {
		if ok = done(); ok {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	if !ok {
		t.Fatalf("the receiver never got there; its log:\n%s", log.String())
	}
	return log.String()
}

// TestDefaultsMatchTheCLI: without flags the receiver responds to nothing
// and says so loudly, and keeps its state where the CLI looks (so that
// `keyburn scan audit` sees what it did), readable by its owner only.
func TestDefaultsMatchTheCLI(t *testing.T) {
	t.Setenv("KEYBURN_WEBHOOK_SECRET", testSecret)
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	state := store.DefaultPath()
	log := runUntil(t, []string{"--listen", "127.0.0.1:0", "--workers", "0", "--mirrors", t.TempDir()}, func() bool {
		_, err := os.Stat(state)
		return err == nil
	})
	if !strings.Contains(log, "RESPONDER OFF") {
		t.Errorf("the log does not say the responder is off:\n%s", log)
	}
	fi, err := os.Stat(state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state %s: %v, %v; want mode 0600", state, fi, err)
	}
}

// TestDueDeletionsOnATimer: the receiver carries out a deletion whose soak
// window has passed without any delivery arriving, and its log says which
// policy it runs.
func TestDueDeletionsOnATimer(t *testing.T) {
	m := awstest.Start(t)
	t.Setenv("KEYBURN_WEBHOOK_SECRET", testSecret)
	t.Setenv("AWS_ACCESS_KEY_ID", m.Admin.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.Admin.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	id, _ := m.UserKey(t, "hana")
	m.SetKeyStatus(t, "hana", id, "Inactive") // deactivated by an earlier run
	state := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ScheduleDeletion(context.Background(), store.Deletion{KeyID: id, Account: "123456789012", UserName: "hana",
		DueAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	log := runUntil(t, []string{"--listen", "127.0.0.1:0", "--state", state, "--workers", "1", "--mirrors", t.TempDir(),
		"--respond=delete", "--soak", "24h", "--due-interval", "100ms", "--aws-endpoint", m.URL}, func() bool {
		s, err := m.Status("hana", id)
		return err == nil && s == ""
	})
	if !strings.Contains(log, "RESPONDER ON: respond=delete (deactivate, then delete after a soak of 24h0m0s)") {
		t.Errorf("the log does not state the policy:\n%s", log)
	}
	if !strings.Contains(log, `"msg":"due deletion","key_id":"`+id+`","action":"deleted"`) {
		t.Errorf("the log does not record the due deletion:\n%s", log)
	}
}
