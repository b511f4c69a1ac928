package respond

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// stepVouch is the audit step of a key taken on a notice's word.
const stepVouch = "vouch"

// quarantinePrefix is the name of the AWS managed policies AWS attaches to
// a user whose key it found exposed (AWSCompromisedKeyQuarantine, …V2,
// …V3): only AWS's own (account "aws") count.
const quarantinePrefix = "AWSCompromisedKeyQuarantine"

// Vouched is what Vouch learnt of a key a notice vouches for.
type Vouched struct {
	// Verdict is the key as the responder acts on it: Exposed with its
	// owner's ARN; Invalid when IAM has no such key (deleted already);
	// Error when the owner could not be found, or the notice and AWS
	// disagree on the account: nothing is done then.
	Verdict verify.Verdict
	// Quarantine names the quarantine policies attached to the owner.
	Quarantine []string
	// Err is a failure to write the audit log.
	Err error
}

// Vouch finds the owner of a key that v vouches for (AWS's own exposure
// notice: there is no secret to verify it with, and none is needed), with
// the responder's own credentials: sts:GetAccessKeyInfo names the key's
// account, which must be the notice's; iam:GetAccessKeyLastUsed in that
// account names its user (and records its last use, as RecordLastUsed
// does before a verification); iam:ListAttachedUserPolicies says whether
// AWS quarantined the user. Every read is made only where the account
// rails allow; Respond applies every rail again before acting.
func (r *Responder) Vouch(ctx context.Context, k Key, v finding.Vouch) Vouched {
	vd := verify.Verdict{Status: verify.Exposed, Account: v.Account}
	errVerdict := func(format string, args ...any) Vouched {
		err := fmt.Errorf(format, args...)
		return Vouched{Verdict: verify.Verdict{Status: verify.Error, Account: v.Account, Err: err}}
	}
	if r.opts.Policy == Off || v.Account == "" {
		return Vouched{Verdict: vd}
	}
	if why := r.refuse(k.ID, principal{}, k.Account, v.Account); why != "" {
		return Vouched{Verdict: vd} // Respond says why, in the audit log too; nothing is read there
	}
	if strings.HasPrefix(k.ID, "ASIA") {
		return Vouched{Verdict: vd} // no user to find: Respond says what to do
	}
	acct, err := r.accountOf(ctx, k.ID)
	if err != nil {
		return errVerdict("sts:GetAccessKeyInfo %s: %w: not acted on", k.ID, err)
	}
	if acct != v.Account {
		return errVerdict("the notice is about account %s, but AWS puts key %s in account %s: not acted on", v.Account, k.ID, acct)
	}
	if _, ok := r.credsIn(acct); !ok {
		return errVerdict("key %s is in account %s, where keyburn has no credentials (set role_name): not acted on", k.ID, acct)
	}
	out, err := r.iam(acct).GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(k.ID)})
	var nse *iamtypes.NoSuchEntityException
	switch {
	case errors.As(err, &nse) || isCode(err, "NoSuchEntity"):
		vd.Status = verify.Invalid // gone: deleted by its owner, or by an earlier run
		return Vouched{Verdict: vd}
	case err != nil:
		return errVerdict("iam:GetAccessKeyLastUsed %s in account %s: %w: not acted on", k.ID, acct, err)
	}
	user := aws.ToString(out.UserName)
	partition := "aws"
	if p := strings.SplitN(r.selfARN, ":", 3); len(p) == 3 && strings.HasPrefix(p[1], "aws") {
		partition = p[1]
	}
	switch {
	case user == "" || strings.HasPrefix(user, "<"):
		vd.ARN = "arn:" + partition + ":iam::" + acct + ":root" // IAM names the root user "<root_account>"
	default:
		vd.ARN = "arn:" + partition + ":iam::" + acct + ":user/" + user
	}
	res := Vouched{Verdict: vd, Quarantine: r.quarantine(ctx, acct, user, partition)}
	a := r.auditor(k.ID, acct, ownerName(vd.ARN))
	detail := v.By + " vouches that it leaked"
	if v.Event != "" {
		detail += " (" + v.Event + ")"
	}
	detail += "; not verified with STS (no secret, none needed); owner " + ownerName(vd.ARN) + " (iam:GetAccessKeyLastUsed); " + lastUsedText(out.AccessKeyLastUsed)
	if len(res.Quarantine) > 0 {
		detail += "; AWS quarantined the user: " + strings.Join(res.Quarantine, ", ")
	}
	res.Err = a.write(ctx, store.AuditRecord{Action: stepVouch, Outcome: outOK, RequestID: requestIDOf(out.ResultMetadata), Detail: detail})
	if res.Err == nil {
		r.lastUsedMu.Lock()
		r.lastUsed[k.ID] = true // recorded above, before anything is done
		r.lastUsedMu.Unlock()
	}
	return res
}

// accountOf names the account of keyID with sts:GetAccessKeyInfo and the
// responder's own credentials.
func (r *Responder) accountOf(ctx context.Context, keyID string) (string, error) {
	if r.opts.testOnlyAccountOf != nil {
		return r.opts.testOnlyAccountOf(keyID)
	}
	out, err := r.sts().GetAccessKeyInfo(ctx, &sts.GetAccessKeyInfoInput{AccessKeyId: aws.String(keyID)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Account), nil
}

// quarantine lists the AWS quarantine policies attached to user; nil when
// there are none or they cannot be read (the reach says what was unread).
func (r *Responder) quarantine(ctx context.Context, account, user, partition string) []string {
	if user == "" || strings.HasPrefix(user, "<") {
		return nil
	}
	c, _ := r.reachIAM(account)
	if c == nil {
		return nil
	}
	out, err := c.ListAttachedUserPolicies(ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(user), MaxItems: aws.Int32(100)})
	if err != nil {
		return nil
	}
	var names []string
	for _, p := range out.AttachedPolicies {
		name := aws.ToString(p.PolicyName)
		if strings.HasPrefix(name, quarantinePrefix) && aws.ToString(p.PolicyArn) == "arn:"+partition+":iam::aws:policy/"+name {
			names = append(names, name)
		}
	}
	return names
}
