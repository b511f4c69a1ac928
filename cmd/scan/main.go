// Command keyburn finds leaked AWS access keys.
//
// Run it as `go run ./cmd/scan dir .` or build it as keyburn. See usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
)

const usage = `keyburn finds leaked AWS access keys, proves whether they are live, and kills the live ones.

Usage:
    keyburn scan dir PATH...      scan files and directories ("-" reads standard input)
    keyburn scan git [PATH]       scan a repository's whole history (or --range A..B)
    keyburn scan staged [PATH]    scan the staged changes (the pre-commit hook)
    keyburn scan install-hook     install the pre-commit hook (--pre-push: and pre-push)
    keyburn scan github --org ORG every repository of an organisation (or --user USER)
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
    --respond off|deactivate|delete  act on live keys (implies --verify); --dry-run records only
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

// version is set at build time with -ldflags "-X main.version=…" (the
// release script does); otherwise it comes from the build information:
// the module version of "go install …@v1.2.3", or the commit built from.
var version = ""

func init() {
	if version == "" {
		version = buildVersion()
	}
}

// buildVersion reads the version from the binary's build information.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return "dev"
	}
	return "dev-" + rev + modified
}

// Exit codes.
const (
	exitClean    = 0
	exitFindings = 1
	exitError    = 2
)

func main() {
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
