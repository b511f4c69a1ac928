// Package awstest runs a real AWS emulator (moto_server, from Python's moto)
// on a free loopback port for tests, with SigV4 authentication enforced: an
// unknown key gets InvalidClientTokenId, a wrong secret SignatureDoesNotMatch.
//
// Where moto_server is missing, tests skip with a loud message, except in CI
// (CI=true), where that is a failure.
package awstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
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

// Start starts moto_server for the test and stops it at the end.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("moto_server is not installed, and CI needs it for the AWS integration tests (pip install 'moto[server]')")
		}
		t.Skipf("SKIPPING AWS INTEGRATION TEST: moto_server is not installed (pip install 'moto[server]')")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), fmt.Sprintf("INITIAL_NO_AUTH_ACTION_COUNT=%d", setupCalls),
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "MOTO_ALLOW_NONEXISTENT_REGION=true")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
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
		t.Fatalf("moto_server did not answer on %s within 30 s; its output:\n%s", s.URL, logs.String())
	}
	ctx := context.Background()
	anon := s.client(credentials.NewStaticCredentialsProvider("setup", "setup", "")) // any signature passes during setup; it names the service
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("moto setup: %v", err)
		}
	}
	_, err = anon.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("admin")})
	must(err)
	_, err = anon.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("admin"), PolicyName: aws.String("all"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)})
	must(err)
	key, err := anon.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("admin")})
	must(err)
	s.Admin = aws.Credentials{AccessKeyID: aws.ToString(key.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(key.AccessKey.SecretAccessKey)}
	s.iam = s.client(credentials.NewStaticCredentialsProvider(s.Admin.AccessKeyID, s.Admin.SecretAccessKey, ""))
	return s
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
	ctx := context.Background()
	_, err := s.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)})
	if err != nil && !strings.Contains(err.Error(), "EntityAlreadyExists") {
		t.Fatalf("create user %s: %v", user, err)
	}
	out, err := s.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatalf("create access key for %s: %v", user, err)
	}
	return aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey)
}

// KeyStatus returns a key's status (Active, Inactive), or "" once deleted.
func (s *Server) KeyStatus(t testing.TB, user, keyID string) string {
	t.Helper()
	out, err := s.iam.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatalf("list keys of %s: %v", user, err)
	}
	for _, k := range out.AccessKeyMetadata {
		if aws.ToString(k.AccessKeyId) == keyID {
			return string(k.Status)
		}
	}
	return ""
}

// DeleteKey deletes a key.
func (s *Server) DeleteKey(t testing.TB, user, keyID string) {
	t.Helper()
	if _, err := s.iam.DeleteAccessKey(context.Background(), &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(keyID)}); err != nil {
		t.Fatalf("delete key: %v", err)
	}
}

var _ = iamtypes.StatusTypeActive
