// Package reach answers the question a leaked key is triaged by: what
// could an attacker do with it? It reads the key's IAM user with keyburn's
// own credentials in the key's account (never with the key): its attached
// and inline policies, its groups and theirs, its permissions boundary,
// and the roles whose trust policy names it, and sums them up as a level
// (admin, iam, data, compute, none) with the action and policy behind it.
//
// It reads what the policies allow; explicit denies, service control
// policies and resource policies can only take away from it, so the level
// is an upper bound. Every read is bounded (pages, calls), and what could
// not be read is said.
package reach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"

	"github.com/keyburn/keyburn/internal/finding"
)

// IAM is the read-only IAM calls reach makes.
type IAM interface {
	GetUser(ctx context.Context, in *iam.GetUserInput, opts ...func(*iam.Options)) (*iam.GetUserOutput, error)
	ListAttachedUserPolicies(ctx context.Context, in *iam.ListAttachedUserPoliciesInput, opts ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error)
	ListUserPolicies(ctx context.Context, in *iam.ListUserPoliciesInput, opts ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error)
	GetUserPolicy(ctx context.Context, in *iam.GetUserPolicyInput, opts ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error)
	ListGroupsForUser(ctx context.Context, in *iam.ListGroupsForUserInput, opts ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error)
	ListAttachedGroupPolicies(ctx context.Context, in *iam.ListAttachedGroupPoliciesInput, opts ...func(*iam.Options)) (*iam.ListAttachedGroupPoliciesOutput, error)
	ListGroupPolicies(ctx context.Context, in *iam.ListGroupPoliciesInput, opts ...func(*iam.Options)) (*iam.ListGroupPoliciesOutput, error)
	GetGroupPolicy(ctx context.Context, in *iam.GetGroupPolicyInput, opts ...func(*iam.Options)) (*iam.GetGroupPolicyOutput, error)
	GetPolicy(ctx context.Context, in *iam.GetPolicyInput, opts ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(ctx context.Context, in *iam.GetPolicyVersionInput, opts ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
	ListRoles(ctx context.Context, in *iam.ListRolesInput, opts ...func(*iam.Options)) (*iam.ListRolesOutput, error)
	ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, opts ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, opts ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, opts ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
}

// Bounds on what one key's reach reads.
const (
	maxPolicies = 40 // policy documents, all principals together
	maxGroups   = 10 // groups of the user
	maxRolePage = 10 // pages of ListRoles (100 roles each)
	maxRoles    = 5  // assumable roles whose policies are read
	maxDoc      = 1 << 17
)

// capabilities are the actions each level is granted by, most first. A
// policy action pattern (with * and ?) that matches one grants its level.
var capabilities = []struct {
	level   string
	actions []string
}{
	{finding.ReachIAM, []string{"iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile",
		"iam:AttachUserPolicy", "iam:AttachGroupPolicy", "iam:AttachRolePolicy", "iam:PutUserPolicy", "iam:PutGroupPolicy",
		"iam:PutRolePolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:AddUserToGroup",
		"iam:UpdateAssumeRolePolicy", "iam:PassRole"}},
	{finding.ReachData, []string{"s3:GetObject", "secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParameters",
		"ssm:GetParametersByPath", "dynamodb:Scan", "dynamodb:GetItem", "kms:Decrypt", "rds:CopyDBSnapshot"}},
	{finding.ReachCompute, []string{"ec2:RunInstances", "lambda:CreateFunction", "lambda:UpdateFunctionCode", "ecs:RunTask",
		"batch:SubmitJob", "sagemaker:CreateNotebookInstance"}},
}

// rank orders levels: lower is more.
func rank(level string) int {
	return slices.Index([]string{finding.ReachAdmin, finding.ReachIAM, finding.ReachData, finding.ReachCompute, finding.ReachNone}, level)
}

// reader reads one key's reach, within its bounds.
type reader struct {
	ctx   context.Context
	c     IAM
	docs  int
	reach *finding.Reach
}

// Of reads the reach of an IAM user, arn its ARN (for trust policies).
func Of(ctx context.Context, c IAM, user, arn string) *finding.Reach {
	r := &reader{ctx: ctx, c: c, reach: &finding.Reach{Level: finding.ReachNone}}
	grants := r.principal("user", user)
	level, why := sum(grants)
	out, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(user)})
	if err != nil {
		r.unread("user "+user, err)
	} else if b := out.User.PermissionsBoundary; b != nil && b.PermissionsBoundaryArn != nil {
		r.reach.Boundary = aws.ToString(b.PermissionsBoundaryArn)
		if doc, ok := r.managed(aws.ToString(b.PermissionsBoundaryArn)); ok {
			if cap, _ := sum([]grant{{policy: "boundary", doc: doc}}); rank(cap) > rank(level) {
				level, why = cap, append(why, "capped by the boundary at "+cap)
			}
		}
	}
	for _, role := range r.assumable(arn) {
		rl, rwhy := sum(r.principal("role", role))
		r.reach.Roles = append(r.reach.Roles, role+" ("+rl+")")
		if rank(rl) < rank(level) {
			level = rl
			why = append(why, "through role "+role+": "+strings.Join(rwhy, ", "))
		}
	}
	r.reach.Level, r.reach.Why = level, why
	if len(r.reach.Unread) > 0 && level == finding.ReachNone {
		r.reach.Level = finding.ReachUnknown
	}
	return r.reach
}

// OfRole reads the reach of a role's sessions (a leaked temporary key).
func OfRole(ctx context.Context, c IAM, role string) *finding.Reach {
	r := &reader{ctx: ctx, c: c, reach: &finding.Reach{Level: finding.ReachNone}}
	r.reach.Level, r.reach.Why = sum(r.principal("role", role))
	if len(r.reach.Unread) > 0 && r.reach.Level == finding.ReachNone {
		r.reach.Level = finding.ReachUnknown
	}
	return r.reach
}

// grant is one policy document and where it comes from.
type grant struct {
	policy string // "AdministratorAccess (attached to group admins)"
	doc    string
}

func (r *reader) unread(what string, err error) {
	msg := err.Error()
	var ae smithy.APIError
	if errors.As(err, &ae) {
		msg = ae.ErrorCode()
		if ae.ErrorCode() == "AccessDenied" {
			msg = "no permission (AccessDenied)"
		}
	}
	r.reach.Unread = append(r.reach.Unread, what+": "+msg)
}

// principal reads the documents of a user's or a role's policies, and for
// a user its groups'.
func (r *reader) principal(kind, name string) []grant {
	var out []grant
	var attached []struct{ name, arn string }
	var inline []string
	var err error
	switch kind {
	case "user":
		a, e := r.c.ListAttachedUserPolicies(r.ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(name)})
		if err = e; e == nil {
			for _, p := range a.AttachedPolicies {
				attached = append(attached, struct{ name, arn string }{aws.ToString(p.PolicyName), aws.ToString(p.PolicyArn)})
			}
		}
	case "role":
		a, e := r.c.ListAttachedRolePolicies(r.ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
		if err = e; e == nil {
			for _, p := range a.AttachedPolicies {
				attached = append(attached, struct{ name, arn string }{aws.ToString(p.PolicyName), aws.ToString(p.PolicyArn)})
			}
		}
	case "group":
		a, e := r.c.ListAttachedGroupPolicies(r.ctx, &iam.ListAttachedGroupPoliciesInput{GroupName: aws.String(name)})
		if err = e; e == nil {
			for _, p := range a.AttachedPolicies {
				attached = append(attached, struct{ name, arn string }{aws.ToString(p.PolicyName), aws.ToString(p.PolicyArn)})
			}
		}
	}
	if err != nil {
		r.unread("the policies attached to "+kind+" "+name, err)
	}
	for _, p := range attached {
		r.reach.Policies = append(r.reach.Policies, p.name)
		if doc, ok := r.managed(p.arn); ok {
			out = append(out, grant{policy: p.name + " (attached to " + kind + " " + name + ")", doc: doc})
		}
	}
	inline, err = r.inlineNames(kind, name)
	if err != nil {
		r.unread("the inline policies of "+kind+" "+name, err)
	}
	for _, p := range inline {
		if !r.budget() {
			r.reach.Unread = append(r.reach.Unread, "inline policy "+p+" of "+kind+" "+name+": over keyburn's bound of policies read")
			continue
		}
		doc, err := r.inlineDoc(kind, name, p)
		if err != nil {
			r.unread("inline policy "+p+" of "+kind+" "+name, err)
			continue
		}
		r.reach.Policies = append(r.reach.Policies, p)
		out = append(out, grant{policy: p + " (inline in " + kind + " " + name + ")", doc: doc})
	}
	if kind == "user" {
		gs, err := r.c.ListGroupsForUser(r.ctx, &iam.ListGroupsForUserInput{UserName: aws.String(name)})
		if err != nil {
			r.unread("the groups of user "+name, err)
			return out
		}
		for i, g := range gs.Groups {
			if i == maxGroups {
				r.reach.Unread = append(r.reach.Unread, fmt.Sprintf("groups after the first %d", maxGroups))
				break
			}
			r.reach.Groups = append(r.reach.Groups, aws.ToString(g.GroupName))
			out = append(out, r.principal("group", aws.ToString(g.GroupName))...)
		}
	}
	return out
}

func (r *reader) budget() bool {
	r.docs++
	return r.docs <= maxPolicies
}

func (r *reader) inlineNames(kind, name string) ([]string, error) {
	switch kind {
	case "user":
		out, err := r.c.ListUserPolicies(r.ctx, &iam.ListUserPoliciesInput{UserName: aws.String(name)})
		if err != nil {
			return nil, err
		}
		return out.PolicyNames, nil
	case "group":
		out, err := r.c.ListGroupPolicies(r.ctx, &iam.ListGroupPoliciesInput{GroupName: aws.String(name)})
		if err != nil {
			return nil, err
		}
		return out.PolicyNames, nil
	}
	out, err := r.c.ListRolePolicies(r.ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
	if err != nil {
		return nil, err
	}
	return out.PolicyNames, nil
}

func (r *reader) inlineDoc(kind, name, policy string) (string, error) {
	switch kind {
	case "user":
		out, err := r.c.GetUserPolicy(r.ctx, &iam.GetUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(policy)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.PolicyDocument), nil
	case "group":
		out, err := r.c.GetGroupPolicy(r.ctx, &iam.GetGroupPolicyInput{GroupName: aws.String(name), PolicyName: aws.String(policy)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.PolicyDocument), nil
	}
	out, err := r.c.GetRolePolicy(r.ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(policy)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.PolicyDocument), nil
}

// managed reads a managed policy's default version.
func (r *reader) managed(arn string) (string, bool) {
	if !r.budget() {
		r.reach.Unread = append(r.reach.Unread, "policy "+arn+": over keyburn's bound of policies read")
		return "", false
	}
	p, err := r.c.GetPolicy(r.ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if err != nil {
		r.unread("policy "+arn, err)
		return "", false
	}
	v, err := r.c.GetPolicyVersion(r.ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: p.Policy.DefaultVersionId})
	if err != nil {
		r.unread("policy "+arn, err)
		return "", false
	}
	return aws.ToString(v.PolicyVersion.Document), true
}

// assumable lists the roles whose trust policy names arn, or its account
// (which then needs the user's own sts:AssumeRole; the level says what
// the role could do, as an upper bound).
func (r *reader) assumable(arn string) []string {
	account := ""
	if parts := strings.SplitN(arn, ":", 6); len(parts) == 6 {
		account = parts[4]
	}
	var out []string
	in := &iam.ListRolesInput{}
	for page := 0; page < maxRolePage; page++ {
		roles, err := r.c.ListRoles(r.ctx, in)
		if err != nil {
			r.unread("the roles of the account", err)
			return out
		}
		for _, role := range roles.Roles {
			if trusts(aws.ToString(role.AssumeRolePolicyDocument), arn, account) {
				if len(out) == maxRoles {
					r.reach.Unread = append(r.reach.Unread, fmt.Sprintf("assumable roles after the first %d", maxRoles))
					return out
				}
				out = append(out, aws.ToString(role.RoleName))
			}
		}
		if !roles.IsTruncated || roles.Marker == nil {
			return out
		}
		in.Marker = roles.Marker
	}
	r.reach.Unread = append(r.reach.Unread, fmt.Sprintf("roles after the first %d pages", maxRolePage))
	return out
}

// statement is one policy statement, as IAM writes them: Action and
// Resource a string or a list; Principal "*" or {"AWS": string or list}.
type statement struct {
	Effect    string
	Action    json.RawMessage
	NotAction json.RawMessage
	Resource  json.RawMessage
	Principal json.RawMessage
}

// statements reads a policy document, URL-encoded (as IAM returns it) or
// not.
func statements(doc string) []statement {
	if len(doc) > maxDoc {
		return nil
	}
	if !strings.HasPrefix(strings.TrimSpace(doc), "{") {
		if un, err := url.QueryUnescape(doc); err == nil {
			doc = un
		}
	}
	var p struct{ Statement json.RawMessage }
	if json.Unmarshal([]byte(doc), &p) != nil {
		return nil
	}
	var list []statement
	if json.Unmarshal(p.Statement, &list) == nil {
		return list
	}
	var one statement
	if json.Unmarshal(p.Statement, &one) == nil {
		return []statement{one}
	}
	return nil
}

// strs reads a string or a list of strings.
func strs(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var list []string
	json.Unmarshal(raw, &list)
	return list
}

// trusts reports whether a trust policy lets arn (or any principal of its
// account) assume the role.
func trusts(doc, arn, account string) bool {
	for _, s := range statements(doc) {
		if s.Effect != "Allow" || !slices.ContainsFunc(strs(s.Action), func(a string) bool { return matches(a, "sts:AssumeRole") }) {
			continue
		}
		var who []string
		var p struct{ AWS json.RawMessage }
		if json.Unmarshal(s.Principal, &p) == nil && p.AWS != nil {
			who = strs(p.AWS)
		} else {
			who = strs(s.Principal)
		}
		for _, w := range who {
			if w == "*" || w == arn || account != "" && (w == account || w == "arn:aws:iam::"+account+":root") {
				return true
			}
		}
	}
	return false
}

// matches reports whether an IAM action pattern matches action, as IAM
// compares them: case-insensitive, with * and ?.
func matches(pattern, action string) bool {
	ok, err := path.Match(strings.ToLower(pattern), strings.ToLower(action))
	return err == nil && ok
}

// sum is the level the grants give, and why: each Allow statement over
// every resource (of a service, or of all) that grants a capability.
// Grants on named resources only are not summed: the level is about what
// the key reaches across the account.
func sum(grants []grant) (string, []string) {
	level := finding.ReachNone
	var why []string
	add := func(l, w string) {
		if rank(l) < rank(level) {
			level = l
		}
		if !slices.Contains(why, w) {
			why = append(why, w)
		}
	}
	for _, g := range grants {
		for _, s := range statements(g.doc) {
			if s.Effect != "Allow" || !anyStarScoped(strs(s.Resource)) {
				continue
			}
			actions := strs(s.Action)
			if s.NotAction != nil {
				actions = []string{"*"} // everything but a few: as good as all
			}
			for _, a := range actions {
				if a == "*" || a == "*:*" {
					add(finding.ReachAdmin, "admin: "+a+" on * ("+g.policy+")")
					continue
				}
				for _, c := range capabilities {
					if slices.ContainsFunc(c.actions, func(x string) bool { return matches(a, x) }) {
						add(c.level, c.level+": "+a+" ("+g.policy+")")
						break
					}
				}
			}
		}
	}
	return level, why
}

// anyStarScoped reports whether resources reach every resource of a
// service ("arn:aws:s3:::*", "arn:aws:iam::123456789012:*").
func anyStarScoped(resources []string) bool {
	for _, r := range resources {
		if strings.HasSuffix(r, ":*") || strings.HasSuffix(r, "/*") || r == "*" {
			return true
		}
	}
	return false
}
