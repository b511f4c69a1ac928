package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// commands are the scan subcommands, for completion.
var commands = []string{"dir", "git", "staged", "install-hook", "github", "aws-notices", "audit"}

const completionUsage = `usage: keyburn completion bash|zsh

Prints a shell completion script for commands and flags. For bash:
    source <(keyburn completion bash)
or save it as ~/.local/share/bash-completion/completions/keyburn. zsh loads
the same script through bashcompinit.
`

// completionScript asks keyburn itself for the words, so completion stays
// in step with the code.
const completionScript = `# keyburn shell completion (keyburn completion bash)
_keyburn() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  COMPREPLY=($(compgen -W "$(keyburn __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}")" -- "$cur"))
  [ ${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _keyburn keyburn
`

func runCompletion(args []string, stdout io.Writer) (int, error) {
	if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh") {
		fmt.Fprint(stdout, completionUsage)
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			return exitClean, nil
		}
		return exitError, fmt.Errorf("completion: want bash or zsh")
	}
	script := completionScript
	if args[0] == "zsh" {
		script = "autoload -U +X bashcompinit && bashcompinit\n" + script
	}
	fmt.Fprint(stdout, script)
	return exitClean, nil
}

var flagRE = regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)`)

// completeWords lists what may come after the words typed so far: the
// commands, or the flags of the command named (read from its own --help).
func completeWords(words []string) []string {
	var cmd string
	for _, w := range words {
		if w == "scan" {
			continue
		}
		if !strings.HasPrefix(w, "-") {
			cmd = w
			break
		}
	}
	if cmd == "" {
		return append([]string{"scan", "version", "help", "completion"}, commands...)
	}
	var out bytes.Buffer
	if run(context.Background(), []string{"scan", cmd, "--help"}, nil, &out, io.Discard) != exitClean {
		return nil
	}
	var flags []string
	for _, m := range flagRE.FindAllStringSubmatch(out.String(), -1) {
		flags = append(flags, m[1])
	}
	sort.Strings(flags)
	return slices.Compact(flags)
}
