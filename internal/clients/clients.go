// Package clients builds, in one place, the clients both binaries need from
// their flags and configuration: keyburn's own AWS credentials and the
// verifier and responder built on them, the GitHub REST client, a GitHub
// App, and the SQS client. It holds no state and makes no call itself
// (credentials are resolved when first used).
package clients

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/logging"
	"github.com/google/go-github/v62/github"

	"github.com/keyburn/keyburn/internal/ghapp"
	"github.com/keyburn/keyburn/internal/respond"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
	"github.com/keyburn/keyburn/rules"
)

// region is where the global STS and IAM endpoints answer.
const region = "us-east-1"

// AWS loads keyburn's own AWS configuration: the SDK's default chain
// (environment, shared files, instance role), resolved when first used.
func AWS(ctx context.Context) (aws.Config, error) {
	// The SDK logs nothing of its own (an IMDSv1 fallback, a retry): what
	// matters reaches the caller as an error.
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region), awsconfig.WithLogger(logging.Nop{}))
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS configuration: %w", err)
	}
	return cfg, nil
}

// credentialsWait bounds resolving keyburn's own credentials (an instance
// role's metadata service that does not answer).
const credentialsWait = 15 * time.Second

// CheckCredentials resolves cfg's credentials now, so that a command that
// will act on keys finds out before its work that it cannot. The error
// wraps respond.ErrNoCredentials.
func CheckCredentials(ctx context.Context, cfg aws.Config) error {
	if cfg.Credentials == nil {
		return respond.ErrNoCredentials
	}
	ctx, cancel := context.WithTimeout(ctx, credentialsWait)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("%w: %w", respond.ErrNoCredentials, err)
	}
	return nil
}

// maxSourceDepth bounds a chain of source profiles.
const maxSourceDepth = 10

// SourceCredentials are the static keys behind cfg's credentials that are
// not the credentials themselves: with a profile of role_arn and
// source_profile, the source profile's key (and its source's, …). The
// responder guards them as its own.
func SourceCredentials(cfg aws.Config) []aws.CredentialsProvider {
	var out []aws.CredentialsProvider
	seen := map[string]bool{}
	for _, src := range cfg.ConfigSources {
		sc, ok := src.(awsconfig.SharedConfig)
		if !ok || sc.RoleARN == "" {
			continue // no role: the profile's own key is the responder's
		}
		for p, n := sc.Source, 0; p != nil && n < maxSourceDepth; p, n = p.Source, n+1 {
			if k := p.Credentials; k.HasKeys() && !seen[k.AccessKeyID] {
				seen[k.AccessKeyID] = true
				out = append(out, credentials.StaticCredentialsProvider{Value: k})
			}
		}
	}
	return out
}

// Check is what verification and response are built from.
type Check struct {
	Endpoint  string // STS and IAM endpoint URL; empty: AWS's
	UserAgent string
	Rules     rules.AWSSpec // canary, allow and deny accounts, role_name
	RoleName  string        // overrides Rules.RoleName when set
	Policy    respond.Policy
	DryRun    bool
	Soak      time.Duration
	Store     *store.Store // the verdict cache and the audit log
}

// Verifier builds the verifier; it uses cfg's credentials only to name the
// account of old-format key IDs.
func (c Check) Verifier(cfg aws.Config) *verify.Verifier {
	return verify.New(verify.Options{Endpoint: c.Endpoint, Cache: c.Store, UserAgent: c.UserAgent,
		CanaryAccounts: c.Rules.CanaryAccounts, Credentials: cfg.Credentials})
}

// Responder builds the responder (nil with policy off), after it learns who
// it is with sts:GetCallerIdentity.
func (c Check) Responder(ctx context.Context, cfg aws.Config) (*respond.Responder, error) {
	if c.Policy == respond.Off || c.Policy == "" {
		return nil, nil
	}
	role := c.RoleName
	if role == "" {
		role = c.Rules.RoleName
	}
	return respond.New(ctx, respond.Options{Policy: c.Policy, DryRun: c.DryRun, Soak: c.Soak,
		Credentials: cfg.Credentials, ChainCredentials: SourceCredentials(cfg), Endpoint: c.Endpoint, RoleName: role, RootAccess: c.Rules.CentralizedRootAccess,
		EvidenceRegions: c.Rules.EvidenceRegions, MinSeverity: c.Rules.RespondMinSeverity, Store: c.Store,
		RotateSecretName: c.Rules.RotateSecretName, RotateKMSKey: c.Rules.RotateKMSKeyID, RotateRegion: c.Rules.RotateRegion,
		AllowAccounts: c.Rules.AllowAccounts, DenyAccounts: c.Rules.DenyAccounts, CanaryAccounts: c.Rules.CanaryAccounts})
}

// GitHubTimeout bounds every GitHub API call.
const GitHubTimeout = 30 * time.Second

// MaxGitHubResponse bounds what is read of one GitHub API answer: a page
// of 100 alerts or repositories is far below it.
const MaxGitHubResponse = 64 << 20

// GitHub builds the REST client: token (may be empty) for github.com, or a
// GitHub Enterprise server's API at apiURL. Every answer is read through a
// cap (MaxGitHubResponse): an API answer is input like any other.
func GitHub(token, apiURL string) (*github.Client, error) {
	gh := github.NewClient(&http.Client{Timeout: GitHubTimeout, Transport: Capped{Base: http.DefaultTransport, Max: MaxGitHubResponse}})
	if token != "" {
		gh = gh.WithAuthToken(token)
	}
	if apiURL != "" {
		var err error
		if gh, err = gh.WithEnterpriseURLs(apiURL, apiURL); err != nil {
			return nil, fmt.Errorf("--github-api: %w", err)
		}
	}
	return gh, nil
}

// App builds the GitHub App of id with the private key in keyFile (nil when
// neither is given; an error when only one is).
func App(id int64, keyFile, apiURL string) (*ghapp.App, error) {
	if (id != 0) != (keyFile != "") {
		return nil, errors.New("--github-app-id and --github-app-key go together")
	}
	if id == 0 {
		return nil, nil
	}
	pemKey, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--github-app-key: %w", err)
	}
	return ghapp.New(id, pemKey, apiURL)
}

// SQS builds the SQS client, pointed at endpoint when set.
func SQS(cfg aws.Config, endpoint string) *sqs.Client {
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// Capped is a transport whose response bodies fail once they pass Max
// bytes, instead of being read without end.
type Capped struct {
	Base http.RoundTripper
	Max  int64
}

// RoundTrip sends the request and caps the answer's body.
func (c Capped) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.Base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: c.Max, max: c.Max, host: req.URL.Host}
	return resp, nil
}

type cappedBody struct {
	io.ReadCloser
	left, max int64
	host      string
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("an answer from %s is over keyburn's cap of %d bytes", b.host, b.max)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
