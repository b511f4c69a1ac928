// Package ghrepo names GitHub repositories safely. A repository's full name
// comes from a webhook payload, a queue message or an API answer, all
// hostile: it is checked against GitHub's own rules before it becomes a
// directory, an API path or a clone URL, and the clone URL is built from the
// name and the host the operator configured — never taken from the payload.
package ghrepo

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Name is a validated owner/repository pair.
type Name struct {
	Owner, Repo string
}

// GitHub's rules: an owner (user or organisation) is 1–39 characters of
// letters, digits and single hyphens, not starting or ending with a hyphen;
// a repository name is 1–100 characters of letters, digits, '.', '-' and
// '_', and is neither "." nor "..".
// The patterns are compiled when first used: at start-up they cost every
// run of the CLI a third of a millisecond, the pre-commit hook's included.
var (
	ownerRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)
	})
	repoRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`) })
)

// Parse checks a full name ("owner/repo").
func Parse(fullName string) (Name, error) {
	owner, repo, ok := strings.Cut(fullName, "/")
	switch {
	case !ok:
		return Name{}, fmt.Errorf("repository %q: want owner/name", fullName)
	case !ownerRE().MatchString(owner):
		return Name{}, fmt.Errorf("repository %q: %q is not a GitHub owner name", fullName, owner)
	case repo == "." || repo == ".." || !repoRE().MatchString(repo) || strings.HasSuffix(strings.ToLower(repo), ".git"):
		return Name{}, fmt.Errorf("repository %q: %q is not a GitHub repository name", fullName, repo)
	}
	return Name{Owner: owner, Repo: repo}, nil
}

// String is the full name.
func (n Name) String() string { return n.Owner + "/" + n.Repo }

// Host is the GitHub the operator configured: where repositories are
// cloned from, and the only host a token is sent to.
type Host struct {
	// Git is the base URL of clone URLs: https://github.com, or a GitHub
	// Enterprise server.
	Git *url.URL
}

// DefaultGit is github.com's clone base.
const DefaultGit = "https://github.com"

// NewHost checks a clone base URL: https, or http only on a loopback
// address (a test server).
func NewHost(base string) (Host, error) {
	if base == "" {
		base = DefaultGit
	}
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Host{}, fmt.Errorf("GitHub URL %q: want https://HOST[/PATH]", base)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return Host{}, fmt.Errorf("GitHub URL %q: only https (or http on loopback) carries a token", base)
	}
	return Host{Git: u}, nil
}

// HostForAPI derives the clone base from a GitHub Enterprise API URL
// (https://ghe.example.com/api/v3 → https://ghe.example.com); empty:
// github.com.
func HostForAPI(api string) (Host, error) {
	if api == "" {
		return NewHost("")
	}
	u, err := url.Parse(api)
	if err != nil {
		return Host{}, fmt.Errorf("GitHub API URL %q: %w", api, err)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v3")
	return NewHost(u.String())
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// CloneURL is the repository's clone URL on the host.
func (h Host) CloneURL(n Name) string {
	return h.Git.String() + "/" + n.Owner + "/" + n.Repo + ".git"
}

// Owners limits the owners keyburn acts for; empty allows every owner.
type Owners []string

// Allows reports whether owner is allowed (GitHub's names are not case
// sensitive).
func (o Owners) Allows(owner string) bool {
	return len(o) == 0 || slices.ContainsFunc(o, func(a string) bool { return strings.EqualFold(a, owner) })
}
