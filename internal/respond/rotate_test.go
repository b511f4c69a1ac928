package respond

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/pgtest"
	"github.com/keyburn/keyburn/internal/store"
)

// failingSecrets is Secrets Manager (moto) whose CreateSecret fails.
type failingSecrets struct{ SecretsAPI }

func (failingSecrets) CreateSecret(context.Context, *secretsmanager.CreateSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: secretsmanager:CreateSecret"}
}

// undeletable is IAM whose DeleteAccessKey fails for one key.
type undeletable struct {
	IAMAPI
	keep func(id string) bool
}

func (u undeletable) DeleteAccessKey(ctx context.Context, in *iam.DeleteAccessKeyInput, opts ...func(*iam.Options)) (*iam.DeleteAccessKeyOutput, error) {
	if u.keep(aws.ToString(in.AccessKeyId)) {
		return nil, &smithy.GenericAPIError{Code: "ServiceFailure", Message: "try again"}
	}
	return u.IAMAPI.DeleteAccessKey(ctx, in, opts...)
}

func secretsClient(m *awstest.Server) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{Region: "us-east-1", Credentials: m.AdminProvider(), BaseEndpoint: aws.String(m.URL)})
}

// stored reads the replacement kept under name.
func stored(t *testing.T, m *awstest.Server, name string) replacementValue {
	t.Helper()
	out, err := secretsClient(m).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("the replacement is not in Secrets Manager as %s: %v", name, err)
	}
	var v replacementValue
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// keyCount is how many keys user has.
func keyCount(t *testing.T, m *awstest.Server, user string) int {
	t.Helper()
	out, err := m.IAM().ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.AccessKeyMetadata)
}

func auditSteps(t *testing.T, st *store.Store, keyID string) string {
	t.Helper()
	log, err := st.AuditLog(context.Background(), keyID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range log {
		out = append(out, r.Action+":"+r.Outcome)
		for _, field := range []string{r.Detail, r.Before, r.After} {
			if strings.Contains(field, "SecretAccessKey") {
				t.Errorf("the audit record of step %s holds a secret (not printed)", r.Action)
			}
		}
	}
	return strings.Join(out, " ")
}

// TestRotateMoto: respond = "rotate" gives the user a working replacement,
// kept in Secrets Manager (tagged), before the leaked key is deactivated
// and deleted; a second leak adds a version to the user's secret.
func TestRotateMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	id, sec := m.UserKey(t, "rotated")
	st := testStore(t)
	r, _ := motoResponder(t, m, m.AdminProvider(), Options{Policy: Rotate, Store: st})
	res := scan(ctx, m, r, id, sec, "")
	if res.Action != ActionDeleted || res.Err != nil || res.Replacement == nil {
		t.Fatalf("rotate: %+v", res)
	}
	if s := m.KeyStatus(t, "rotated", id); s != "" {
		t.Errorf("the leaked key is %q, want deleted", s)
	}
	name := "keyburn/rotated/123456789012/rotated"
	if res.Replacement.Secret != name || res.Replacement.KeyID == "" || res.Replacement.KeyID == id {
		t.Fatalf("replacement %+v, want a new key kept as %s", res.Replacement, name)
	}
	v := stored(t, m, name)
	if v.AccessKeyID != res.Replacement.KeyID || v.UserName != "rotated" || v.Replaces != id || len(v.SecretAccessKey) != 40 {
		t.Errorf("stored %+v (secret of %d characters)", v.AccessKeyID, len(v.SecretAccessKey))
	}
	// The replacement works: STS knows it as the user.
	who, err := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(m.URL),
		Credentials: credentials.NewStaticCredentialsProvider(v.AccessKeyID, v.SecretAccessKey, "")}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || !strings.HasSuffix(aws.ToString(who.Arn), ":user/rotated") {
		t.Errorf("the replacement does not sign as the user: %v, %v", who, err)
	}
	desc, err := secretsClient(m).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range desc.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["keyburn:user"] != "rotated" || tags["keyburn:replaces"] != id || tags["keyburn:audit"] != "keyburn scan audit --key "+id {
		t.Errorf("tags %v", tags)
	}
	steps := auditSteps(t, st, id)
	for _, want := range []string{"rotate-create:started rotate-create:ok rotate-store:ok deactivate:started", "delete:ok"} {
		if !strings.Contains(steps, want) {
			t.Errorf("audit %s: want %s (the replacement kept before the leaked key stops)", steps, want)
		}
	}
	if strings.Contains(res.Reason, v.SecretAccessKey) || strings.Contains(steps, v.SecretAccessKey) {
		t.Error("the new secret leaked into the result or the audit log")
	}

	// The replacement leaks too: a new version of the same secret.
	res2 := scan(ctx, m, r, v.AccessKeyID, v.SecretAccessKey, "")
	if res2.Action != ActionDeleted || res2.Replacement == nil || res2.Replacement.Secret != name {
		t.Fatalf("second rotation: %+v", res2)
	}
	if v2 := stored(t, m, name); v2.AccessKeyID != res2.Replacement.KeyID || v2.Replaces != v.AccessKeyID {
		t.Errorf("the secret holds %s replacing %s, want the newest key", v2.AccessKeyID, v2.Replaces)
	}
}

// TestRotateSettingsMoto: the operator's name pattern (with a user name
// Secrets Manager would refuse as is) and KMS key are used.
func TestRotateSettingsMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	id, sec := m.UserKey(t, "ops,team")
	r, _ := motoResponder(t, m, m.AdminProvider(), Options{Policy: Rotate, RotateSecretName: "keyburn/{account}/{user}/{key_id}",
		RotateKMSKey: "alias/keyburn-rotated"})
	res := scan(ctx, m, r, id, sec, "")
	want := "keyburn/123456789012/ops_team/" + id
	if res.Replacement == nil || res.Replacement.Secret != want {
		t.Fatalf("%+v: want the replacement kept as %s", res, want)
	}
	desc, err := secretsClient(m).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(want)})
	if err != nil || aws.ToString(desc.KmsKeyId) != "alias/keyburn-rotated" {
		t.Errorf("secret %s: KMS key %q, %v; want alias/keyburn-rotated", want, aws.ToString(desc.KmsKeyId), err)
	}
}

// TestRotateFailuresMoto: the rails and failure paths of rotation.
func TestRotateFailuresMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()

	t.Run("dry run creates nothing", func(t *testing.T) {
		id, sec := m.UserKey(t, "dry")
		st := testStore(t)
		r, g := motoResponder(t, m, m.AdminProvider(), Options{Policy: Rotate, DryRun: true, Store: st})
		res := scan(ctx, m, r, id, sec, "")
		if res.Action != ActionDryRun || !strings.Contains(res.Reason, "would create a replacement key") || g.mutations != 0 {
			t.Errorf("dry run: %+v, %d mutations", res, g.mutations)
		}
		if n := keyCount(t, m, "dry"); n != 1 {
			t.Errorf("user has %d keys after a dry run", n)
		}
		if _, err := secretsClient(m).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("keyburn/rotated/123456789012/dry")}); err == nil {
			t.Error("a dry run created a secret")
		}
	})

	t.Run("no free slot: no replacement, the leaked key dies anyway", func(t *testing.T) {
		id, sec := m.UserKey(t, "full")
		m.UserKey(t, "full")
		st := testStore(t)
		r, _ := motoResponder(t, m, m.AdminProvider(), Options{Policy: Rotate, Store: st})
		res := scan(ctx, m, r, id, sec, "")
		if res.Action != ActionDeleted || res.Replacement != nil || !strings.Contains(res.Reason, "has 2 keys") {
			t.Errorf("%+v", res)
		}
		if n := keyCount(t, m, "full"); n != 1 {
			t.Errorf("user has %d keys, want the other one only", n)
		}
	})

	t.Run("a replacement that cannot be kept is deleted again", func(t *testing.T) {
		id, sec := m.UserKey(t, "unkept")
		st := testStore(t)
		r, _ := motoResponder(t, m, m.AdminProvider(), Options{Policy: Rotate, Store: st,
			testOnlySecrets: func(string) SecretsAPI { return failingSecrets{secretsClient(m)} }})
		res := scan(ctx, m, r, id, sec, "")
		if res.Action != ActionDeleted || res.Replacement != nil || !strings.Contains(res.Reason, "could not be kept in Secrets Manager") || res.Err != nil {
			t.Errorf("%+v", res)
		}
		if n := keyCount(t, m, "unkept"); n != 0 {
			t.Errorf("user has %d keys: the unkept replacement is an orphaned live key", n)
		}
		if steps := auditSteps(t, st, id); !strings.Contains(steps, "rotate-store:failed rotate-undo:started rotate-undo:ok") {
			t.Errorf("audit %s", steps)
		}
	})

	t.Run("a replacement neither kept nor deleted is an error naming it", func(t *testing.T) {
		id, sec := m.UserKey(t, "stuck")
		st := testStore(t)
		r, g := motoResponder(t, m, m.AdminProvider(), Options{Policy: Rotate, Store: st,
			testOnlySecrets: func(string) SecretsAPI { return failingSecrets{secretsClient(m)} }})
		r.opts.testOnlyIAM = func(string) IAMAPI { return undeletable{IAMAPI: g, keep: func(k string) bool { return k != id }} }
		r.clients = map[string]IAMAPI{}
		res := scan(ctx, m, r, id, sec, "")
		if res.Err == nil || !strings.Contains(res.Err.Error(), "COULD NOT BE DELETED AGAIN") {
			t.Errorf("%+v: want an error naming the orphaned key", res)
		}
		if s := m.KeyStatus(t, "stuck", id); s != "" {
			t.Errorf("the leaked key is %q: it goes the normal way whatever the rotation met", s)
		}
		if !strings.Contains(res.Err.Error(), "it is Inactive") {
			t.Errorf("%v: want the orphan deactivated at least", res.Err)
		}
	})

	t.Run("the responder's own user is never rotated", func(t *testing.T) {
		before := keyCount(t, m, "admin")
		st := testStore(t)
		r, g := motoResponder(t, m, m.AdminProvider(), Options{Policy: Rotate, Store: st})
		res := scan(ctx, m, r, m.Admin.AccessKeyID, m.Admin.SecretAccessKey, "")
		if res.Action != ActionSkipped || g.mutations != 0 || keyCount(t, m, "admin") != before {
			t.Errorf("%+v, %d mutations", res, g.mutations)
		}
	})
}

// memSecrets is Secrets Manager in memory, counting what it keeps.
type memSecrets struct {
	mu   sync.Mutex
	kept map[string]string
}

func (m *memSecrets) CreateSecret(_ context.Context, in *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.kept[aws.ToString(in.Name)]; ok {
		return nil, &smithy.GenericAPIError{Code: "ResourceExistsException"}
	}
	m.kept[aws.ToString(in.Name)] = aws.ToString(in.SecretString)
	return &secretsmanager.CreateSecretOutput{ARN: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:" + aws.ToString(in.Name))}, nil
}

func (m *memSecrets) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kept[aws.ToString(in.SecretId)] = aws.ToString(in.SecretString)
	return &secretsmanager.PutSecretValueOutput{}, nil
}

func (m *memSecrets) TagResource(context.Context, *secretsmanager.TagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error) {
	return &secretsmanager.TagResourceOutput{}, nil
}

// TestRotateOnceAcrossProcesses: three responders sharing one PostgreSQL
// state rotate the same leaked key at once, with a soak (the key stays
// until due): one replacement is made, by whichever holds the key's lock
// first; the others find it in the audit log.
func TestRotateOnceAcrossProcesses(t *testing.T) {
	url := pgtest.Private(t)
	ctx := context.Background()
	fake := newFake(iamtypes.StatusTypeActive)
	sm := &memSecrets{kept: map[string]string{}}
	arrive := barrier(3)
	alice := live("arn:aws:iam::123456789012:user/alice")
	var wg sync.WaitGroup
	results := make(chan Result, 3)
	for range 3 {
		st, err := store.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		r := responder(t, barrierIAM{IAMAPI: fake, arrive: arrive}, Options{Policy: Rotate, Soak: time.Hour, Store: st,
			testOnlySecrets: func(string) SecretsAPI { return sm }}, selfUser)
		wg.Go(func() { results <- r.Respond(ctx, Key{ID: key}, alice) })
	}
	wg.Wait()
	close(results)
	made := 0
	for res := range results {
		if res.Replacement != nil {
			made++
		} else if !strings.Contains(res.Reason, "a replacement was made already") {
			t.Errorf("%+v: want the replacement found in the audit log", res)
		}
	}
	if creates := strings.Count(fake.callList(), "create"); creates != 1 || made != 1 || len(sm.kept) != 1 {
		t.Errorf("%d CreateAccessKey calls, %d results with a replacement, %d secrets; want one each", creates, made, len(sm.kept))
	}
}

// TestRotateAfterAKilledRun: a run killed between creating a replacement
// and keeping it left a live key nobody knows the secret of. The next
// rotation of the same leaked key deletes that orphan first (found by the
// audit log: by its ID when the creation was recorded, else by when it
// was created), then makes and keeps a new replacement.
func TestRotateAfterAKilledRun(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	for _, recorded := range []bool{true, false} {
		user := map[bool]string{true: "killed-after-record", false: "killed-before-record"}[recorded]
		t.Run(user, func(t *testing.T) {
			id, sec := m.UserKey(t, user)
			st := testStore(t)
			r, _ := motoResponder(t, m, m.AdminProvider(), Options{Policy: Rotate, Store: st})
			// What the killed run did: the intent recorded, the key made,
			// (its creation recorded,) nothing kept.
			a := r.auditor(id, "123456789012", user)
			if err := a.write(ctx, store.AuditRecord{Action: stepRotateCreate, Outcome: outStarted, Detail: "a replacement key for user " + user}); err != nil {
				t.Fatal(err)
			}
			orphan, _ := m.UserKey(t, user)
			if recorded {
				if err := a.write(ctx, store.AuditRecord{Action: stepRotateCreate, Outcome: outOK, Detail: "new key " + orphan + " for user " + user}); err != nil {
					t.Fatal(err)
				}
			}
			res := scan(ctx, m, r, id, sec, "")
			if res.Action != ActionDeleted || res.Replacement == nil || res.Err != nil {
				t.Fatalf("%+v: want a replacement made and the leaked key deleted", res)
			}
			if s := m.KeyStatus(t, user, orphan); s != "" {
				t.Errorf("the orphan %s is %q: a live key nobody can use or knows of", orphan, s)
			}
			if s := m.KeyStatus(t, user, res.Replacement.KeyID); s != "Active" {
				t.Errorf("the new replacement is %q", s)
			}
			if steps := auditSteps(t, st, id); !strings.Contains(steps, "rotate-undo:started rotate-undo:ok") {
				t.Errorf("audit %s: want the orphan's deletion", steps)
			}
		})
	}
}
