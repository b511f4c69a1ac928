// Package ghapp authenticates keyburn as a GitHub App: it signs the app's
// JWT with its private key and trades it for installation access tokens,
// which it caches until shortly before they expire. The webhook uses them to
// fetch an installation's repositories and to post statuses and issues.
package ghapp

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-github/v62/github"
)

// App is a GitHub App. It is safe for concurrent use.
type App struct {
	id      int64
	key     *rsa.PrivateKey
	apiURL  string // empty: api.github.com
	httpCli *http.Client

	mu            sync.Mutex
	tokens        map[int64]token
	installations map[string]installation // owner (lower case) → the app's installation there
	now           func() time.Time
}

type installation struct {
	id      int64
	expires time.Time
}

// installationTTL is how long an owner's installation is remembered: an
// app installed anew gets a new ID.
const installationTTL = 10 * time.Minute

type token struct {
	value   string
	expires time.Time
}

// New returns the app with the given ID and PEM-encoded private key (the
// file GitHub lets you download). apiURL is a GitHub Enterprise API base URL,
// or empty.
func New(id int64, privateKeyPEM []byte, apiURL string) (*App, error) {
	key, err := jwt.ParseRSAPrivateKeyFromPEM(privateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("GitHub App %d: private key: %w", id, err)
	}
	return &App{id: id, key: key, apiURL: apiURL, httpCli: &http.Client{Timeout: 30 * time.Second},
		tokens: map[int64]token{}, installations: map[string]installation{}, now: time.Now}, nil
}

// JWT returns the app's own token, valid for ten minutes (GitHub's limit),
// issued a minute in the past against clock drift.
func (a *App) JWT() (string, error) {
	now := a.now()
	claims := jwt.RegisteredClaims{
		Issuer:    strconv.FormatInt(a.id, 10),
		IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(9 * time.Minute)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(a.key)
}

// Token returns an access token for the installation, from the cache while
// it has more than five minutes left.
func (a *App) Token(ctx context.Context, installation int64) (string, error) {
	a.mu.Lock()
	t, ok := a.tokens[installation]
	a.mu.Unlock()
	if ok && a.now().Add(5*time.Minute).Before(t.expires) {
		return t.value, nil
	}
	gh, err := a.appClient()
	if err != nil {
		return "", err
	}
	it, _, err := gh.Apps.CreateInstallationToken(ctx, installation, nil)
	if err != nil {
		return "", fmt.Errorf("installation %d: access token: %w", installation, err)
	}
	t = token{value: it.GetToken(), expires: it.GetExpiresAt().Time}
	a.mu.Lock()
	a.tokens[installation] = t
	a.mu.Unlock()
	return t.value, nil
}

// appClient returns a REST client authenticated as the app itself (its JWT).
func (a *App) appClient() (*github.Client, error) {
	appJWT, err := a.JWT()
	if err != nil {
		return nil, err
	}
	gh := github.NewClient(a.httpCli).WithAuthToken(appJWT)
	if a.apiURL != "" {
		return gh.WithEnterpriseURLs(a.apiURL, a.apiURL)
	}
	return gh, nil
}

// OrgToken returns an access token for the app's installation in an
// organisation (or, with user true, a user account).
func (a *App) OrgToken(ctx context.Context, owner string, user bool) (string, error) {
	gh, err := a.appClient()
	if err != nil {
		return "", err
	}
	var inst *github.Installation
	if user {
		inst, _, err = gh.Apps.FindUserInstallation(ctx, owner)
	} else {
		inst, _, err = gh.Apps.FindOrganizationInstallation(ctx, owner)
	}
	if err != nil {
		return "", fmt.Errorf("GitHub App %d: installation in %s: %w", a.id, owner, err)
	}
	return a.Token(ctx, inst.GetID())
}

// RepoToken returns an access token for the app's installation that covers
// owner/repo. The installation is looked up through the API (GET
// /repos/{owner}/{repo}/installation) and cached per owner: a webhook
// payload's installation ID is never trusted, since it would let a payload
// pick any installation's token.
func (a *App) RepoToken(ctx context.Context, owner, repo string) (string, error) {
	key := strings.ToLower(owner)
	a.mu.Lock()
	inst, ok := a.installations[key]
	a.mu.Unlock()
	if !ok || !a.now().Before(inst.expires) {
		gh, err := a.appClient()
		if err != nil {
			return "", err
		}
		found, _, err := gh.Apps.FindRepositoryInstallation(ctx, owner, repo)
		if err != nil {
			return "", fmt.Errorf("GitHub App %d: installation for %s/%s: %w", a.id, owner, repo, err)
		}
		inst = installation{id: found.GetID(), expires: a.now().Add(installationTTL)}
		a.mu.Lock()
		a.installations[key] = inst
		a.mu.Unlock()
	}
	return a.Token(ctx, inst.id)
}
