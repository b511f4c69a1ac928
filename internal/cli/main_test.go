package cli

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keyburn/keyburn/internal/hook"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"keyburn":      Main,
		"keyburn-hook": hook.Main,
	})
}

func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
			"utf16":    cmdUTF16,
			// corrupt REPO HASH: overwrite a loose object with garbage.
			"corrupt": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 || len(args[1]) != 40 {
					ts.Fatalf("usage: corrupt repo hash")
				}
				p := filepath.Join(ts.MkAbs(args[0]), ".git", "objects", args[1][:2], args[1][2:])
				_ = os.Chmod(p, 0o644)
				if err := os.WriteFile(p, []byte("this is not zlib data"), 0o644); err != nil {
					ts.Fatalf("corrupt: %v", err)
				}
			},
			// setenvfile NAME FILE: set NAME to FILE's content, trimmed.
			"setenvfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: setenvfile NAME FILE")
				}
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
			},
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("NO_COLOR", "1")
			scripts, err := filepath.Abs("../../scripts")
			if err != nil {
				return err
			}
			env.Setenv("KEYBURN_SCRIPTS", scripts)
			// git, for scripts that build repositories: no user or system
			// configuration, a fixed identity and default branch.
			env.Setenv("GIT_CONFIG_NOSYSTEM", "1")
			env.Setenv("GIT_CONFIG_GLOBAL", env.WorkDir+"/.gitconfig")
			env.Setenv("GIT_AUTHOR_NAME", "Alice")
			env.Setenv("GIT_AUTHOR_EMAIL", "alice@example.invalid")
			env.Setenv("GIT_COMMITTER_NAME", "Alice")
			env.Setenv("GIT_COMMITTER_EMAIL", "alice@example.invalid")
			return os.WriteFile(env.WorkDir+"/.gitconfig", []byte("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"), 0o644)
		},
		RequireExplicitExec: true,
	})
}

// cmdExitCode runs a command and checks its exit status:
//
//	exitcode N keyburn ARGS...
//
// (testscript's ! only tells zero from non-zero; keyburn's 1 and 2 differ.)
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N command args...")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// cmdUTF16 writes the text of file SRC as UTF-16 (LE with a byte-order mark,
// or BE with "be") to DST: utf16 [be] SRC DST.
func cmdUTF16(ts *testscript.TestScript, neg bool, args []string) {
	be := len(args) == 3 && args[0] == "be"
	if be {
		args = args[1:]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: utf16 [be] src dst")
	}
	u := utf16.Encode([]rune(ts.ReadFile(args[0])))
	out := []byte{0xFF, 0xFE}
	if be {
		out = []byte{0xFE, 0xFF}
	}
	for _, r := range u {
		if be {
			out = append(out, byte(r>>8), byte(r))
		} else {
			out = append(out, byte(r), byte(r>>8))
		}
	}
	if err := os.WriteFile(ts.MkAbs(args[1]), out, 0o644); err != nil {
		ts.Fatalf("utf16: %v", err)
	}
}

// TestRunUsage checks argument errors without a process.
func TestRunUsage(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{nil, exitError},
		{[]string{"frobnicate"}, exitError},
		{[]string{"scan", "dir"}, exitError},
		{[]string{"dir", "--format", "xml", "."}, exitError},
		{[]string{"dir", "--max-file-size", "lots", "."}, exitError},
		{[]string{"version"}, exitClean},
		{[]string{"github"}, exitError},
		{[]string{"github", "--org", "a", "--user", "b"}, exitError},
		{[]string{"github", "--org", "a", "--shard", "3/2"}, exitError},
		{[]string{"dir", "--respond", "burn", "."}, exitError},
		{[]string{"dir", "--dry-run", "."}, exitError},
	}
	for _, tt := range tests {
		var out, errOut fakeWriter
		if got := run(context.Background(), tt.args, nil, &out, &errOut); got != tt.want {
			t.Errorf("run(%q) = %d, want %d; stderr: %s", tt.args, got, tt.want, errOut)
		}
	}
}

type fakeWriter []byte

func (w *fakeWriter) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
func (w fakeWriter) String() string               { return fmt.Sprintf("%q", []byte(w)) }

// keyburnExe is this test binary under the name "keyburn", which runs the
// CLI as a process of its own (testscript's TestMain).
func keyburnExe(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "keyburn")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, exe); err != nil {
		t.Fatal(err)
	}
	return exe
}

// TestInterrupt sends SIGINT to a scan of standard input that is still open:
// keyburn prints what it found so far, says the scan was partial, and exits 1.
func TestInterrupt(t *testing.T) {
	cmd := exec.Command(keyburnExe(t), "dir", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A key, then more than one chunk (4 MiB) and more than a pipe buffer
	// (64 KiB): once Write returns, keyburn holds the whole first chunk.
	data := []byte("AKIAROSDW5AABZW3VLYZ 5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF\n")
	data = append(data, bytes.Repeat([]byte("filler line of text\n"), (4<<20+128<<10)/20)...)
	if _, err := stdin.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	stdin.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFindings {
		t.Fatalf("keyburn exited with %v, want exit status 1; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "AKIAROSDW5AABZW3VLYZ") {
		t.Errorf("stdout lacks the key found before the interrupt:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "interrupted: partial scan") {
		t.Errorf("stderr does not say the scan was partial:\n%s", stderr.String())
	}
}

// TestControlCharactersEscaped: a file named with a terminal escape (clear
// the screen) and a newline that forges a summary line is printed escaped,
// in the findings and on standard error.
func TestControlCharactersEscaped(t *testing.T) {
	dir := t.TempDir()
	name := "x\x1b[2J\nkeyburn: 0 findings\u202e.env"
	if err := os.WriteFile(filepath.Join(dir, name), []byte("AKIAROSDW5AABZW3VLYZ 5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF\n"), 0o644); err != nil {
		t.Skipf("this file system refuses the name: %v", err)
	}
	if err := os.Symlink("/proc/self/environ", filepath.Join(dir, "y\x1b]0;owned\a")); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"dir", dir}, nil, &out, &errOut)
	if code != exitFindings {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	for what, s := range map[string]string{"stdout": out.String(), "stderr": errOut.String()} {
		if strings.ContainsAny(s, "\x1b\a\u202e") {
			t.Errorf("%s holds a raw control character: %q", what, s)
		}
	}
	if !strings.Contains(out.String(), `x\x1b[2J\x0akeyburn: 0 findings\u202e.env`) || !strings.Contains(errOut.String(), `y\x1b]0;owned\x07`) {
		t.Errorf("the names are not shown escaped:\n%s\n%s", out.String(), errOut.String())
	}
}

// TestArchivesByDefault: with no flag, a small archive (a config bundle) is
// opened and its key found; a large one stays closed and is counted, and
// --archive-depth opens it.
func TestArchivesByDefault(t *testing.T) {
	dir := t.TempDir()
	zipWith := func(name string, members map[string]string) {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for n, body := range members {
			w, _ := zw.Create(n)
			w.Write([]byte(body))
		}
		zw.Close()
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	zipWith("small.zip", map[string]string{"app.env": "AWS_ACCESS_KEY_ID=AKIAH7RH4MBQEQEFGOSL\nAWS_SECRET_ACCESS_KEY=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\n"})
	noise := make([]byte, 100<<10) // incompressible: the zip stays over 64 KiB
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	zipWith("large.zip", map[string]string{"blob.bin": string(noise), "prod.env": "AWS_ACCESS_KEY_ID=AKIASRA42RH62HJWXJNK\n"})
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"dir", dir}, nil, &out, &errOut); code != exitFindings ||
		!strings.Contains(out.String(), "AKIAH7RH4MBQEQEFGOSL") || !strings.Contains(out.String(), "small.zip!app.env") || strings.Contains(out.String(), "AKIASRA42RH62HJWXJNK") {
		t.Fatalf("default: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"dir", "--archive-depth", "1", dir}, nil, &out, &errOut); code != exitFindings ||
		!strings.Contains(out.String(), "AKIASRA42RH62HJWXJNK") {
		t.Errorf("--archive-depth 1: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"dir", "--archive-depth", "0", dir}, nil, &out, &errOut); code != exitClean || out.Len() != 0 {
		t.Errorf("--archive-depth 0: exit %d\n%s", code, out.String())
	}
}

// TestSelfScanClean runs the README's first command, `go run ./cmd/scan
// dir .` from the repository's root: keyburn's own source is clean (exit
// 0), its fixtures held back by its own .keyburn.toml.
func TestSelfScanClean(t *testing.T) {
	t.Chdir("../..")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"dir", "."}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Errorf("scan dir . exited %d, want 0:\n%s%s", code, out.String(), errb.String())
	}
}

// TestSkippedSummary: the summary counts skipped inputs by class, in
// words that agree with the count; the detail is for -v.
func TestSkippedSummary(t *testing.T) {
	u := newUI(io.Discard)
	for range 5 {
		u.Skipped("d", "directory already scanned (symbolic link loop or second link)")
	}
	u.Skipped("a.zip", "archive not readable: zip: not a valid zip file")
	u.Skipped("b.gz", "archive not readable: flate: corrupt input before offset 3")
	u.Skipped("c.tar", "archive: decompressed members over its budget of 16 MiB (a zip bomb?); the rest of it is not scanned")
	u.Skipped("big", "300 bytes, over the 200-byte limit (--max-file-size)")
	u.Skipped("x.png", "compressed (png)")
	u.Skipped("y.jpg", "compressed (jpeg)")
	want := "1 archive read in part, 1 file over the size limit, 2 archives not readable, 2 compressed files, 5 directories already scanned"
	if got := u.skippedSummary(); got != want {
		t.Errorf("summary\n%s\nwant\n%s", got, want)
	}
}

// TestNamedArchiveSkipped: a large .gz named on the command line is not
// opened by default; that is said, with the flag that opens it, and the
// run is not called clean.
func TestNamedArchiveSkipped(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	rng := rand.New(rand.NewPCG(7, 7))
	for range 100 << 10 {
		zw.Write([]byte{byte(rng.Uint32())})
	}
	zw.Close()
	p := filepath.Join(dir, "dump.sql.gz")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"dir", p}, nil, &out, &errb)
	if code != exitError || !strings.Contains(errb.String(), "dump.sql.gz was named but not scanned: compressed (gzip)") ||
		!strings.Contains(errb.String(), "hint: --archive-depth 1 opens") {
		t.Errorf("exit %d\n%s", code, errb.String())
	}
}

// TestScanProgress: off a terminal, a long scan says how far it is every
// progressEvery, in a line of its own.
func TestScanProgress(t *testing.T) {
	old := progressEvery
	progressEvery = 5 * time.Millisecond
	defer func() { progressEvery = old }()
	var errb syncWriter
	u := newUI(&errb)
	var files, bytes atomic.Int64
	files.Store(3)
	bytes.Store(3 << 20)
	stop := scanProgress(u, "reading files", "files", &files, &bytes)
	for range 200 {
		if strings.Contains(errb.String(), "so far") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if !strings.Contains(errb.String(), "keyburn: reading files: 3 files (3.0 MiB) so far\n") {
		t.Errorf("progress: %q", errb.String())
	}
}

// syncWriter is a strings.Builder safe for a goroutine and the test.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
