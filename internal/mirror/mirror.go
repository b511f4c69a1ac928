// Package mirror keeps bare copies of remote repositories, with go-git: the
// first fetch creates the mirror, later ones bring only what is new. Branches
// and tags are fetched; a force-pushed ref is followed.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Rewrite replaces a URL prefix, as git's url.<base>.insteadOf does: a
// mirror, a proxy, or a test server in place of github.com.
type Rewrite struct{ From, To string }

// ParseRewrite parses FROM=TO.
func ParseRewrite(s string) (Rewrite, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return Rewrite{}, fmt.Errorf("--git-url-rewrite %q: want FROM=TO", s)
	}
	return Rewrite{from, to}, nil
}

// Apply rewrites u with the first rule that matches.
func Apply(rules []Rewrite, u string) string {
	for _, r := range rules {
		if strings.HasPrefix(u, r.From) {
			return r.To + strings.TrimPrefix(u, r.From)
		}
	}
	return u
}

// Path is the mirror directory of a repository named owner/name under root.
func Path(root, fullName string) string {
	return filepath.Join(root, filepath.FromSlash(fullName)+".git")
}

// Fetch brings dir up to date with the repository at u (http, https or
// file), creating the mirror the first time. token, when set, authenticates
// as GitHub expects (x-access-token).
func Fetch(ctx context.Context, dir, u, token string) error {
	if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http" && pu.Scheme != "file") {
		return fmt.Errorf("clone URL %q: only http(s) and file URLs are fetched", u)
	}
	var auth transport.AuthMethod
	if token != "" {
		auth = &githttp.BasicAuth{Username: "x-access-token", Password: token}
	}
	specs := []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return err
		}
		repo, err = git.PlainInit(dir, true)
		if err != nil {
			return fmt.Errorf("create mirror %s: %w", dir, err)
		}
		if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{u}, Fetch: specs}); err != nil {
			return fmt.Errorf("create mirror %s: %w", dir, err)
		}
	} else if err != nil {
		return fmt.Errorf("open mirror %s: %w", dir, err)
	}
	err = repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RemoteURL: u, RefSpecs: specs, Auth: auth, Force: true, Tags: git.AllTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return fmt.Errorf("fetch %s: %w", u, err)
	}
	return nil
}
