package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReleaseScript builds this machine's release with scripts/release and
// checks what it promises: both binaries, the version stamped in, and
// checksums that verify.
func TestReleaseScript(t *testing.T) {
	// A static build compiles every dependency afresh (two minutes): CI
	// runs it, and so does anyone who sets KEYBURN_RELEASE_TEST=1.
	if testing.Short() || os.Getenv("CI") != "true" && os.Getenv("KEYBURN_RELEASE_TEST") != "1" {
		t.Skip("builds static binaries from scratch: runs under CI=true or KEYBURN_RELEASE_TEST=1")
	}
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("sha256sum is not installed")
	}
	out := t.TempDir()
	target := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command("../../scripts/release", "v0.0.0-test")
	cmd.Env = append(os.Environ(), "TARGETS="+target, "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/release: %v\n%s", err, b)
	}
	dir := filepath.Join(out, "v0.0.0-test")
	bin := filepath.Join(dir, runtime.GOOS+"-"+runtime.GOARCH)
	v, err := exec.Command(filepath.Join(bin, "keyburn"), "version").Output()
	if err != nil || strings.TrimSpace(string(v)) != "keyburn v0.0.0-test" {
		t.Errorf("keyburn version = %q, %v; want keyburn v0.0.0-test", v, err)
	}
	v, err = exec.Command(filepath.Join(bin, "keyburn-webhook"), "version").Output()
	if err != nil || strings.TrimSpace(string(v)) != "keyburn-webhook v0.0.0-test" {
		t.Errorf("keyburn-webhook version = %q, %v; want keyburn-webhook v0.0.0-test", v, err)
	}
	v, err = exec.Command(filepath.Join(bin, "keyburn-hook"), "version").Output()
	if err != nil || strings.TrimSpace(string(v)) != "keyburn-hook v0.0.0-test" {
		t.Errorf("keyburn-hook version = %q, %v; want keyburn-hook v0.0.0-test", v, err)
	}
	check := exec.Command("sha256sum", "-c", "SHA256SUMS")
	check.Dir = dir
	if b, err := check.CombinedOutput(); err != nil || strings.Count(string(b), ": OK") != 3 {
		t.Errorf("sha256sum -c: %v\n%s", err, b)
	}
}

// TestBinaryNames: go install gives the binaries the names the README,
// the hooks and the release use: keyburn, keyburn-hook and keyburn-webhook.
func TestBinaryNames(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Name}} {{.Target}}", "../../cmd/keyburn", "../../cmd/keyburn-hook", "../../cmd/keyburn-webhook").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, target, _ := strings.Cut(line, " ")
		if pkg != "main" {
			t.Errorf("%s: package %s, want main", target, pkg)
		}
		names = append(names, strings.TrimSuffix(filepath.Base(target), ".exe"))
	}
	if strings.Join(names, " ") != "keyburn keyburn-hook keyburn-webhook" {
		t.Errorf("go install names them %q, want keyburn keyburn-hook keyburn-webhook", names)
	}
	hooks, err := os.ReadFile("../../.pre-commit-hooks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(hooks), "\n") {
		if entry, ok := strings.CutPrefix(strings.TrimSpace(line), "entry: "); ok && !strings.HasPrefix(entry, "keyburn ") && !strings.HasPrefix(entry, "keyburn-hook ") {
			t.Errorf(".pre-commit-hooks.yaml runs %q, want keyburn …", entry)
		}
	}
}
