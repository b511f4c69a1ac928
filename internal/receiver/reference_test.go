package receiver

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	flag "github.com/spf13/pflag"
)

// TestReference fails when docs/webhook.md is not what keyburn-webhook
// --help says (every flag and its default); UPDATE=1 rewrites it.
func TestReference(t *testing.T) {
	const path = "../../docs/webhook.md"
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	got := []byte("# keyburn-webhook reference\n\nGenerated from `keyburn-webhook --help` by `UPDATE=1 go test ./internal/receiver -run TestReference`;\na test fails when this file and the code disagree.\n\n```\n" + out.String() + "```\n")
	if os.Getenv("UPDATE") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s is stale or missing (%v): run UPDATE=1 go test ./internal/receiver -run TestReference and commit it", path, err)
	}
	// The binary says its name and version.
	var v bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &v, &v); err != nil || !strings.HasPrefix(v.String(), "keyburn-webhook ") {
		t.Errorf("keyburn-webhook version = %q, %v", v.String(), err)
	}
}
