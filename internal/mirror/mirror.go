// Package mirror keeps bare copies of remote repositories, with go-git: the
// first fetch creates the mirror, later ones bring only what is new.
// Branches and tags are fetched, a force-pushed ref is followed, and commits
// asked for by SHA are fetched even when no ref points at them any more (a
// key pushed, then force-pushed away, stays fetchable by its SHA).
//
// Mirrors hold private code and leaked secrets: directories are 0700 and
// files 0600. One fetch at a time per mirror (a lock file beside it, which
// also holds between processes); a new mirror is built in a temporary
// directory and renamed into place, so a crash never leaves half a mirror.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/keyburn/keyburn/internal/source"
)

// Rewrite replaces a URL prefix, as git's url.<base>.insteadOf does: a
// mirror, a proxy, or a test server in place of github.com. Rewrites are
// the operator's: the only way a clone URL leaves the configured host.
type Rewrite struct{ From, To string }

// ParseRewrite parses FROM=TO, where TO is an http(s) URL.
func ParseRewrite(s string) (Rewrite, error) {
	from, to, ok := strings.Cut(s, "=")
	if !ok || from == "" || to == "" {
		return Rewrite{}, fmt.Errorf("--git-url-rewrite %q: want FROM=TO", s)
	}
	if u, err := url.Parse(to); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Rewrite{}, fmt.Errorf("--git-url-rewrite %q: TO must be an http or https URL", s)
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
// The name must have been validated (ghrepo.Parse): it becomes a path.
func Path(root, fullName string) string {
	return filepath.Join(root, filepath.FromSlash(fullName)+".git")
}

// Source is where a mirror is fetched from.
type Source struct {
	URL string // http or https
	// Token, when set, authenticates as GitHub expects (x-access-token). It
	// is sent over https, or over http only to a loopback address.
	Token string
}

// pushedRefs is where commits fetched by SHA are kept, so that they stay in
// the mirror after git's garbage collection.
const pushedRefs = "refs/keyburn/pushed/"

// Timeouts of the git HTTP client: a server that stops answering fails the
// fetch instead of holding a worker (the delivery's own deadline bounds the
// whole).
const (
	dialTimeout   = 30 * time.Second
	headerTimeout = 2 * time.Minute // git servers take a while to pack a large clone
)

var installOnce sync.Once

// installTransport gives go-git an HTTP client with timeouts, which follows
// no redirect to another host (the token would go with it).
func installTransport() {
	installOnce.Do(func() {
		c := &http.Client{
			Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
				DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout: 15 * time.Second, ResponseHeaderTimeout: headerTimeout, IdleConnTimeout: 90 * time.Second},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
					return fmt.Errorf("redirect from %s to another host (%s) refused", via[0].URL.Host, req.URL.Host)
				}
				return nil
			},
		}
		client.InstallProtocol("https", githttp.NewClient(c))
		client.InstallProtocol("http", githttp.NewClient(c))
	})
}

// Fetch brings dir up to date with src, creating the mirror the first time,
// and makes sure it holds the commits in wants: any not on a ref are
// fetched by SHA. It returns the wants it could not get (the server does not
// have them, or does not serve objects by SHA).
func Fetch(ctx context.Context, dir string, src Source, wants []string) (missing []string, err error) {
	installTransport()
	pu, err := url.Parse(src.URL)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
		return nil, fmt.Errorf("clone URL %q: only http and https URLs are fetched", src.URL)
	}
	var auth transport.AuthMethod
	if src.Token != "" {
		if pu.Scheme != "https" && !isLoopback(pu.Hostname()) {
			return nil, fmt.Errorf("clone URL %s: a token is sent over https only", pu.Redacted())
		}
		auth = &githttp.BasicAuth{Username: "x-access-token", Password: src.Token}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("mirror directory: %w", err)
	}
	unlock, err := lock(ctx, dir+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()

	repo, err := open(ctx, dir, src.URL, auth)
	if err != nil {
		return nil, err
	}
	if err := fetch(ctx, repo, src.URL, auth, headSpecs); err != nil {
		return nil, err
	}
	for _, w := range wants {
		h := plumbing.NewHash(w)
		if _, err := source.Peel(repo, h); err == nil {
			continue // a commit, or a tag of one (a tag push's "after")
		}
		// Not on any ref (force-pushed away, or a branch deleted since):
		// ask for it by SHA.
		spec := config.RefSpec("+" + w + ":" + pushedRefs + w)
		if err := fetch(ctx, repo, src.URL, auth, []config.RefSpec{spec}); err != nil && ctx.Err() != nil {
			return nil, err
		}
		if _, err := source.Peel(repo, h); err != nil {
			missing = append(missing, w)
		}
	}
	return missing, nil
}

var headSpecs = []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}

func fetch(ctx context.Context, repo *git.Repository, u string, auth transport.AuthMethod, specs []config.RefSpec) error {
	err := repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RemoteURL: u, RefSpecs: specs, Auth: auth, Force: true, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return fmt.Errorf("fetch %s: %w", redact(u), err)
	}
	return nil
}

// open opens the mirror at dir, or builds it: in a temporary directory
// beside it, renamed into place once the first fetch is done. A directory
// that is not a usable mirror (a crash in an older version) is replaced; a
// missing remote is recreated.
func open(ctx context.Context, dir, u string, auth transport.AuthMethod) (*git.Repository, error) {
	repo, err := git.PlainOpen(dir)
	switch {
	case err == nil:
		if _, rerr := repo.Remote("origin"); errors.Is(rerr, git.ErrRemoteNotFound) {
			if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{u}, Fetch: headSpecs}); err != nil {
				return nil, fmt.Errorf("mirror %s: recreate its remote: %w", dir, err)
			}
		}
		return repo, nil
	case errors.Is(err, git.ErrRepositoryNotExists):
		if _, serr := os.Stat(dir); serr == nil {
			// Something is there, and it is no repository.
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("mirror %s is broken and could not be removed: %w", dir, err)
			}
		}
	default:
		return nil, fmt.Errorf("open mirror %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".new-")
	if err != nil {
		return nil, fmt.Errorf("create mirror %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) // after the rename, nothing is left there
	repo, err = git.PlainInit(tmp, true)
	if err == nil {
		_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{u}, Fetch: headSpecs})
	}
	if err != nil {
		return nil, fmt.Errorf("create mirror %s: %w", dir, err)
	}
	if err := fetch(ctx, repo, u, auth, headSpecs); err != nil {
		return nil, err
	}
	if err := private(tmp); err != nil {
		return nil, fmt.Errorf("create mirror %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("create mirror %s: %w", dir, err)
	}
	return git.PlainOpen(dir)
}

// private makes a tree its owner's alone: directories 0700, files 0600.
func private(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		}
		return os.Chmod(p, mode)
	})
}

// lock takes an exclusive lock on path (flock: held between processes and
// between goroutines alike), waiting while ctx allows.
func lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := tryLock(f)
		if err == nil {
			return func() { unlockFile(f); f.Close() }, nil
		}
		if !errors.Is(err, errLocked) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// redact drops any credentials from a URL for messages.
func redact(u string) string {
	if pu, err := url.Parse(u); err == nil {
		return pu.Redacted()
	}
	return "(unparsable URL)"
}
