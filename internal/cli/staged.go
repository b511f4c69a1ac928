package cli

import (
	"context"
	"errors"
	"fmt"
	flag "github.com/spf13/pflag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
)

const stagedUsage = `usage: keyburn scan staged [flags] [PATH]

Scans what the next commit would add: the staged files that differ from HEAD
(the index against HEAD's tree; nothing in the work tree is hashed). This is
the pre-commit hook: exit 1 blocks the commit.

Flags:
`

func runStaged(ctx context.Context, args []string, stdout io.Writer, u *ui) (int, error) {
	var c common
	fs := flag.NewFlagSet("staged", flag.ContinueOnError)
	c.register(fs)
	if err := parseFlags(fs, args, u, stagedUsage, stdout); err != nil {
		return exitError, err
	}
	path := "."
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	} else if fs.NArg() > 1 {
		fs.Usage()
		return exitError, errors.New("scan staged takes one repository")
	}
	s, err := c.resolve(ctx, u, path)
	if err != nil {
		return exitError, err
	}
	scan := func(ctx context.Context) (*engine.Result, error) {
		return engine.ScanStaged(ctx, s.opts, path, s.opts.FS.MaxFileSize, u)
	}
	return c.run(ctx, u, s, stdout, scan, c.failingSink(func(fs []*finding.Finding) {
		if len(fs) > 0 {
			files := map[string]bool{}
			for _, f := range fs {
				for _, l := range f.Locations {
					files[l.File] = true
					if l.SecretFile != "" {
						files[l.SecretFile] = true
					}
				}
			}
			var names []string
			for f := range files {
				names = append(names, f)
			}
			sort.Strings(names)
			switch runBy() {
			case "pre-commit":
				u.printf("commit blocked: the staged changes add an AWS key")
			case "pre-commit framework":
				u.printf("commit blocked (keyburn hook): the staged changes add an AWS key")
			default:
				u.printf("the staged changes add an AWS key")
			}
			u.hint("take it out of the commit: remove it from the file and 'git add' the file again,")
			u.hint("  or unstage the file: git restore --staged %s", strings.Join(names, " "))
			u.hint("  (before the first commit: git rm --cached %s)", strings.Join(names, " "))
			u.hint("rotate the key anyway: it has been on disk in plain text (editor backups, sync tools,")
			u.hint("  shell history) and may be in an earlier commit; deleting it from the file does not make it secret again")
			u.hint("a test key that is not real can be accepted with a 'keyburn:allow' comment on its line")
			switch runBy() {
			case "pre-commit":
				u.hint("to commit anyway, only for a key that is not real (a test key): git commit --no-verify")
			case "pre-commit framework":
				u.hint("to commit anyway, only for a key that is not real (a test key): SKIP=keyburn git commit")
			}
		}
	}))
}

// runBy says which hook runs keyburn: "pre-commit" or "pre-push" (the
// hooks install-hook writes set KEYBURN_HOOK), "pre-commit framework"
// (it sets PRE_COMMIT=1), or "" by hand.
func runBy() string {
	if h := os.Getenv("KEYBURN_HOOK"); h == "pre-commit" || h == "pre-push" {
		return h
	}
	if os.Getenv("PRE_COMMIT") == "1" {
		return "pre-commit framework"
	}
	return ""
}

const installUsage = `usage: keyburn scan install-hook [--pre-push] [PATH]

Installs keyburn as the repository's pre-commit hook (and, with --pre-push,
as its pre-push hook, which scans the pushed range). Running it again is
harmless. A hook already there is kept and run first.
`

// hookMarker identifies a hook keyburn wrote.
const hookMarker = "# keyburn-hook v1"

func runInstallHook(args []string, stdout io.Writer, u *ui) (int, error) {
	fs := flag.NewFlagSet("install-hook", flag.ContinueOnError)
	prePush := fs.Bool("pre-push", false, "install the pre-push hook too")
	if err := parseFlags(fs, args, u, installUsage, stdout); err != nil {
		return exitError, err
	}
	path := "."
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	dir, err := hooksDir(path)
	if err != nil {
		return exitError, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return exitError, fmt.Errorf("create hooks directory: %w", err)
	}
	self := "keyburn"
	if exe, err := os.Executable(); err == nil && !strings.Contains(exe, "go-build") {
		self = exe
	}
	hooks := map[string]string{"pre-commit": preCommitHook}
	if *prePush {
		hooks["pre-push"] = prePushHook
	}
	for _, name := range []string{"pre-commit", "pre-push"} {
		body, ok := hooks[name]
		if !ok {
			continue
		}
		// keyburn-hook is looked for beside this binary only by an
		// absolute path: never relative to the repository the hook runs in.
		beside := ""
		if filepath.IsAbs(self) {
			beside = filepath.Join(filepath.Dir(self), "keyburn-hook")
		}
		body = strings.ReplaceAll(body, "@KEYBURN@", shellQuote(self))
		body = strings.ReplaceAll(body, "@KEYBURNHOOK@", shellQuote(beside))
		msg, err := installHook(dir, name, body)
		if err != nil {
			return exitError, err
		}
		u.printf("%s", msg)
	}
	return exitClean, nil
}

// hooksDir finds the hooks directory: git's own answer when git is
// installed (it knows core.hooksPath and worktrees), else .git/hooks.
func hooksDir(path string) (string, error) {
	if out, err := exec.Command("git", "-C", path, "rev-parse", "--path-format=absolute", "--git-path", "hooks").Output(); err == nil {
		return strings.TrimSpace(string(out)), nil
	}
	repo, err := source.OpenRepo(path)
	if err != nil {
		return "", err
	}
	defer repo.Close()
	gitDir, err := repo.GitDir()
	if err != nil {
		return "", fmt.Errorf("install hooks: %w", err)
	}
	return filepath.Join(gitDir, "hooks"), nil
}

// installHook writes hook name in dir. A hook keyburn wrote is replaced; any
// other is moved aside to NAME.keyburn-previous and run first by ours.
func installHook(dir, name, body string) (string, error) {
	p := filepath.Join(dir, name)
	old, err := os.ReadFile(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("read hook: %w", err)
	case strings.Contains(string(old), hookMarker):
		if string(old) == body {
			return fmt.Sprintf("%s hook already installed in %s", name, dir), nil
		}
	default:
		prev := p + ".keyburn-previous"
		if _, err := os.Stat(prev); err == nil {
			return "", fmt.Errorf("install %s hook: %s exists and so does %s; merge them by hand", name, p, prev)
		}
		if err := os.Rename(p, prev); err != nil {
			return "", fmt.Errorf("install %s hook: keep the existing hook: %w", name, err)
		}
		if err := os.Chmod(prev, 0o755); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		return "", fmt.Errorf("install %s hook: %w", name, err)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		return "", err
	}
	return fmt.Sprintf("installed the %s hook in %s", name, dir), nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

const preCommitHook = `#!/bin/sh
` + hookMarker + `
# Blocks commits that add AWS access keys. Installed by 'keyburn scan install-hook'.
prev="$0.keyburn-previous"
if [ -x "$prev" ]; then "$prev" "$@" || exit $?; fi
KEYBURN=${KEYBURN:-keyburn}
command -v "$KEYBURN" >/dev/null 2>&1 || KEYBURN=@KEYBURN@
export KEYBURN
# keyburn-hook, keyburn's lean twin, answers a clean commit in a few
# milliseconds and hands anything else to keyburn.
HOOK=$(command -v keyburn-hook 2>/dev/null) || HOOK=@KEYBURNHOOK@
if [ -x "$HOOK" ]; then KEYBURN_HOOK=pre-commit exec "$HOOK" scan staged; fi
KEYBURN_HOOK=pre-commit exec "$KEYBURN" scan staged
`

const prePushHook = `#!/bin/sh
` + hookMarker + `
# Blocks pushes that add AWS access keys. Installed by 'keyburn scan install-hook --pre-push'.
# git hands the pushed refs on standard input: the previous hook (git-lfs's
# reads them too) and keyburn each get their own copy.
refs=$(cat)
prev="$0.keyburn-previous"
if [ -x "$prev" ]; then printf '%s\n' "$refs" | "$prev" "$@" || exit $?; fi
KEYBURN=${KEYBURN:-keyburn}
command -v "$KEYBURN" >/dev/null 2>&1 || KEYBURN=@KEYBURN@
zero=0000000000000000000000000000000000000000
status=0
while read -r local_ref local_sha remote_ref remote_sha; do
  [ -z "$local_sha" ] && continue
  [ "$local_sha" = "$zero" ] && continue          # a deletion adds nothing
  if [ "$remote_sha" = "$zero" ]; then range="$zero..$local_sha"   # a new branch: what no other ref has
  else range="$remote_sha..$local_sha"; fi
  KEYBURN_HOOK=pre-push "$KEYBURN" scan git --range "$range" || status=$?
done <<EOF
$refs
EOF
exit $status
`
