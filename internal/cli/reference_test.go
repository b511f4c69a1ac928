package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// reference renders docs/cli.md from the commands' own --help, so that the
// reference is the code's word.
func reference(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("# keyburn command reference\n\n")
	b.WriteString("Generated from each command's `--help` by `UPDATE=1 go test ./internal/cli -run TestReference`;\n")
	b.WriteString("a test fails when this file and the code disagree. Flags may come before or after\n")
	b.WriteString("the paths; the word `scan` is optional (`keyburn dir .`).\n\n")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"help"}, nil, &out, &errOut); code != exitClean {
		t.Fatalf("keyburn help: exit %d: %s", code, errOut.String())
	}
	b.WriteString("## keyburn\n\n```\n" + out.String() + "```\n")
	for _, c := range commands { // every command, in the order help lists them
		out.Reset()
		errOut.Reset()
		if code := run(context.Background(), []string{"scan", c, "--help"}, nil, &out, &errOut); code != exitClean || errOut.Len() > 0 {
			t.Fatalf("keyburn scan %s --help: exit %d, stderr %q", c, code, errOut.String())
		}
		b.WriteString("\n## keyburn scan " + c + "\n\n```\n" + strings.TrimRight(out.String(), "\n") + "\n```\n")
	}
	return b.Bytes()
}

// TestReference fails when docs/cli.md is not what the commands say of
// themselves; UPDATE=1 rewrites it.
func TestReference(t *testing.T) {
	const path = "../../docs/cli.md"
	got := reference(t)
	if os.Getenv("UPDATE") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE=1 go test ./internal/cli -run TestReference writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run UPDATE=1 go test ./internal/cli -run TestReference and commit it", path)
	}
}
