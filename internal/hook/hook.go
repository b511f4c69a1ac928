// Package hook is keyburn-hook, the pre-commit hook's lean entry. A commit
// hook runs on every commit and must answer in milliseconds, but keyburn
// spends most of that starting: the AWS SDK, SQLite and go-git initialise
// themselves although a clean commit needs none of them. keyburn-hook links
// only the detector and the rules. It lists the staged files as keyburn
// does (git diff-index), loads the same rules (configfile), reads the
// staged blobs itself, and answers only when the answer is certain to be
// keyburn's too: every staged file is text in which the detector, decoding
// as thoroughly as keyburn ever does, finds no key ID, secret or encoded
// run that decodes to one. Anything else (a candidate, a binary, an archive,
// a large file, a packed blob, a config with a problem, any flag) is handed
// to keyburn unchanged, which answers as it always does: findings, baseline,
// hints, exit code.
package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/keyburn/keyburn/internal/buildinfo"
	"github.com/keyburn/keyburn/internal/configfile"
	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/diffindex"
)

// Main runs keyburn-hook as a process.
func Main() {
	os.Exit(Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Run is keyburn-hook without the process: `keyburn-hook [[scan] staged]
// [PATH]` is answered here when clean; everything else is keyburn's.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "version" || args[0] == "--version") {
		fmt.Fprintln(stdout, "keyburn-hook", buildinfo.Version())
		return 0
	}
	if path, ok := stagedArgs(args); ok {
		if summary, clean := Clean(ctx, path); clean {
			fmt.Fprintln(stderr, summary)
			return 0
		}
	}
	if len(args) == 0 {
		args = []string{"scan", "staged"}
	}
	return delegate(ctx, args, stdin, stdout, stderr)
}

// stagedArgs accepts the forms the hooks use: nothing, "staged" or "scan
// staged", then at most one path and no flag.
func stagedArgs(args []string) (path string, ok bool) {
	switch {
	case len(args) >= 2 && args[0] == "scan" && args[1] == "staged":
		args = args[2:]
	case len(args) >= 1 && args[0] == "staged":
		args = args[1:]
	case len(args) == 0:
	default:
		return "", false
	}
	switch {
	case len(args) == 0:
		return ".", true
	case len(args) == 1 && args[0] != "" && !strings.HasPrefix(args[0], "-"):
		return args[0], true
	}
	return "", false
}

// Clean reports whether the staged changes of the repository at path are
// certainly clean for keyburn scan staged: nothing found, skipped or
// wrong. When they are, summary is the line keyburn prints for it.
func Clean(ctx context.Context, path string) (summary string, clean bool) {
	start := time.Now()
	var heard listener
	l, err := configfile.Load("", path, &heard)
	if err != nil || heard.said() {
		return "", false
	}
	limit, ok := maxFileSize(l.Set.Scan.MaxFileSize)
	if !ok {
		return "", false
	}
	depth := defaultDecodeDepth
	if d := l.Set.Scan.DecodeDepth; d != nil && *d > depth {
		depth = *d
	}
	repo, err := openRepo(path)
	if err != nil {
		return "", false
	}
	files, err := diffindex.Staged(ctx, path, repo.hasHead())
	if err != nil {
		return "", false
	}
	m := detect.New(l.Set)
	var bytes int64
	for _, f := range files {
		data, ok := repo.looseBlob(f.Blob, limit)
		if !ok || !plainText(data) || Dirty(m, data, depth) {
			return "", false
		}
		bytes += int64(len(data))
	}
	return fmt.Sprintf("keyburn: 0 findings in %d file%s (%s) in %s", len(files), plural(len(files)),
		humanize.IBytes(uint64(bytes)), time.Since(start).Round(time.Millisecond)), true
}

// defaultDecodeDepth is the engine's default decoding depth
// (engine.DefaultDecodeDepth; a test checks that they agree).
const defaultDecodeDepth = 2

// maxFileSize is [scan] max_file_size, or keyburn's default.
func maxFileSize(s string) (int64, bool) {
	if s == "" {
		s = "256MiB"
	}
	n, err := humanize.ParseBytes(s)
	return int64(n), err == nil && n > 0
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Dirty reports whether keyburn's engine could find anything in text:
// a candidate key, a secret named as an AWS secret (in any file, where
// keyburn looks only in configuration), or an encoded run (any, where
// keyburn decodes every run only in configuration) whose decoding, depth
// layers deep, holds either. It errs only towards true.
func Dirty(m *detect.Matcher, text []byte, depth int) bool {
	c := detect.Whole(text)
	if cands, _ := m.ScanIDs(c); len(cands) > 0 {
		return true
	}
	if len(m.LoneSecrets(text)) > 0 {
		return true
	}
	if depth <= 0 {
		return false
	}
	encs := m.Encoded(c, true)
	if len(encs) == 0 {
		return false
	}
	var doc bytes.Buffer
	for _, e := range encs {
		if e.Name != "" {
			doc.WriteString(e.Name + ": ")
		}
		doc.Write(e.Data)
		doc.WriteByte('\n')
	}
	return Dirty(m, doc.Bytes(), depth-1)
}

// plainText reports whether data is text keyburn reads as it is: no NUL
// anywhere (a binary, or UTF-16: keyburn reads those otherwise), no byte
// order mark, no archive, image or compressed format.
func plainText(data []byte) bool {
	if bytes.IndexByte(data, 0) >= 0 || bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) {
		return false
	}
	for _, magic := range []string{"PK\x03\x04", "PK\x05\x06", "\x1f\x8b", "BZh", "\xfd7zXZ", "\x28\xb5\x2f\xfd", "\x89PNG", "\xff\xd8\xff", "GIF8"} {
		if bytes.HasPrefix(data, []byte(magic)) {
			return false
		}
	}
	return len(data) < 262 || string(data[257:262]) != "ustar"
}

// listener hears loading: anything said at all means the answer is
// keyburn's to give.
type listener struct {
	mu   sync.Mutex
	told bool
}

func (l *listener) said() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.told
}

func (l *listener) hear() {
	l.mu.Lock()
	l.told = true
	l.mu.Unlock()
}

func (l *listener) Debugf(string, ...any)   {}
func (l *listener) Warnf(string, ...any)    { l.hear() }
func (l *listener) Problemf(string, ...any) { l.hear() }

// delegate runs keyburn with the same arguments and returns its exit
// status. Without keyburn it fails closed: exit 2, which blocks the commit.
func delegate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	full, err := fullCommand()
	if err != nil {
		fmt.Fprintf(stderr, "keyburn-hook: %v; it gives the answer for these staged changes (go install github.com/keyburn/keyburn/cmd/keyburn@latest)\n", err)
		return 2
	}
	cmd := exec.CommandContext(ctx, full, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	case err != nil:
		fmt.Fprintf(stderr, "keyburn-hook: run %s: %v\n", full, err)
		return 2
	}
	return 0
}

// fullCommand finds keyburn: $KEYBURN (the hook scripts set it), else the
// keyburn beside this binary, else keyburn on PATH (never in the current
// directory: exec.LookPath refuses that).
func fullCommand() (string, error) {
	if k := os.Getenv("KEYBURN"); k != "" {
		return exec.LookPath(k)
	}
	name := "keyburn"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	p, err := exec.LookPath("keyburn")
	if err != nil {
		return "", errors.New("keyburn is installed neither beside keyburn-hook nor on PATH")
	}
	return p, nil
}
