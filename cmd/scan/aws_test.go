package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/awstest"
)

// TestRespondEndToEnd runs the CLI against moto_server: a live key in a file
// is verified, deactivated and deleted; the report shows verdict and action;
// the audit command shows the steps; a second run is a no-op.
func TestRespondEndToEnd(t *testing.T) {
	m := awstest.Start(t)
	id, sec := m.UserKey(t, "alice")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.env"), []byte(fmt.Sprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", id, sec)), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state.db")
	t.Setenv("AWS_ACCESS_KEY_ID", m.Admin.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.Admin.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	runCLI := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, nil, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	// Dry run first: nothing changes.
	code, out, stderr := runCLI("dir", "--respond=delete", "--dry-run", "--aws-endpoint", m.URL, "--state", state, dir)
	if code != exitFindings || !strings.Contains(out, "verdict      live  arn:aws:iam::123456789012:user/alice") || !strings.Contains(out, "action       dry-run") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	if s := m.KeyStatus(t, "alice", id); s != "Active" {
		t.Fatalf("after a dry run the key is %q", s)
	}
	code, out, stderr = runCLI("dir", "--format", "json", "--respond=delete", "--aws-endpoint", m.URL, "--state", state, dir)
	if code != exitFindings || !strings.Contains(out, `"status": "live"`) || !strings.Contains(out, `"action": "deleted"`) {
		t.Fatalf("respond: exit %d\n%s\n%s", code, out, stderr)
	}
	if strings.Contains(out+stderr, sec) {
		t.Errorf("the secret was printed")
	}
	if s := m.KeyStatus(t, "alice", id); s != "" {
		t.Errorf("after --respond=delete the key is %q, want deleted", s)
	}
	code, out, _ = runCLI("audit", "--state", state, "--key", id)
	for _, step := range []string{"owner-check", "last-used", "deactivate", "delete"} {
		if code != exitClean || !strings.Contains(out, step) {
			t.Errorf("audit lacks %s:\n%s", step, out)
		}
	}
	if strings.Contains(out, sec) {
		t.Errorf("the audit log shows the secret")
	}
	// Again: the key is gone, so it is invalid and nothing is done.
	code, out, _ = runCLI("dir", "--respond=delete", "--aws-endpoint", m.URL, "--state", state, dir)
	if code != exitFindings || !strings.Contains(out, "verdict      invalid") || !strings.Contains(out, "not live (invalid)") {
		t.Errorf("second run: exit %d\n%s", code, out)
	}
}
