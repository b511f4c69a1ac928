package respond

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
)

// ownIdentity is an identity the responder must never act on: by key ID, by
// principal, or both.
type ownIdentity struct {
	keyID string
	arn   string
	p     principal
	why   string // "the source profile of the responder's credentials"
}

// guardChain fills guarded: the identities of the credential chain (their
// key IDs, and their principals from sts:GetCallerIdentity signed by each),
// and, when the responder is a role session, the principals the role's
// trust policy names. What it cannot read is said in Describe; the key IDs
// it has are guarded regardless.
func (r *Responder) guardChain(ctx context.Context) {
	var missing []string
	for i, cp := range r.opts.ChainCredentials {
		creds, err := cp.Retrieve(ctx)
		if err != nil {
			missing = append(missing, fmt.Sprintf("credential source %d: %v", i+1, err))
			continue
		}
		g := ownIdentity{keyID: creds.AccessKeyID, why: "a key behind the responder's own credentials (its source profile)"}
		o := sts.Options{Region: r.opts.Region, Credentials: cp, HTTPClient: r.opts.HTTPClient,
			APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue("keyburn", "respond")}}
		if r.opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(r.opts.Endpoint)
		}
		if out, err := sts.New(o).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
			g.arn = aws.ToString(out.Arn)
			g.p = parseARN(g.arn)
		} else {
			missing = append(missing, "who "+creds.AccessKeyID+" is: "+errText(err))
		}
		r.guarded = append(r.guarded, g)
	}
	if r.self.role != "" {
		out, err := r.iam(r.self.account).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(r.self.role)})
		if err != nil {
			missing = append(missing, "who may assume role "+r.self.role+": "+errText(err))
		} else {
			for _, arn := range trustedPrincipals(aws.ToString(out.Role.AssumeRolePolicyDocument)) {
				p := parseARN(arn)
				if p.user == "" && p.role == "" {
					continue // an account or a service: not one identity to guard
				}
				r.guarded = append(r.guarded, ownIdentity{arn: arn, p: p, why: "it may assume the responder's role " + r.self.role})
			}
		}
	}
	r.unguarded = strings.Join(missing, "; ")
}

// trustedPrincipals reads the AWS principals a role's trust policy allows
// (the document as IAM returns it, URL-encoded JSON).
func trustedPrincipals(doc string) []string {
	if d, err := url.QueryUnescape(doc); err == nil {
		doc = d
	}
	var policy struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(doc), &policy) != nil {
		return nil
	}
	var stmts []struct {
		Effect    string
		Principal json.RawMessage
	}
	if json.Unmarshal(policy.Statement, &stmts) != nil {
		var one struct {
			Effect    string
			Principal json.RawMessage
		}
		if json.Unmarshal(policy.Statement, &one) != nil {
			return nil
		}
		stmts = append(stmts, one)
	}
	var out []string
	for _, st := range stmts {
		if st.Effect != "Allow" {
			continue
		}
		var pr struct{ AWS json.RawMessage }
		if json.Unmarshal(st.Principal, &pr) != nil || pr.AWS == nil {
			continue
		}
		var list []string
		if json.Unmarshal(pr.AWS, &list) != nil {
			var one string
			if json.Unmarshal(pr.AWS, &one) != nil {
				continue
			}
			list = []string{one}
		}
		out = append(out, list...)
	}
	return out
}
