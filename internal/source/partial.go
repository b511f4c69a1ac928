package source

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// PartialClone reports whether the repository is a partial clone (git
// clone --filter=…): its history may name blobs it does not hold.
func (r *Repo) PartialClone() bool {
	cfg, err := r.R.Config()
	if err != nil {
		return false
	}
	if cfg.Raw.Section("extensions").Option("partialclone") != "" {
		return true
	}
	for _, rs := range cfg.Raw.Section("remote").Subsections {
		if rs.Option("promisor") == "true" || rs.Option("partialclonefilter") != "" {
			return true
		}
	}
	return false
}

// maxMissingListed bounds the absent objects MissingObjects returns (the
// count is exact).
const maxMissingListed = 10000

// MissingObjects lists the objects the history names but the repository
// does not hold (a partial clone's blobs left on the server), with git
// rev-list --missing=print; it never fetches them. It needs git, and is run
// only for a partial clone: it walks every tree.
func (r *Repo) MissingObjects(ctx context.Context) (count int, listed []string, err error) {
	cmd := exec.CommandContext(ctx, "git", "-C", r.Path, "rev-list", "--objects", "--all", "--missing=print", "--no-object-names")
	cmd.Env = append(cmd.Environ(), "GIT_NO_LAZY_FETCH=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("git rev-list: %w", err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if h, ok := strings.CutPrefix(sc.Text(), "?"); ok {
			count++
			if len(listed) < maxMissingListed {
				listed = append(listed, h)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return count, listed, fmt.Errorf("git rev-list --missing=print: %w", err)
	}
	return count, listed, sc.Err()
}
