// Package cli is the keyburn command: it finds leaked AWS access keys,
// verifies them and acts on the live ones. cmd/keyburn is the binary
// (`go install …/cmd/keyburn` names it keyburn); cmd/scan is the same
// command under the clone's short path, for `go run ./cmd/scan dir .`.
// See usage.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"

	"github.com/keyburn/keyburn/internal/buildinfo"
)

const usage = `keyburn finds leaked AWS access keys, proves whether they are live, and kills the live ones.

Usage:
    keyburn scan dir PATH...      scan files and directories ("-" reads standard input)
    keyburn scan git [PATH]       scan a repository's whole history (or --range A..B)
    keyburn scan staged [PATH]    scan the staged changes (the pre-commit hook)
    keyburn scan install-hook     install the pre-commit hook (--pre-push: and pre-push)
    keyburn scan github --org ORG every repository of an organisation (or --user USER)
    keyburn scan aws-notices --queue URL   act on AWS's own exposed-key notices (AWS Health)
    keyburn scan audit            print the audit log of actions taken on keys
    keyburn version               print the version
    keyburn completion bash|zsh   print a shell completion script

    ("keyburn dir PATH" works too: the word "scan" is optional.)

Common flags (before or after the paths; every command has --help):
    --format text|json|jsonl|sarif   output format (default text)
    --output FILE                    write results to FILE instead of standard output
    --config FILE                    rules file extending the defaults
                                     (default: .keyburn.toml in the scanned directory)
    --baseline FILE                  accepted findings: a JSON report or a list of fingerprints
    --show-secret                    print secrets in full (never in SARIF)
    --concurrency N                  files scanned at once (default 2 × CPUs)
    --max-file-size SIZE             skip larger files (default 256MiB)
    -v, --verbose                    say more on standard error
    --verify                         prove each pair live or not (sts:GetCallerIdentity)
    --respond off|deactivate|delete|rotate
                                     act on live keys (implies --verify); --dry-run records only;
                                     rotate: a replacement in Secrets Manager first, then delete
    --soak DURATION                  with --respond=delete: deactivate now, delete once due
    --aws-endpoint URL               STS and IAM endpoint (default AWS's)
    --state FILE                     verdict cache and audit log (default ~/.local/state/keyburn/state.db)
    --decode-depth N                 layers of base64/percent-encoding decoded (default 2)
    --skip-binaries                  leave binary files out (default: their strings are scanned)
    --archive-depth N                open zip, jar, tar and gzip archives to this depth (default:
                                     those of 64 KiB or less, to depth 2, not in a whole history)

Examples:
    keyburn scan dir .
    keyburn scan dir --format sarif --output keyburn.sarif src/ config/
    cat app.env | keyburn scan dir -

Exit status: 0 nothing found, 1 findings, 2 error (or an incomplete scan that found nothing).
`

// version is keyburn's version (buildinfo says where it comes from).
var version = buildinfo.Version()

// Exit codes.
const (
	exitClean    = 0
	exitFindings = 1
	exitError    = 2
)

// Main runs keyburn as a process: os.Args in, os.Exit out.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// KEYBURN_CPUPROFILE=FILE writes a CPU profile, for work on speed.
	if p := os.Getenv("KEYBURN_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	pprof.StopCPUProfile()
	os.Exit(code)
}

// run is keyburn without the process: arguments in, exit code out.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ui := newUI(stderr)
	args = commandFirst(args)
	if len(args) > 0 && args[0] == "scan" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	var err error
	code := exitClean
	switch args[0] {
	case "dir":
		code, err = runDir(ctx, args[1:], stdin, stdout, ui)
	case "git":
		code, err = runGit(ctx, args[1:], stdout, ui)
	case "staged":
		code, err = runStaged(ctx, args[1:], stdout, ui)
	case "install-hook":
		code, err = runInstallHook(args[1:], stdout, ui)
	case "audit":
		code, err = runAudit(ctx, args[1:], stdout, ui)
	case "github":
		code, err = runOrg(ctx, args[1:], stdout, ui)
	case "aws-notices":
		code, err = runNotices(ctx, args[1:], stdout, ui)
	case "completion":
		code, err = runCompletion(args[1:], stdout)
	case "__complete":
		fmt.Fprintln(stdout, strings.Join(completeWords(args[1:]), " "))
	case "version":
		fmt.Fprintln(stdout, "keyburn", version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		ui.errorf("unknown command %q", args[0])
		if near := nearest(args[0], append(slices.Clone(commands), topCommands...)); near != "" {
			ui.hint("did you mean 'keyburn scan %s'?", near)
		}
		ui.hint("run 'keyburn help' for the commands")
		return exitError
	}
	switch {
	case errors.Is(err, errHelp):
		return exitClean
	case err != nil:
		if !errors.Is(err, errUsage) {
			ui.errorf("%v", err)
		}
		return exitError
	}
	return code
}

// errUsage marks a usage error already explained; errHelp, help asked for
// and given.
var (
	errUsage = errors.New("usage")
	errHelp  = errors.New("help")
)

// topCommands are the words run dispatches on besides the scan commands.
var topCommands = []string{"completion", "version", "help"}

// isCommand reports whether w names a command.
func isCommand(w string) bool { return slices.Contains(commands, w) || slices.Contains(topCommands, w) }

// commandFirst moves flags typed before the command after it, where the
// command's own flag set reads them: "--format jsonl scan dir ." is
// "scan dir --format jsonl .". The command is the first word that names
// one; arguments before it are left as they were when none does.
func commandFirst(args []string) []string {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") || slices.Contains([]string{"-h", "-help", "--help"}, args[0]) {
		return args
	}
	for i, a := range args {
		if a != "scan" && !isCommand(a) {
			continue
		}
		j := i + 1
		if a == "scan" && j < len(args) && isCommand(args[j]) {
			j++
		}
		out := append(append([]string{}, args[i:j]...), args[:i]...)
		return append(out, args[j:]...)
	}
	return args
}

// nearest returns the word of words within two edits of w (the closest),
// or "".
func nearest(w string, words []string) string {
	best, dist := "", 3
	for _, c := range words {
		if d := editDistance(w, c); d < dist {
			best, dist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
