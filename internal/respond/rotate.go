package respond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/internal/store"
)

// Rotation (Policy Rotate): before the leaked key is deactivated, its user
// gets a new key, stored in AWS Secrets Manager, so that its owners can
// move the application to it; then the leaked key is deactivated, soaked
// and deleted as under Delete. The new secret is never printed, logged or
// stored anywhere but Secrets Manager; a new key that cannot be stored
// there is deleted again (no orphaned live credential), and the leaked key
// goes the normal way regardless.

// The rotation's audit steps.
const (
	stepRotateCreate = "rotate-create" // the new key
	stepRotateStore  = "rotate-store"  // kept in Secrets Manager
	stepRotateUndo   = "rotate-undo"   // the new key deleted again: it could not be kept
)

// DefaultRotateSecretName is where a user's replacement key is kept:
// {account}, {user} and {key_id} (the leaked key's) are filled in.
const DefaultRotateSecretName = "keyburn/rotated/{account}/{user}"

// SecretsAPI is the Secrets Manager calls rotation makes.
type SecretsAPI interface {
	CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	TagResource(ctx context.Context, in *secretsmanager.TagResourceInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
}

// maxKeys is how many access keys IAM lets a user have.
const maxKeys = 2

// secretNameRE is what Secrets Manager takes in a name; anything else in a
// user's name (IAM allows a comma) becomes "_".
var secretNameRE = regexp.MustCompile(`[^A-Za-z0-9/_+=.@-]`)

// secretName fills the configured name pattern.
func (r *Responder) secretName(account, user, keyID string) string {
	pattern := r.opts.RotateSecretName
	if pattern == "" {
		pattern = DefaultRotateSecretName
	}
	name := strings.NewReplacer("{account}", account, "{user}", user, "{key_id}", keyID).Replace(pattern)
	return secretNameRE.ReplaceAllString(name, "_")
}

// rotate gives the user of the leaked key a.keyID a replacement, kept in
// Secrets Manager. It never stops the response: what it could not do is
// said in the returned reason (and the audit log), and the leaked key is
// dealt with as under Delete whatever happened here. err is a failure
// the caller must report (an audit record, or a new key that could be
// neither stored nor deleted).
func (r *Responder) rotate(ctx context.Context, a auditor, c IAMAPI) (repl *finding.Replacement, why string, err error) {
	name := r.secretName(a.account, a.user, a.keyID)
	if done, ok := r.rotatedBefore(ctx, a.keyID); ok {
		return nil, "a replacement was made already (" + done + ")", nil
	}
	keys, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(a.user)})
	if err != nil {
		why = "no replacement: the user's keys could not be read (" + errText(err) + ")"
		return nil, why, a.write(ctx, store.AuditRecord{Action: stepRotateCreate, Outcome: outFailed, RequestID: requestID(err), Detail: why})
	}
	if orphan := r.unkept(ctx, a, keys.AccessKeyMetadata); orphan != "" {
		// An earlier run made a replacement and stopped before keeping it:
		// a live key whose secret nobody has. It goes first.
		if r.opts.DryRun {
			return nil, "would delete " + orphan + ", a replacement an earlier run made and did not keep, then create another", nil
		}
		rctx, cancel := recording(ctx)
		err := r.undoRotation(rctx, a, c, orphan, "an earlier run made it and stopped before keeping it in Secrets Manager")
		cancel()
		if err != nil {
			return nil, "no replacement: " + orphan + ", which an earlier run made and did not keep, could not be deleted first", err
		}
		keys.AccessKeyMetadata = slices.DeleteFunc(keys.AccessKeyMetadata, func(k iamtypes.AccessKeyMetadata) bool { return aws.ToString(k.AccessKeyId) == orphan })
	}
	if n := len(keys.AccessKeyMetadata); n >= maxKeys {
		why = fmt.Sprintf("no replacement: user %s has %d keys, the most IAM allows (delete the other one to make room)", a.user, n)
		return nil, why, a.write(ctx, store.AuditRecord{Action: stepRotateCreate, Outcome: outSkipped, Detail: why})
	}
	if r.opts.DryRun {
		return nil, "would create a replacement key, kept in Secrets Manager as " + name,
			a.write(ctx, store.AuditRecord{Action: stepRotateCreate, Outcome: outDryRun, Detail: "would create a replacement key for user " + a.user + ", kept in Secrets Manager as " + name})
	}
	sm, whyNot := r.secrets(a.account)
	if sm == nil {
		why = "no replacement: " + whyNot
		return nil, why, a.write(ctx, store.AuditRecord{Action: stepRotateCreate, Outcome: outSkipped, Detail: why})
	}
	if err := a.write(ctx, store.AuditRecord{Action: stepRotateCreate, Outcome: outStarted, Detail: "a replacement key for user " + a.user}); err != nil {
		return nil, "no replacement: the audit log could not be written", err
	}
	out, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(a.user)})
	rctx, cancel := recording(ctx)
	defer cancel()
	if err != nil {
		why = "no replacement: iam:CreateAccessKey: " + errText(err)
		return nil, why, a.write(rctx, store.AuditRecord{Action: stepRotateCreate, Outcome: outFailed, RequestID: requestID(err), Detail: errText(err)})
	}
	newID := aws.ToString(out.AccessKey.AccessKeyId)
	newSecret := secret.New(aws.ToString(out.AccessKey.SecretAccessKey))
	out.AccessKey.SecretAccessKey = nil // the only copy is newSecret, which redacts itself
	if err := a.write(rctx, store.AuditRecord{Action: stepRotateCreate, Outcome: outOK, RequestID: requestIDOf(out.ResultMetadata),
		Detail: "new key " + newID + " for user " + a.user}); err != nil {
		// Not recorded: not kept either.
		return nil, "no replacement: its creation could not be recorded", errors.Join(err, r.undoRotation(rctx, a, c, newID, "its creation could not be recorded"))
	}
	arn, rid, err := r.storeReplacement(ctx, sm, name, a, newID, newSecret)
	if err != nil {
		werr := a.write(rctx, store.AuditRecord{Action: stepRotateStore, Outcome: outFailed, RequestID: requestID(err), Detail: "Secrets Manager " + name + ": " + errText(err)})
		why = "no replacement: it could not be kept in Secrets Manager (" + errText(err) + "), so the new key was deleted again"
		return nil, why, errors.Join(werr, r.undoRotation(rctx, a, c, newID, "it could not be kept in Secrets Manager"))
	}
	err = a.write(rctx, store.AuditRecord{Action: stepRotateStore, Outcome: outOK, RequestID: rid,
		Detail: "new key " + newID + " kept in Secrets Manager as " + name + " (" + arn + ")"})
	return &finding.Replacement{KeyID: newID, Secret: name, SecretARN: arn}, "", err
}

// newKeyRE reads the key ID out of a rotate-create record keyburn wrote.
var newKeyRE = regexp.MustCompile(`^new key (AKIA[A-Z2-7]{16}) `)

// orphanWindow bounds when an unrecorded replacement was created, around
// the "started" record of the run that made it.
const orphanWindow = 5 * time.Minute

// unkept returns a replacement an earlier rotation of a.keyID made and
// neither kept in Secrets Manager nor deleted again (its run stopped in
// between), when it is still among keys: named by the audit log when its
// creation was recorded, else the one key of the user other than the
// leaked one created within orphanWindow of the "started" record. "" when
// there is none, or when which it is cannot be told for sure.
func (r *Responder) unkept(ctx context.Context, a auditor, keys []iamtypes.AccessKeyMetadata) string {
	log, err := r.opts.Store.AuditLog(ctx, a.keyID)
	if err != nil {
		return ""
	}
	var pending string // "?": made, ID unrecorded
	var started time.Time
	for _, rec := range log {
		switch {
		case rec.Action == stepRotateCreate && rec.Outcome == outStarted:
			pending, started = "?", rec.At
		case rec.Action == stepRotateCreate && rec.Outcome == outOK:
			if m := newKeyRE.FindStringSubmatch(rec.Detail); m != nil {
				pending = m[1]
			}
		case rec.Action == stepRotateCreate, rec.Action == stepRotateStore && rec.Outcome == outOK,
			rec.Action == stepRotateUndo && rec.Outcome == outOK:
			pending = "" // not made, kept, or deleted again
		}
	}
	var candidates []string
	for _, k := range keys {
		id := aws.ToString(k.AccessKeyId)
		switch {
		case id == a.keyID:
		case pending == id:
			return id
		case pending == "?" && k.CreateDate != nil && k.CreateDate.After(started.Add(-orphanWindow)) && k.CreateDate.Before(started.Add(orphanWindow)):
			candidates = append(candidates, id)
		}
	}
	if len(candidates) == 1 {
		return candidates[0]
	}
	return ""
}

// rotatedBefore reports whether the audit log has a replacement made for
// keyID already (by this or another process), and where it is kept.
func (r *Responder) rotatedBefore(ctx context.Context, keyID string) (string, bool) {
	log, err := r.opts.Store.AuditLog(ctx, keyID)
	if err != nil {
		return "", false
	}
	for _, rec := range log {
		if rec.Action == stepRotateStore && rec.Outcome == outOK {
			return rec.Detail, true
		}
	}
	return "", false
}

// replacementValue is the secret's JSON: what an application needs, and
// what it replaces.
type replacementValue struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	UserName        string `json:"UserName"`
	Replaces        string `json:"Replaces"`
	CreatedAt       string `json:"CreatedAt"`
}

// storeReplacement keeps the new key in Secrets Manager under name: a new
// secret, or a new version of the user's secret when it exists, tagged
// with the user, the leaked key and its audit reference. It returns the
// secret's ARN and the request ID.
func (r *Responder) storeReplacement(ctx context.Context, sm SecretsAPI, name string, a auditor, newID string, newSecret secret.Secret) (arn, rid string, err error) {
	value, err := json.Marshal(replacementValue{AccessKeyID: newID, SecretAccessKey: newSecret.Reveal(), UserName: a.user,
		Replaces: a.keyID, CreatedAt: r.opts.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		return "", "", err
	}
	tags := []smtypes.Tag{
		{Key: aws.String("keyburn:user"), Value: aws.String(a.user)},
		{Key: aws.String("keyburn:replaces"), Value: aws.String(a.keyID)},
		{Key: aws.String("keyburn:audit"), Value: aws.String("keyburn scan audit --key " + a.keyID)},
	}
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(value)), Tags: tags,
		Description: aws.String("AWS access key of IAM user " + a.user + ", made by keyburn to replace the leaked key " + a.keyID)}
	if r.opts.RotateKMSKey != "" {
		in.KmsKeyId = aws.String(r.opts.RotateKMSKey)
	}
	out, err := sm.CreateSecret(ctx, in)
	if err == nil {
		return aws.ToString(out.ARN), requestIDOf(out.ResultMetadata), nil
	}
	if !isCode(err, "ResourceExistsException") {
		return "", "", err
	}
	// The user's secret from an earlier rotation: a new version of it.
	put, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(string(value))})
	if err != nil {
		return "", "", err
	}
	if _, err := sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(name), Tags: tags}); err != nil {
		return "", "", fmt.Errorf("stored, but not tagged: %w", err)
	}
	return aws.ToString(put.ARN), requestIDOf(put.ResultMetadata), nil
}

// undoRotation deletes a new key that could not be kept: a live key
// nobody knows of must not outlive the run. Like any key keyburn deletes,
// it is deactivated first. One that cannot be deleted is an error naming
// it (and it is left Inactive when that much worked).
func (r *Responder) undoRotation(ctx context.Context, a auditor, c IAMAPI, newID, why string) error {
	if err := a.write(ctx, store.AuditRecord{Action: stepRotateUndo, Outcome: outStarted, Detail: "deactivate and delete the new key " + newID + ": " + why}); err != nil {
		return err // and go on: an unrecorded delete beats a live orphan
	}
	state := statusActive
	_, err := c.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(a.user), AccessKeyId: aws.String(newID), Status: iamtypes.StatusTypeInactive})
	if err == nil {
		state = statusInactive
		var out *iam.DeleteAccessKeyOutput
		if out, err = c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(a.user), AccessKeyId: aws.String(newID)}); err == nil {
			return a.write(ctx, store.AuditRecord{Action: stepRotateUndo, Outcome: outOK, RequestID: requestIDOf(out.ResultMetadata),
				Before: statusActive, After: statusGone, Detail: "new key " + newID + " deleted"})
		}
	}
	werr := a.write(ctx, store.AuditRecord{Action: stepRotateUndo, Outcome: outFailed, RequestID: requestID(err), Before: statusActive, After: state, Detail: errText(err)})
	return errors.Join(fmt.Errorf("THE NEW KEY %s OF USER %s COULD NOT BE DELETED AGAIN (%s; it is %s): delete it by hand", newID, a.user, errText(err), state), werr)
}

// secrets returns the Secrets Manager client for account, or why there
// is none.
func (r *Responder) secrets(account string) (SecretsAPI, string) {
	if r.opts.testOnlySecrets != nil {
		return r.opts.testOnlySecrets(account), ""
	}
	creds, ok := r.credsIn(account)
	if !ok {
		return nil, "keyburn has no credentials in account " + account + " (set role_name)"
	}
	o := secretsmanager.Options{Region: r.opts.RotateRegion, Credentials: creds, HTTPClient: r.opts.HTTPClient,
		APIOptions: []func(*middleware.Stack) error{awsmiddleware.AddUserAgentKeyValue("keyburn", "rotate")}}
	if o.Region == "" {
		o.Region = r.opts.Region
	}
	if r.opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(r.opts.Endpoint)
	}
	return secretsmanager.New(o), ""
}
