package respond

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/store"
	"github.com/keyburn/keyburn/internal/verify"
)

// Root keys. An IAM principal cannot touch a root user's access key; with
// AWS Organizations' centralized root access, the management account (or
// the delegated administrator for IAM) can: sts:AssumeRoot into the member
// account with the IAMDeleteRootUserCredentials task policy gives a root
// session of at most 15 minutes whose IAM calls name no user. The
// responder does this only when Options.RootAccess says so.
//
// The rails are those of every key (live, allow, deny and canary lists,
// never its own) and, for the root session: the "started" record before
// AssumeRoot and before each mutating call, the owner check (the key must
// be among the root user's keys, read in the root session), and DryRun
// assumes nothing and changes nothing. Two differences, both because a
// root key should not exist at all: it is deleted at once (no soak
// window), and it is deleted even when it could not be deactivated first
// (the task policy grants iam:DeleteAccessKey, and AWS may not grant
// iam:UpdateAccessKey to it).

// rootTaskPolicy scopes the root session to deleting the root user's
// credentials.
const rootTaskPolicy = "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials"

// rootSessionSeconds is how long the root session lasts: AWS's maximum.
const rootSessionSeconds = 900

// stepAssumeRoot is the audit step of sts:AssumeRoot.
const stepAssumeRoot = "assume-root"

// rootSession assumes root in account and returns an IAM client acting as
// its root user, with AWS's request ID of the AssumeRoot call.
func (r *Responder) rootSession(ctx context.Context, account string) (IAMAPI, string, error) {
	if r.opts.testOnlyRootSession != nil {
		c, err := r.opts.testOnlyRootSession(account)
		return c, "", err
	}
	out, err := r.sts().AssumeRoot(ctx, &sts.AssumeRootInput{
		TargetPrincipal: aws.String(account),
		TaskPolicyArn:   &ststypes.PolicyDescriptorType{Arn: aws.String(rootTaskPolicy)},
		DurationSeconds: aws.Int32(rootSessionSeconds),
	})
	if err != nil {
		return nil, requestID(err), err
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil {
		return nil, requestIDOf(out.ResultMetadata), errors.New("sts:AssumeRoot returned no credentials")
	}
	creds := credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	return r.iamWith(creds), requestIDOf(out.ResultMetadata), nil
}

// respondRoot deletes a live root key through a root session: assume root,
// check the key is the root user's, deactivate it (where the task policy
// allows), delete it.
func (r *Responder) respondRoot(ctx context.Context, k Key, vd verify.Verdict, account string) Result {
	res := Result{KeyID: k.ID, At: r.opts.Now()}
	a := r.auditor(k.ID, account, rootUser)
	if !vd.Secret.IsZero() {
		a.secretSHA = vd.Secret.SHA256()
	}
	a.root = true
	if !r.opts.RootAccess {
		// Say who can, and record why nothing was done.
		why := finding.RootKeyAdvice(k.ID, account)
		res.Action, res.Reason = ActionSkipped, why
		res.Err = a.write(ctx, store.AuditRecord{Action: stepRefuse, Outcome: outSkipped, Detail: why})
		return res
	}
	if r.opts.DryRun {
		what := "would assume root in account " + account + " (sts:AssumeRoot, IAMDeleteRootUserCredentials) and "
		if r.opts.Policy == Deactivate {
			what += "deactivate the root user's key"
		} else {
			what += "delete the root user's key at once"
		}
		res.Action, res.Reason = ActionDryRun, what
		res.Err = a.write(ctx, store.AuditRecord{Action: stepAssumeRoot, Outcome: outDryRun, Detail: what})
		return res
	}
	var c IAMAPI
	err := a.mutate(ctx, nil, stepAssumeRoot, "", "", func() (string, error) {
		var rid string
		var err error
		c, rid, err = r.rootSession(ctx, account)
		return rid, err
	})
	var done *doneErr
	if err != nil && !errors.As(err, &done) {
		return *a.failed("no root session in account "+account+": "+err.Error()+
			" (centralized root access needs sts:AssumeRoot from the organisation's management or delegated administrator account)", err)
	}
	if done != nil {
		// A root session that could not be recorded: act no further.
		return *a.failed(err.Error()+"; nothing done", err)
	}
	status, fail := a.ownerCheck(ctx, c)
	if fail != nil {
		return *fail
	}
	if status == statusGone {
		res.Action, res.Reason = ActionFailed, "owner check: the key is not among the root user's keys of account "+account+"; nothing done"
		return res
	}
	var denied string
	if status == statusActive {
		if f := a.deactivate(ctx, c); f != nil {
			if !isCode(f.Err, "AccessDenied") || r.opts.Policy == Deactivate {
				if isCode(f.Err, "AccessDenied") {
					f.Reason += "; the root session may not deactivate keys: set policy delete to delete it"
				}
				return *f
			}
			denied = "it could not be deactivated first (" + errText(f.Err) + "); "
		}
	}
	res.At = r.opts.Now()
	if r.opts.Policy == Deactivate {
		res.Action = ActionDeactivated
		return res
	}
	res = a.deleteInactive(ctx, c, res)
	if res.Action == ActionDeleted && denied != "" {
		res.Reason = denied + "deleted"
	}
	return res
}

// rootAdvice says, in Describe, how root keys are handled, and where
// evidence is read.
func (r *Responder) rootAdvice() string {
	regions := r.opts.EvidenceRegions
	if len(regions) == 0 {
		regions = defaultEvidenceRegions
	}
	ev := "; after acting, CloudTrail's event history is read in " + strings.Join(regions, ",")
	if r.opts.RootAccess {
		return fmt.Sprintf("; root keys: deleted through centralized root access (sts:AssumeRoot, %s sessions)", time.Duration(rootSessionSeconds)*time.Second) + ev
	}
	return "; root keys: reported with who can delete them" + ev
}
