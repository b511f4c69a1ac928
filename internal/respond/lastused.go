package respond

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/keyburn/keyburn/internal/store"
)

// RecordLastUsed records the key's last use in the audit log before it is
// verified: keyburn's own sts:GetCallerIdentity with the key updates "last
// used", and would hide an attacker's last use. It applies the account rails
// first and is read-only (DryRun too). It returns whether it was recorded.
func (r *Responder) RecordLastUsed(ctx context.Context, k Key) (bool, error) {
	if r.opts.Policy == Off || k.Account == "" || strings.HasPrefix(k.ID, "ASIA") {
		return false, nil
	}
	if why := r.refuse(k.ID, principal{}, k.Account); why != "" {
		return false, nil
	}
	if r.opts.RoleName == "" && k.Account != r.self.account {
		return false, nil // no credentials in that account
	}
	out, err := r.iam(k.Account).GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(k.ID)})
	if err != nil {
		return false, nil // not a key the responder can see: nothing to record
	}
	a := r.auditor(k.ID, k.Account, aws.ToString(out.UserName))
	if err := a.write(ctx, store.AuditRecord{Action: stepLastUsed, Outcome: outOK, RequestID: requestIDOf(out.ResultMetadata),
		Detail: "before verification (keyburn's STS call has not touched it): " + lastUsedText(out.AccessKeyLastUsed)}); err != nil {
		return false, err
	}
	r.lastUsedMu.Lock()
	r.lastUsed[k.ID] = true
	r.lastUsedMu.Unlock()
	return true, nil
}

func lastUsedText(lu *iamtypes.AccessKeyLastUsed) string {
	if lu == nil || lu.LastUsedDate == nil {
		return "never used"
	}
	return fmt.Sprintf("last used %s by %s in %s", lu.LastUsedDate.UTC().Format(time.RFC3339),
		aws.ToString(lu.ServiceName), aws.ToString(lu.Region))
}

func (r *Responder) lastUsedFirst(keyID string) bool {
	r.lastUsedMu.Lock()
	defer r.lastUsedMu.Unlock()
	return r.lastUsed[keyID]
}
