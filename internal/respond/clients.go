package respond

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
)

func (r *Responder) sts() *sts.Client {
	o := sts.Options{Region: r.opts.Region, Credentials: r.opts.Credentials, HTTPClient: r.opts.HTTPClient,
		APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue("keyburn", "respond")}}
	if r.opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(r.opts.Endpoint)
	}
	return sts.New(o)
}

// iam returns the IAM client for an account: the responder's own, or the
// assumed role's.
func (r *Responder) iam(account string) IAMAPI {
	r.clientMu.Lock()
	defer r.clientMu.Unlock()
	if c, ok := r.clients[account]; ok {
		return c
	}
	var c IAMAPI
	if r.opts.testOnlyIAM != nil {
		c = r.opts.testOnlyIAM(account)
	} else {
		c = r.iamWith(r.credsLocked(account))
	}
	r.clients[account] = c
	return c
}

// credsLocked returns the credentials that act in account: role_name's
// there, or the responder's own. The caller holds clientMu.
func (r *Responder) credsLocked(account string) aws.CredentialsProvider {
	if r.opts.RoleName == "" {
		return r.opts.Credentials
	}
	if c, ok := r.creds[account]; ok {
		return c
	}
	role := fmt.Sprintf("arn:aws:iam::%s:role/%s", account, r.opts.RoleName)
	c := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(r.sts(), role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "keyburn-responder"
	}))
	r.creds[account] = c
	return c
}

// credsIn returns credentials that act in account, and false when the
// responder has none there: no role_name, and not its own account.
func (r *Responder) credsIn(account string) (aws.CredentialsProvider, bool) {
	if account == "" || r.opts.RoleName == "" && account != r.self.account {
		return nil, false
	}
	r.clientMu.Lock()
	defer r.clientMu.Unlock()
	return r.credsLocked(account), true
}

// iamWith returns an IAM client acting with creds.
func (r *Responder) iamWith(creds aws.CredentialsProvider) IAMAPI { return r.iamClient(creds) }

func (r *Responder) iamClient(creds aws.CredentialsProvider) *iam.Client {
	o := iam.Options{Region: r.opts.Region, Credentials: creds, HTTPClient: r.opts.HTTPClient,
		APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue("keyburn", "respond")}}
	if r.opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(r.opts.Endpoint)
	}
	return iam.New(o)
}
