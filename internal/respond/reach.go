package respond

import (
	"cmp"
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/reach"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// Reach reads what a live key could do, with the responder's credentials
// in the key's account (its own, or role_name's), never the key's: the
// policies of the user (or role) STS named; a root key reaches everything.
// IAM is read at most reachRate calls a second per account. The summary
// is written to the audit log.
func (r *Responder) Reach(ctx context.Context, k Key, vd verify.Verdict) (*finding.Reach, error) {
	p := parseARN(vd.ARN)
	if r.refuse(k.ID, p, k.Account, vd.Account) != "" {
		// The rails that keep keyburn from acting in an account (deny,
		// allow and canary lists) keep its reads out too.
		return nil, nil
	}
	var out *finding.Reach
	switch {
	case p.root:
		out = &finding.Reach{Level: finding.ReachAdmin, Why: []string{"admin: the root user of account " + p.account + " can do everything in it"}}
	case p.user == "" && p.role == "":
		return nil, nil
	default:
		c, why := r.reachIAM(vd.Account)
		switch {
		case c == nil:
			out = &finding.Reach{Level: finding.ReachUnknown, Unread: []string{why}}
		case p.role != "":
			out = reach.OfRole(ctx, c, p.role)
		default:
			out = reach.Of(ctx, c, p.user, vd.ARN)
		}
	}
	err := r.auditor(k.ID, vd.Account, ownerName(vd.ARN)).write(ctx, store.AuditRecord{Action: stepReach, Outcome: outOK, Detail: out.Summary()})
	return out, err
}

// reachRate bounds the IAM reads of Reach, per account: a key's reach is
// about 20 calls, read at once; more keys of one account wait.
const reachRate = 20

// reachIAM returns the IAM client Reach reads with, rate-limited, or why
// there is none.
func (r *Responder) reachIAM(account string) (reach.IAM, string) {
	if r.opts.testOnlyReach != nil {
		return r.opts.testOnlyReach(account), ""
	}
	creds, ok := r.credsIn(account)
	if !ok {
		return nil, "keyburn has no credentials in account " + account + " (set role_name)"
	}
	lim := r.iamLimits.get(account, "iam")
	base := r.opts.HTTPClient
	hc := &http.Client{Timeout: base.Timeout, Transport: limited{base: cmp.Or[http.RoundTripper](base.Transport, http.DefaultTransport), lim: lim}}
	o := iam.Options{Region: r.opts.Region, Credentials: creds, HTTPClient: hc,
		APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue("keyburn", "reach")}}
	if r.opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(r.opts.Endpoint)
	}
	return iam.New(o), ""
}

// limited waits for its limiter before each request.
type limited struct {
	base http.RoundTripper
	lim  *rate.Limiter
}

func (l limited) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := l.lim.Wait(req.Context()); err != nil {
		return nil, err
	}
	return l.base.RoundTrip(req)
}
