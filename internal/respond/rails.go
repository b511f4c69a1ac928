package respond

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/verify"
)

// principal is who an ARN names.
type principal struct {
	account string
	user    string // an IAM user's name
	role    string // an assumed role's name
	root    bool
}

// parseARN reads arn:PARTITION:SERVICE::ACCOUNT:RESOURCE for the principals
// STS names: user/[path/]NAME, assumed-role/ROLE/SESSION, root.
func parseARN(arn string) principal {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") {
		return principal{}
	}
	p := principal{account: parts[4]}
	res := parts[5]
	switch {
	case parts[2] == "iam" && strings.HasPrefix(res, "user/"):
		p.user = res[strings.LastIndexByte(res, '/')+1:]
	case parts[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		p.role, _, _ = strings.Cut(strings.TrimPrefix(res, "assumed-role/"), "/")
	case parts[2] == "iam" && strings.HasPrefix(res, "role/"):
		p.role = res[strings.LastIndexByte(res, '/')+1:]
	case parts[2] == "iam" && res == "root":
		p.root = true
	}
	return p
}

// severities, least first.
var severities = []string{"low", "medium", "high", finding.SeverityCritical}

// ParseSeverity checks a severity name ("" is none).
func ParseSeverity(s string) (string, error) {
	if s == "" || slices.Contains(severities, s) {
		return s, nil
	}
	return "", fmt.Errorf("severity %q: want one of %s", s, strings.Join(severities, ", "))
}

// belowMinSeverity says why a key of severity sev is not acted on, or "".
func (r *Responder) belowMinSeverity(sev string) string {
	min := r.opts.MinSeverity
	if min == "" || sev == "" || slices.Index(severities, sev) >= slices.Index(severities, min) {
		return ""
	}
	return "severity " + sev + " is below respond_min_severity " + min + ": reported, not acted on"
}

// ownerName is how the audit log names who an ARN is: a user's name,
// role/NAME, or the root user.
func ownerName(arn string) string {
	switch p := parseARN(arn); {
	case p.root:
		return rootUser
	case p.role != "":
		return "role/" + p.role
	default:
		return p.user
	}
}

// IsRootARN reports whether arn names an account's root user, whose access
// keys grant everything in the account.
func IsRootARN(arn string) bool { return parseARN(arn).root }

// refuse applies the rails that do not need AWS: it returns why the
// responder must not act on keyID held by p, or "" when it may. accounts are
// every account the key was said to be in.
func (r *Responder) refuse(keyID string, p principal, accounts ...string) string {
	if keyID == r.selfKey {
		return "it is the responder's own key"
	}
	known := false
	for _, a := range accounts {
		if a == "" {
			continue
		}
		known = true
		switch {
		case verify.IsPublicCanary(a) || slices.Contains(r.opts.CanaryAccounts, a):
			return "account " + a + " is a canary (honeytoken) account"
		case slices.Contains(r.opts.DenyAccounts, a):
			return "account " + a + " is in the deny list"
		case len(r.opts.AllowAccounts) > 0 && !slices.Contains(r.opts.AllowAccounts, a):
			return "account " + a + " is not in the allow list"
		}
	}
	if !known && len(r.opts.AllowAccounts) > 0 {
		return "the key's account is unknown, and there is an allow list"
	}
	if p.account != "" && p.account == r.self.account {
		if p.root && r.self.root {
			return "it is a key of the responder's own root user (" + r.selfARN + ")"
		}
		if p.user != "" && p.user == r.self.user {
			return "it belongs to the responder's own user (" + r.selfARN + ")"
		}
		if p.role != "" && p.role == r.self.role {
			return "it is a session of the responder's own role " + p.role
		}
	}
	if p.role != "" && p.role == r.opts.RoleName {
		return "it is a session of role " + p.role + ", the role_name the responder acts through"
	}
	for _, g := range r.guarded {
		switch {
		case g.keyID != "" && keyID == g.keyID:
			return "it is " + g.why
		case g.p.account != "" && p.account == g.p.account && (g.p.user != "" && p.user == g.p.user || g.p.role != "" && p.role == g.p.role):
			return "it belongs to " + g.arn + ": " + g.why
		}
	}
	return ""
}
