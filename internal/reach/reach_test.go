package reach

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/keyburn/keyburn/internal/awstest"
	"github.com/keyburn/keyburn/internal/finding"
)

// TestReachMoto: four users as the issue names them, and two that test
// the edges, in moto's IAM (users, groups, attached and inline policies, a
// boundary, roles with trust policies), read with the admin's credentials:
//
//   - admin: AdministratorAccess attached: admin, critical;
//   - iam-manager: an inline iam:* policy: iam, critical;
//   - reader: in a group with a customer policy of s3:GetObject and
//     secretsmanager:GetSecretValue: data, high;
//   - empty: nothing: none, medium;
//   - bounded: iam:* inline, boundary of s3:GetObject only: capped at data;
//   - ci: nothing of its own, but a role trusting it is an administrator.
func TestReachMoto(t *testing.T) {
	m := awstest.Start(t)
	ctx := context.Background()
	c := m.IAM()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	policy := func(actions string) *string {
		return aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":` + actions + `,"Resource":"*"}]}`)
	}
	for _, u := range []string{"admin-user", "iam-manager", "reader", "empty", "ci"} {
		must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(u)}))
	}
	must(c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String("admin-user"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")}))
	must(c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("iam-manager"), PolicyName: aws.String("manage-iam"), PolicyDocument: policy(`"iam:*"`)}))
	readOnly, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("read-data"), PolicyDocument: policy(`["s3:GetObject","s3:ListBucket","secretsmanager:GetSecretValue"]`)})
	if err != nil {
		t.Fatal(err)
	}
	must(c.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("readers")}))
	must(c.AttachGroupPolicy(ctx, &iam.AttachGroupPolicyInput{GroupName: aws.String("readers"), PolicyArn: readOnly.Policy.Arn}))
	must(c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String("readers"), UserName: aws.String("reader")}))
	// moto keeps no boundary for users (roles only): boundedIAM answers
	// GetUser with it, as IAM would.
	must(c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bounded"), PermissionsBoundary: readOnly.Policy.Arn}))
	must(c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("bounded"), PolicyName: aws.String("manage-iam"), PolicyDocument: policy(`"iam:*"`)}))
	must(c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("deploy"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/ci"},"Action":"sts:AssumeRole"}]}`)}))
	must(c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("deploy"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")}))

	tests := []struct {
		user, level, severity string
		why                   string
	}{
		{"admin-user", finding.ReachAdmin, "critical", "admin: * on * (AdministratorAccess (attached to user admin-user))"},
		{"iam-manager", finding.ReachIAM, "critical", "iam: iam:* (manage-iam (inline in user iam-manager))"},
		{"reader", finding.ReachData, "high", "data: s3:GetObject (read-data (attached to group readers))"},
		{"empty", finding.ReachNone, "medium", ""},
		{"bounded", finding.ReachData, "high", "capped by the boundary at data"},
		{"ci", finding.ReachAdmin, "critical", "through role deploy: admin: * on *"},
	}
	reader := boundedIAM{IAM: c, user: "bounded", boundary: aws.ToString(readOnly.Policy.Arn)}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			r := Of(ctx, reader, tt.user, "arn:aws:iam::123456789012:user/"+tt.user)
			if r.Level != tt.level || r.Severity() != tt.severity || !strings.Contains(strings.Join(r.Why, "; "), tt.why) || len(r.Unread) != 0 {
				t.Errorf("reach of %s: %s (%s), why %q, unread %q; want %s (%s), why containing %q", tt.user, r.Level, r.Severity(), r.Why, r.Unread, tt.level, tt.severity, tt.why)
			}
			t.Logf("%s: %s", tt.user, r.Summary())
		})
	}
	if r := Of(ctx, c, "ci", "arn:aws:iam::123456789012:user/ci"); len(r.Roles) != 1 || r.Roles[0] != "deploy (admin)" {
		t.Errorf("ci's roles: %v", r.Roles)
	}
}

// boundedIAM is moto's IAM, with the permissions boundary of one user that
// moto does not keep.
type boundedIAM struct {
	IAM
	user, boundary string
}

func (b boundedIAM) GetUser(ctx context.Context, in *iam.GetUserInput, opts ...func(*iam.Options)) (*iam.GetUserOutput, error) {
	out, err := b.IAM.GetUser(ctx, in, opts...)
	if err == nil && aws.ToString(in.UserName) == b.user {
		out.User.PermissionsBoundary = &iamtypes.AttachedPermissionsBoundary{PermissionsBoundaryArn: aws.String(b.boundary),
			PermissionsBoundaryType: iamtypes.PermissionsBoundaryAttachmentTypePolicy}
	}
	return out, err
}

// denied is IAM refusing every read.
type denied struct{ IAM }

func (denied) err() error {
	return &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized"}
}
func (d denied) GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error) {
	return nil, d.err()
}
func (d denied) ListAttachedUserPolicies(context.Context, *iam.ListAttachedUserPoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error) {
	return nil, d.err()
}
func (d denied) ListUserPolicies(context.Context, *iam.ListUserPoliciesInput, ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error) {
	return nil, d.err()
}
func (d denied) ListGroupsForUser(context.Context, *iam.ListGroupsForUserInput, ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error) {
	return nil, d.err()
}
func (d denied) ListRoles(context.Context, *iam.ListRolesInput, ...func(*iam.Options)) (*iam.ListRolesOutput, error) {
	return nil, d.err()
}

// TestReachUnread: without permission to read IAM, the reach is unknown
// (severity high, not medium) and says what could not be read and why.
func TestReachUnread(t *testing.T) {
	r := Of(context.Background(), denied{}, "alice", "arn:aws:iam::123456789012:user/alice")
	if r.Level != finding.ReachUnknown || r.Severity() != "high" || len(r.Unread) == 0 || !strings.Contains(r.Summary(), "no permission (AccessDenied)") {
		t.Errorf("reach %+v: %s", r, r.Summary())
	}
}

// TestSum: policy statements as IAM writes them, summed.
func TestSum(t *testing.T) {
	tests := []struct {
		doc, level string
	}{
		{`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, finding.ReachAdmin},
		{`{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}`, finding.ReachAdmin},
		{`{"Statement":[{"Effect":"Allow","Action":["IAM:Attach*"],"Resource":"*"}]}`, finding.ReachIAM},
		{`{"Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::123456789012:role/*"}]}`, finding.ReachIAM},
		{`{"Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::*"}]}`, finding.ReachData},
		{`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::one-bucket/report.csv"}]}`, finding.ReachNone},
		{`{"Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}`, finding.ReachCompute},
		{`{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`, finding.ReachNone},
		{`{"Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}`, finding.ReachNone},
		{`%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D`, finding.ReachAdmin},
		{`not a policy`, finding.ReachNone},
	}
	for _, tt := range tests {
		if level, why := sum([]grant{{policy: "p", doc: tt.doc}}); level != tt.level {
			t.Errorf("sum(%s) = %s %v, want %s", tt.doc, level, why, tt.level)
		}
	}
}

// FuzzStatements: no policy document makes the reader panic.
func FuzzStatements(f *testing.F) {
	f.Add(`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`)
	f.Add(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"sts:AssumeRole"}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		sum([]grant{{policy: "p", doc: doc}})
		trusts(doc, "arn:aws:iam::123456789012:user/a", "123456789012")
	})
}
