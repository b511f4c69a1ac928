// Package ghpush reads GitHub push events: the fields keyburn uses, checked
// as the hostile input they are. It keeps no URL from the payload (clone
// URLs are built from the repository's name and the configured host, see
// ghrepo) and no installation ID (the installation is looked up).
package ghpush

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/keyburn/keyburn/internal/ghrepo"
)

// Push is the part of a push payload keyburn reads. before and after are
// the truth; commits[] is neither complete (GitHub stops at 20) nor needed
// for the range, but names the pushed commits to fetch by SHA.
type Push struct {
	Ref        string     `json:"ref"`
	Before     string     `json:"before"`
	After      string     `json:"after"`
	Created    bool       `json:"created"`
	Deleted    bool       `json:"deleted"`
	Forced     bool       `json:"forced"`
	Repository Repository `json:"repository"`
	Commits    []Commit   `json:"commits,omitempty"`
}

// Repository is the pushed repository.
type Repository struct {
	FullName      string `json:"full_name"`
	DefaultBranch string `json:"default_branch"`
}

// Commit is a commit the push lists.
type Commit struct {
	ID string `json:"id"`
}

// Zero is the SHA of "no commit": before of a new ref, after of a deleted one.
const Zero = "0000000000000000000000000000000000000000"

// maxCommits bounds the commits kept from a payload: GitHub lists at most
// 20; more is not GitHub.
const maxCommits = 20

var (
	shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
	// refRE: a ref as git allows it, without the sequences git refuses
	// (checked below) — it becomes part of a range, never a path.
	refRE = regexp.MustCompile(`^refs/[A-Za-z0-9._/+-]{1,250}$`)
)

// ErrNotPush is wrapped by Parse's errors: the payload is not a usable push.
var ErrNotPush = errors.New("not a usable push")

// Parse reads and checks a push payload.
func Parse(body []byte) (Push, ghrepo.Name, error) {
	var p Push
	if err := json.Unmarshal(body, &p); err != nil {
		return Push{}, ghrepo.Name{}, fmt.Errorf("%w: malformed JSON: %v", ErrNotPush, err)
	}
	name, err := p.Check()
	return p, name, err
}

// Check validates a push read from elsewhere (the queue) and returns its
// repository's name.
func (p *Push) Check() (ghrepo.Name, error) {
	name, err := ghrepo.Parse(p.Repository.FullName)
	if err != nil {
		return ghrepo.Name{}, fmt.Errorf("%w: %v", ErrNotPush, err)
	}
	if !refRE.MatchString(p.Ref) || strings.Contains(p.Ref, "..") || strings.Contains(p.Ref, "//") {
		return ghrepo.Name{}, fmt.Errorf("%w: ref %q", ErrNotPush, p.Ref)
	}
	if !shaRE.MatchString(p.Before) || !shaRE.MatchString(p.After) {
		return ghrepo.Name{}, fmt.Errorf("%w: before and after must be commit SHAs", ErrNotPush)
	}
	if p.Repository.DefaultBranch != "" && !refRE.MatchString("refs/heads/"+p.Repository.DefaultBranch) {
		p.Repository.DefaultBranch = "" // unusable: treated as unknown
	}
	var kept []Commit
	for _, c := range p.Commits {
		if shaRE.MatchString(c.ID) && len(kept) < maxCommits {
			kept = append(kept, c)
		}
	}
	p.Commits = kept
	return name, nil
}

// Wants are the commits to have in the mirror: after, and those listed.
func (p Push) Wants() []string {
	if p.After == Zero {
		return nil
	}
	out := []string{p.After}
	for _, c := range p.Commits {
		if c.ID != p.After {
			out = append(out, c.ID)
		}
	}
	return out
}

// DedupeKey names what a push did: the same push delivered again under
// another delivery ID (a replay) has the same key.
func (p Push) DedupeKey() string {
	return "push " + strings.ToLower(p.Repository.FullName) + " " + p.Ref + " " + p.Before + " " + p.After
}
