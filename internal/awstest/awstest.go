// Package awstest runs a real AWS emulator (moto_server, from Python's moto)
// on a free loopback port for tests, with SigV4 authentication enforced: an
// unknown key gets InvalidClientTokenId, a wrong secret SignatureDoesNotMatch.
//
// Where moto_server is missing, tests skip with a loud message, except in CI
// (CI=true), where that is a failure.
package awstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyburn/keyburn/internal/testtools"
)

// Server is a running moto_server.
type Server struct {
	URL string
	// Admin is a user allowed everything: the responder's credentials.
	Admin aws.Credentials
	iam   *iam.Client
}

// setupCalls is how many unauthenticated calls the setup makes before moto
// starts enforcing authentication: create the admin user, give it a policy,
// create its key.
const setupCalls = 3

// ErrNoMoto is returned by Run when moto_server is not installed.
var ErrNoMoto = fmt.Errorf("moto_server is not installed (pip install 'moto[server]')")

// Start starts moto_server for the test and stops it at the end.
func Start(t testing.TB) *Server {
	t.Helper()
	s, stop, err := Run()
	if err == ErrNoMoto {
		testtools.Missing(t, "moto_server", "pip install 'moto[server]'", "the AWS integration tests")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s
}

// setupTries is how many times Run starts moto afresh when its setup
// fails: a setup call the SDK sent twice (a retry under load) counts twice
// against INITIAL_NO_AUTH_ACTION_COUNT, and the last setup call is then
// refused; a fresh server counts from zero.
const setupTries = 3

// Run starts moto_server, for programs (the benchmarks); stop ends it.
func Run() (s *Server, stop func(), err error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, nil, ErrNoMoto
	}
	for try := 1; ; try++ {
		s, stop, err = start(bin)
		if err == nil || try == setupTries || !errors.Is(err, errSetup) {
			return s, stop, err
		}
	}
}

// errSetup marks a failed setup call.
var errSetup = errors.New("moto setup")

func start(bin string) (s *Server, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), fmt.Sprintf("INITIAL_NO_AUTH_ACTION_COUNT=%d", setupCalls),
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "MOTO_ALLOW_NONEXISTENT_REGION=true",
		// AWS managed policies (AdministratorAccess …) exist, as in AWS.
		"MOTO_IAM_LOAD_MANAGED_POLICIES=true")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start moto_server: %w", err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	s = &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	// Wait for it to answer: at most 30 s, in 100 ms steps.
	ready := false
	for range 300 {
		resp, err := http.Get(s.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			ready = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !ready {
		stop()
		return nil, nil, fmt.Errorf("moto_server did not answer on %s within 30 s; its output:\n%s", s.URL, logs.String())
	}
	ctx := context.Background()
	// Any signature passes during setup (it names the service). Each call
	// is made once: a retry would count twice.
	anon := iam.New(iam.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("setup", "setup", ""),
		BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1})
	fail := func(err error) (*Server, func(), error) {
		stop()
		return nil, nil, fmt.Errorf("%w: %w", errSetup, err)
	}
	if _, err := anon.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("admin")}); err != nil {
		return fail(err)
	}
	if _, err := anon.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("admin"), PolicyName: aws.String("all"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)}); err != nil {
		return fail(err)
	}
	key, err := anon.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("admin")})
	if err != nil {
		return fail(err)
	}
	s.Admin = aws.Credentials{AccessKeyID: aws.ToString(key.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(key.AccessKey.SecretAccessKey)}
	s.iam = s.client(credentials.NewStaticCredentialsProvider(s.Admin.AccessKeyID, s.Admin.SecretAccessKey, ""))
	return s, stop, nil
}

func (s *Server) client(creds aws.CredentialsProvider) *iam.Client {
	return iam.New(iam.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(s.URL)})
}

// AdminProvider returns the admin's credentials as a provider.
func (s *Server) AdminProvider() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.Admin.AccessKeyID, s.Admin.SecretAccessKey, "")
}

// UserKey creates a user (if need be) and an access key for it.
func (s *Server) UserKey(t testing.TB, user string) (keyID, secret string) {
	t.Helper()
	keyID, secret, err := s.NewUserKey(user)
	if err != nil {
		t.Fatal(err)
	}
	return keyID, secret
}

// NewUserKey is UserKey for programs.
func (s *Server) NewUserKey(user string) (keyID, secret string, err error) {
	ctx := context.Background()
	_, err = s.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)})
	if err != nil && !strings.Contains(err.Error(), "EntityAlreadyExists") {
		return "", "", fmt.Errorf("create user %s: %w", user, err)
	}
	out, err := s.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	if err != nil {
		return "", "", fmt.Errorf("create access key for %s: %w", user, err)
	}
	return aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey), nil
}

// KeyStatus returns a key's status (Active, Inactive), or "" once deleted.
func (s *Server) KeyStatus(t testing.TB, user, keyID string) string {
	t.Helper()
	st, err := s.Status(user, keyID)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Status is KeyStatus for programs.
func (s *Server) Status(user, keyID string) (string, error) {
	out, err := s.iam.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		return "", fmt.Errorf("list keys of %s: %w", user, err)
	}
	for _, k := range out.AccessKeyMetadata {
		if aws.ToString(k.AccessKeyId) == keyID {
			return string(k.Status), nil
		}
	}
	return "", nil
}

// SetKeyStatus sets a key Active or Inactive, as its owner would.
func (s *Server) SetKeyStatus(t testing.TB, user, keyID, status string) {
	t.Helper()
	if _, err := s.iam.UpdateAccessKey(context.Background(), &iam.UpdateAccessKeyInput{UserName: aws.String(user),
		AccessKeyId: aws.String(keyID), Status: iamtypes.StatusType(status)}); err != nil {
		t.Fatalf("set key %s %s: %v", keyID, status, err)
	}
}

// IAM returns an IAM client signed with the admin's credentials.
func (s *Server) IAM() *iam.Client { return s.iam }

// DeleteKey deletes a key.
func (s *Server) DeleteKey(t testing.TB, user, keyID string) {
	t.Helper()
	if _, err := s.iam.DeleteAccessKey(context.Background(), &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(keyID)}); err != nil {
		t.Fatalf("delete key: %v", err)
	}
}

// RoleSession creates a role (if need be) and assumes it with the admin's
// credentials, returning temporary credentials of a session named "leaked".
func (s *Server) RoleSession(role string) (keyID, secret, token string, err error) {
	return s.NamedRoleSession(role, "leaked")
}

// NamedRoleSession is RoleSession with a session name.
func (s *Server) NamedRoleSession(role, session string) (keyID, secret, token string, err error) {
	ctx := context.Background()
	_, err = s.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil && !strings.Contains(err.Error(), "EntityAlreadyExists") {
		return "", "", "", fmt.Errorf("create role %s: %w", role, err)
	}
	if _, err := s.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String("all"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)}); err != nil {
		return "", "", "", fmt.Errorf("allow role %s: %w", role, err)
	}
	stsc := sts.New(sts.Options{Region: "us-east-1", Credentials: s.AdminProvider(), BaseEndpoint: aws.String(s.URL)})
	out, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/" + role),
		RoleSessionName: aws.String(session)})
	if err != nil {
		return "", "", "", fmt.Errorf("assume role %s: %w", role, err)
	}
	c := out.Credentials
	return aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken), nil
}

// RolePolicy returns the inline policy document of a role, "" if none.
func (s *Server) RolePolicy(role, name string) (string, error) {
	out, err := s.iam.GetRolePolicy(context.Background(), &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name)})
	if err != nil {
		return "", err
	}
	// IAM returns policy documents URL-encoded.
	return url.QueryUnescape(aws.ToString(out.PolicyDocument))
}
