// Package rules holds keyburn's detection rules: the defaults embedded from
// the TOML files beside this file, and the user's own file that extends or
// overrides them.
//
// Rules are loaded in two stages. Decode reads TOML strictly (an unknown key is
// an error naming file:line) into plain structs; Compile checks them and
// builds an immutable Set of compiled rules. Errors name the file, the line
// and the rule: `rules/aws.toml:12: rule "aws-access-key": key_id: …`.
//
// The schema is documented at the top of aws.toml.
package rules

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
)

//go:embed *.toml
var defaultFS embed.FS

// maxKeyIDLen bounds the length of a key ID match. The prefilter runs the
// key_id pattern only in a window around each keyword hit, so the pattern must
// have a bounded length, and a small one keeps that window cheap.
const maxKeyIDLen = 128

// File is one rules file as written.
type File struct {
	Rules     []RuleSpec     `toml:"rule"`
	Allowlist *AllowlistSpec `toml:"allowlist"`
	AWS       *AWSSpec       `toml:"aws"`
	GitHub    *GitHubSpec    `toml:"github"`
	Scan      *ScanSpec      `toml:"scan"`
	Notify    *NotifySpec    `toml:"notify"`
}

// NotifySpec is the [notify] section: where news of live keys goes.
// Read only from the operator's file (a scanned tree's .keyburn.toml could
// send it anywhere: rules.TreeFile), with URLs and secrets from the
// environment rather than the file where it can:
//
//	[[notify.target]]
//	kind    = "slack"                    # a Slack-compatible incoming webhook
//	url_env = "KEYBURN_SLACK_WEBHOOK"    # or url = "https://hooks.slack.com/services/…"
//
//	[[notify.target]]
//	kind       = "json"                  # any endpoint: the message as JSON, signed
//	url        = "https://hooks.example.com/keyburn"
//	secret_env = "KEYBURN_NOTIFY_SECRET" # HMAC-SHA256 key: X-Keyburn-Signature-256
type NotifySpec struct {
	Targets []NotifyTarget `toml:"target"`
}

// NotifyTarget is one [[notify.target]].
type NotifyTarget struct {
	Kind      string `toml:"kind"`
	URL       string `toml:"url"`
	URLEnv    string `toml:"url_env"`
	SecretEnv string `toml:"secret_env"`
}

// ScanSpec is the [scan] section: settings of a scan kept in the file, so
// that hooks and CI, which pass no flags, use them too. A flag given on the
// command line wins.
//
//	[scan]
//	baseline      = "keyburn-baseline.json"  # relative to this file
//	decode_depth  = 2
//	archive_depth = 0
//	skip_binaries = false
//	max_file_size = "256MiB"
type ScanSpec struct {
	Baseline     string `toml:"baseline"`
	DecodeDepth  *int   `toml:"decode_depth"`
	ArchiveDepth *int   `toml:"archive_depth"`
	SkipBinaries *bool  `toml:"skip_binaries"`
	MaxFileSize  string `toml:"max_file_size"`
}

// GitHubSpec is the [github] section: which GitHub owners keyburn acts for.
//
//	[github]
//	owners = ["acme", "acme-labs"]  # the webhook receiver ignores pushes to others (empty: all)
type GitHubSpec struct {
	Owners []string `toml:"owners"`
}

// AWSSpec is the [aws] section: how keys are verified and acted on.
//
//	[aws]
//	canary_accounts = ["111122223333"]  # your own honeytoken accounts: never called, never revoked
//	allow_accounts  = ["123456789012"]  # respond only in these accounts (empty: any)
//	deny_accounts   = ["210987654321"]  # never respond in these
//	role_name       = "keyburn-responder" # act through arn:aws:iam::{account}:role/{role_name}
//	centralized_root_access = true      # delete live root keys with sts:AssumeRoot (AWS Organizations)
//	evidence_regions = ["us-east-1", "eu-west-1"] # CloudTrail event history read after acting
//	respond_min_severity = "critical"   # act only on keys this severe (by what they reach); report the rest
type AWSSpec struct {
	CanaryAccounts []string `toml:"canary_accounts"`
	AllowAccounts  []string `toml:"allow_accounts"`
	DenyAccounts   []string `toml:"deny_accounts"`
	RoleName       string   `toml:"role_name"`
	// CentralizedRootAccess: the responder's own credentials are in the
	// organisation's management (or delegated administrator) account and
	// may call sts:AssumeRoot with the IAMDeleteRootUserCredentials task
	// policy; live root keys are then deleted. Never guessed: off, a root
	// key is reported with who can delete it.
	CentralizedRootAccess bool `toml:"centralized_root_access"`
	// EvidenceRegions are the regions whose CloudTrail event history is
	// read after a key is acted on (default us-east-1).
	EvidenceRegions []string `toml:"evidence_regions"`
	// RespondMinSeverity, when set, leaves live keys of a lower severity
	// (from what they could do) reported but not acted on.
	RespondMinSeverity string `toml:"respond_min_severity"`
	// For respond = "rotate": the Secrets Manager name of each user's
	// replacement key ({account}, {user}, {key_id} filled in; default
	// keyburn/rotated/{account}/{user}), the KMS key that encrypts it, and
	// the region it is kept in (default us-east-1).
	RotateSecretName string `toml:"rotate_secret_name"`
	RotateKMSKeyID   string `toml:"rotate_kms_key_id"`
	RotateRegion     string `toml:"rotate_region"`
}

// RuleSpec is one [[rule]] as written in TOML.
type RuleSpec struct {
	ID                string        `toml:"id"`
	Description       string        `toml:"description"`
	Severity          string        `toml:"severity"`
	KeyID             string        `toml:"key_id"`
	Keywords          []string      `toml:"keywords"`
	DecodeKeywords    []string      `toml:"decode_keywords"`
	TemporaryPrefixes []string      `toml:"temporary_prefixes"`
	AccountDecode     bool          `toml:"account_decode"`
	Secret            string        `toml:"secret"`
	SecretLength      int           `toml:"secret_length"`
	SecretMinEntropy  float64       `toml:"secret_min_entropy"`
	SecretKeywords    []string      `toml:"secret_keywords"`
	MaxPairs          int           `toml:"max_pairs"`
	Disabled          bool          `toml:"disabled"`
	Examples          []ExampleSpec `toml:"examples"`
}

// ExampleSpec is text a rule must find (Match) or must not find (NoMatch).
type ExampleSpec struct {
	Match   string `toml:"match"`
	NoMatch string `toml:"nomatch"`
	Paired  bool   `toml:"paired"`
}

// AllowlistSpec lists known non-secrets.
type AllowlistSpec struct {
	Description string   `toml:"description"`
	KeyIDs      []string `toml:"key_ids"`
	Secrets     []string `toml:"secrets"`
	Paths       []string `toml:"paths"`
}

// Rule is a compiled rule. It is immutable once compiled.
type Rule struct {
	ID          string
	Description string
	Severity    string
	KeyID       *regexp.Regexp
	Keywords    [][]byte
	MaxKeyIDLen int
	// DecodeKeywords are the keywords whose base64 and percent-encoded
	// forms mark encoded text worth decoding (each costs a search pass).
	DecodeKeywords    [][]byte
	TemporaryPrefixes []string
	AccountDecode     bool
	Secret            *regexp.Regexp // nil: the rule never pairs
	SecretLength      int
	SecretMinEntropy  float64
	SecretKeywords    []string // lower case
	MaxPairs          int
	Examples          []ExampleSpec
	Source            string // file:line of the rule, for messages
}

// Set is a compiled set of rules and allowlists.
type Set struct {
	AWS           AWSSpec        // joined from every file
	GitHub        GitHubSpec     // joined from every file
	Notify        []NotifyTarget // [[notify.target]]s, joined from every file
	Scan          ScanSpec       // the last file's settings win; Baseline is made relative to where the run is
	Rules         []*Rule
	AllowKeyIDs   []*regexp.Regexp
	AllowSecrets  []*regexp.Regexp
	AllowPaths    []*regexp.Regexp
	allowKeySrc   []string
	allowSecSrc   []string
	allowPathsSrc []string
}

// Error is a problem in a rules file, located at File:Line.
type Error struct {
	File string
	Line int    // 0 when unknown
	Rule string // empty when not inside a rule
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, ": rule %q", e.Rule)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// source is a decoded file with the text it came from, for locating errors.
type source struct {
	name string
	text []byte
	file File
}

// Decode reads one rules file strictly: unknown keys and malformed TOML are
// errors naming name:line.
func Decode(name string, text []byte) (File, error) {
	var f File
	dec := toml.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) && len(strict.Errors) > 0 {
			var errs []error
			for _, de := range strict.Errors {
				row, _ := de.Position()
				errs = append(errs, &Error{File: name, Line: row, Err: fmt.Errorf("unknown key %q", strings.Join(de.Key(), "."))})
			}
			return File{}, errors.Join(errs...)
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return File{}, &Error{File: name, Line: row, Err: errors.New(decodeMessage(de))}
		}
		return File{}, &Error{File: name, Err: err}
	}
	return f, nil
}

// typeError is go-toml's message for a value of the wrong type, which
// names a Go struct field: decodeMessage says it in the file's own words.
var typeError = regexp.MustCompile(`cannot decode TOML (\w+) into struct field \S+ of type (\S+)`)

// decodeMessage is a decoding error as the file's author reads it: the
// key (scan.archive_depth), what it holds and what it wants, never a Go
// type.
func decodeMessage(de *toml.DecodeError) string {
	m := typeError.FindStringSubmatch(de.Error())
	key := strings.Join(de.Key(), ".")
	if m == nil || key == "" {
		return de.Error()
	}
	return fmt.Sprintf("%s: %s, where %s is wanted", key, tomlKinds[m[1]], goKind(m[2]))
}

// tomlKinds name TOML's kinds of value as go-toml's messages spell them.
var tomlKinds = map[string]string{
	"string": "a string", "integer": "a whole number", "float": "a number", "boolean": "true or false",
	"array": "a list", "table": "a table", "datetime": "a date", "inlinetable": "a table",
}

// goKind names what a Go type of a rules field wants, in TOML's words.
func goKind(t string) string {
	if elem, ok := strings.CutPrefix(t, "[]"); ok {
		return "a list of " + strings.TrimPrefix(goKind(elem), "a ") + "s"
	}
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "float"):
		return "a number"
	}
	return "a table"
}

// Default returns the compiled default rules.
func Default() (*Set, error) {
	return Load(defaultFS, nil)
}

// DefaultFS returns the embedded default rule files.
func DefaultFS() fs.FS { return defaultFS }

// Load reads every *.toml file of fsys (the defaults), then the user's file
// (name and text, may be nil) on top: a user rule with the ID of a default
// replaces it, others are added; allowlists are joined.
func Load(fsys fs.FS, user *UserFile) (*Set, error) {
	srcs, err := defaultSources(fsys)
	if err != nil {
		return nil, err
	}
	if user != nil {
		f, err := Decode(user.Name, user.Text)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, source{name: user.Name, text: user.Text, file: f})
	}
	return compile(srcs)
}

// defaultSources decodes every *.toml file of fsys, in name order.
func defaultSources(fsys fs.FS) ([]source, error) {
	names, err := fs.Glob(fsys, "*.toml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var srcs []source
	for _, n := range names {
		text, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("read rules %s: %w", n, err)
		}
		f, err := Decode("rules/"+n, text)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, source{name: "rules/" + n, text: text, file: f})
	}
	return srcs, nil
}

// UserFile is the operator's rules file (--config, or the operator's own
// config path): its name for messages and its content. It may say
// everything, [aws] and [notify] included; a scanned tree's file is a
// TreeFile, which may not.
type UserFile struct {
	Name string
	Text []byte
}

func compile(srcs []source) (*Set, error) {
	set := &Set{}
	index := map[string]int{}
	var errs []error
	for _, src := range srcs {
		for i := range src.file.Rules {
			spec := &src.file.Rules[i]
			line := ruleLine(src.text, i)
			r, err := compileRule(spec, src.name, src.text, line)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if j, ok := index[spec.ID]; ok {
				set.Rules[j] = r // the later file overrides; nil disables
				continue
			}
			if r == nil {
				continue
			}
			index[spec.ID] = len(set.Rules)
			set.Rules = append(set.Rules, r)
		}
		if a := src.file.AWS; a != nil {
			line := sectionLineOf(src.text, "aws")
			for _, acct := range append(append(append([]string{}, a.CanaryAccounts...), a.AllowAccounts...), a.DenyAccounts...) {
				if !accountRE.MatchString(acct) {
					errs = append(errs, &Error{File: src.name, Line: line, Err: fmt.Errorf("aws: account %q is not 12 digits", acct)})
				}
			}
			set.AWS.CanaryAccounts = append(set.AWS.CanaryAccounts, a.CanaryAccounts...)
			set.AWS.AllowAccounts = append(set.AWS.AllowAccounts, a.AllowAccounts...)
			set.AWS.DenyAccounts = append(set.AWS.DenyAccounts, a.DenyAccounts...)
			if a.RoleName != "" {
				set.AWS.RoleName = a.RoleName
			}
			set.AWS.CentralizedRootAccess = set.AWS.CentralizedRootAccess || a.CentralizedRootAccess
			if a.RespondMinSeverity != "" {
				if !slices.Contains([]string{"low", "medium", "high", "critical"}, a.RespondMinSeverity) {
					errs = append(errs, &Error{File: src.name, Line: line, Err: fmt.Errorf("aws: respond_min_severity %q: want low, medium, high or critical", a.RespondMinSeverity)})
				}
				set.AWS.RespondMinSeverity = a.RespondMinSeverity
			}
			for _, r := range a.EvidenceRegions {
				if !regionRE.MatchString(r) {
					errs = append(errs, &Error{File: src.name, Line: line, Err: fmt.Errorf("aws: evidence_regions: %q is not an AWS region name (like eu-west-1)", r)})
					continue
				}
				if !slices.Contains(set.AWS.EvidenceRegions, r) {
					set.AWS.EvidenceRegions = append(set.AWS.EvidenceRegions, r)
				}
			}
		}
		if g := src.file.GitHub; g != nil {
			set.GitHub.Owners = append(set.GitHub.Owners, g.Owners...)
		}
		if n := src.file.Notify; n != nil {
			set.Notify = append(set.Notify, n.Targets...)
		}
		if sc := src.file.Scan; sc != nil {
			if sc.Baseline != "" && !filepath.IsAbs(sc.Baseline) {
				sc.Baseline = filepath.Join(filepath.Dir(src.name), sc.Baseline)
			}
			if sc.DecodeDepth != nil && *sc.DecodeDepth < 0 || sc.ArchiveDepth != nil && *sc.ArchiveDepth < 0 {
				errs = append(errs, &Error{File: src.name, Line: sectionLineOf(src.text, "scan"), Err: errors.New("scan: decode_depth and archive_depth must be 0 or more")})
			}
			mergeScan(&set.Scan, *sc)
		}
		if a := src.file.Allowlist; a != nil {
			line := sectionLine(src.text, "allowlist")
			add := func(field string, pats []string, dst *[]*regexp.Regexp, srcList *[]string) {
				for _, p := range pats {
					re, err := regexp.Compile(p)
					if err != nil {
						errs = append(errs, &Error{File: src.name, Line: fieldLine(src.text, line, field), Err: fmt.Errorf("allowlist %s: %w", field, err)})
						continue
					}
					*dst = append(*dst, re)
					*srcList = append(*srcList, p)
				}
			}
			add("key_ids", a.KeyIDs, &set.AllowKeyIDs, &set.allowKeySrc)
			add("secrets", a.Secrets, &set.AllowSecrets, &set.allowSecSrc)
			add("paths", a.Paths, &set.AllowPaths, &set.allowPathsSrc)
		}
	}
	// Drop disabled rules after overriding, so a user can disable a default.
	kept := set.Rules[:0]
	for _, r := range set.Rules {
		if r != nil {
			kept = append(kept, r)
		}
	}
	set.Rules = kept
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

// mergeScan sets in dst what src sets.
func mergeScan(dst *ScanSpec, src ScanSpec) {
	if src.Baseline != "" {
		dst.Baseline = src.Baseline
	}
	if src.DecodeDepth != nil {
		dst.DecodeDepth = src.DecodeDepth
	}
	if src.ArchiveDepth != nil {
		dst.ArchiveDepth = src.ArchiveDepth
	}
	if src.SkipBinaries != nil {
		dst.SkipBinaries = src.SkipBinaries
	}
	if src.MaxFileSize != "" {
		dst.MaxFileSize = src.MaxFileSize
	}
}

var validSeverity = map[string]bool{"high": true, "medium": true, "low": true}

func compileRule(spec *RuleSpec, file string, text []byte, line int) (*Rule, error) {
	fail := func(field string, err error) error {
		l := line
		if field != "" {
			l = fieldLine(text, line, field)
		}
		return &Error{File: file, Line: l, Rule: spec.ID, Err: err}
	}
	if spec.ID == "" {
		return nil, &Error{File: file, Line: line, Err: errors.New("rule has no id")}
	}
	if spec.Disabled {
		return nil, nil
	}
	if spec.Severity == "" {
		spec.Severity = "high"
	}
	if !validSeverity[spec.Severity] {
		return nil, fail("severity", fmt.Errorf("severity %q: want high, medium or low", spec.Severity))
	}
	if spec.KeyID == "" {
		return nil, fail("", errors.New("key_id is empty"))
	}
	re, err := regexp.Compile(spec.KeyID)
	if err != nil {
		return nil, fail("key_id", fmt.Errorf("key_id: %w", err))
	}
	maxLen, err := MaxMatchLen(spec.KeyID)
	if err != nil {
		return nil, fail("key_id", fmt.Errorf("key_id: %w", err))
	}
	if maxLen > maxKeyIDLen {
		return nil, fail("key_id", fmt.Errorf("key_id matches up to %d bytes, more than the limit of %d", maxLen, maxKeyIDLen))
	}
	if len(spec.Keywords) == 0 {
		return nil, fail("", errors.New("keywords is empty: the prefilter needs at least one literal"))
	}
	if err := CheckKeywords(spec.KeyID, spec.Keywords); err != nil {
		return nil, fail("keywords", fmt.Errorf("keywords: %w", err))
	}
	r := &Rule{
		ID:                spec.ID,
		Description:       spec.Description,
		Severity:          spec.Severity,
		KeyID:             re,
		MaxKeyIDLen:       maxLen,
		TemporaryPrefixes: spec.TemporaryPrefixes,
		AccountDecode:     spec.AccountDecode,
		SecretLength:      spec.SecretLength,
		SecretMinEntropy:  spec.SecretMinEntropy,
		MaxPairs:          spec.MaxPairs,
		Examples:          spec.Examples,
		Source:            fmt.Sprintf("%s:%d", file, line),
	}
	for _, k := range spec.Keywords {
		if k == "" {
			return nil, fail("keywords", errors.New("keywords: empty keyword"))
		}
		r.Keywords = append(r.Keywords, []byte(k))
	}
	for _, k := range spec.DecodeKeywords {
		if !slices.Contains(spec.Keywords, k) {
			return nil, fail("decode_keywords", fmt.Errorf("decode_keywords: %q is not one of keywords", k))
		}
		r.DecodeKeywords = append(r.DecodeKeywords, []byte(k))
	}
	for _, k := range spec.SecretKeywords {
		r.SecretKeywords = append(r.SecretKeywords, strings.ToLower(k))
	}
	if spec.Secret != "" {
		sre, err := regexp.Compile("^(?:" + spec.Secret + ")$")
		if err != nil {
			return nil, fail("secret", fmt.Errorf("secret: %w", err))
		}
		r.Secret = sre
		if r.SecretLength <= 0 {
			return nil, fail("secret_length", errors.New("secret_length must be positive when secret is set"))
		}
		if r.MaxPairs <= 0 {
			r.MaxPairs = 3
		}
	}
	for i, ex := range spec.Examples {
		if (ex.Match == "") == (ex.NoMatch == "") {
			return nil, fail("examples", fmt.Errorf("examples[%d]: set exactly one of match and nomatch", i))
		}
	}
	return r, nil
}

// MaxMatchLen returns the longest match, in bytes, of the regular expression,
// or an error if its matches are unbounded.
func MaxMatchLen(expr string) (int, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return 0, err
	}
	n := maxLen(re.Simplify())
	if n < 0 {
		return 0, errors.New("matches are unbounded in length (use {m,n}, not * or +)")
	}
	return n, nil
}

func maxLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			n += len(string(r))
		}
		return n
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return 0
		}
		return utf8.RuneLen(re.Rune[len(re.Rune)-1]) // the longest rune of the class
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax
	case syntax.OpCapture:
		return maxLen(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			m := maxLen(s)
			if m < 0 {
				return -1
			}
			n += m
		}
		return n
	case syntax.OpAlternate:
		n := 0
		for _, s := range re.Sub {
			m := maxLen(s)
			if m < 0 {
				return -1
			}
			n = max(n, m)
		}
		return n
	case syntax.OpQuest:
		return maxLen(re.Sub[0])
	case syntax.OpRepeat:
		if re.Max < 0 {
			return -1
		}
		m := maxLen(re.Sub[0])
		if m < 0 {
			return -1
		}
		return m * re.Max
	default: // OpStar, OpPlus, OpNoMatch and anything new
		return -1
	}
}

// maxExact caps the size of the exact string sets built while checking
// keywords, so that a pattern such as [A-Z]{16} cannot explode.
const maxExact = 64

// CheckKeywords checks that every match of expr contains at least one of the
// keywords, so that searching for the keywords first can never miss a match.
// It derives from the parsed pattern a set of strings one of which every match
// must contain (in the manner of codesearch's RegexpQuery) and demands that
// each of them contains a keyword.
func CheckKeywords(expr string, keywords []string) error {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return err
	}
	info := analyze(re.Simplify())
	req := info.required()
	if req == nil {
		return fmt.Errorf("pattern %q has no literal that every match must contain", expr)
	}
	for _, s := range req {
		found := false
		for _, k := range keywords {
			if strings.Contains(s, k) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("a match of %q can contain %q without any keyword of %q", expr, s, keywords)
		}
	}
	return nil
}

// litInfo describes the strings a pattern can match: exact (when small) is the
// full set of matches; contains is a set one of which every match contains
// (nil: nothing is known).
type litInfo struct {
	exact    []string
	isExact  bool
	contains []string
}

func (l litInfo) required() []string {
	if l.isExact {
		for _, s := range l.exact {
			if s == "" {
				return nil // the empty match contains nothing
			}
		}
		return l.exact
	}
	return l.contains
}

func analyze(re *syntax.Regexp) litInfo {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return litInfo{}
		}
		return litInfo{exact: []string{string(re.Rune)}, isExact: true}
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return litInfo{exact: []string{""}, isExact: true}
	case syntax.OpCharClass:
		var set []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if len(set) >= maxExact {
					return litInfo{}
				}
				set = append(set, string(r))
			}
		}
		return litInfo{exact: set, isExact: true}
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpConcat:
		cur := litInfo{exact: []string{""}, isExact: true}
		var best []string // the best required set of an inexact stretch
		for _, s := range re.Sub {
			in := analyze(s)
			if cur.isExact && in.isExact && len(cur.exact)*len(in.exact) <= maxExact {
				var next []string
				for _, a := range cur.exact {
					for _, b := range in.exact {
						next = append(next, a+b)
					}
				}
				cur = litInfo{exact: next, isExact: true}
				continue
			}
			best = better(best, cur.required())
			best = better(best, in.required())
			cur = litInfo{exact: []string{""}, isExact: true}
			if in.isExact && len(in.exact) <= maxExact {
				cur = in
			}
		}
		if best == nil {
			return cur
		}
		best = better(best, cur.required())
		return litInfo{contains: best}
	case syntax.OpAlternate:
		var exact, contains []string
		allExact := true
		for _, s := range re.Sub {
			in := analyze(s)
			if in.isExact {
				exact = append(exact, in.exact...)
			} else {
				allExact = false
			}
			r := in.required()
			if r == nil {
				if !in.isExact {
					return litInfo{}
				}
			}
			contains = append(contains, r...)
		}
		if allExact && len(exact) <= maxExact {
			return litInfo{exact: exact, isExact: true}
		}
		return litInfo{contains: contains}
	case syntax.OpPlus:
		return litInfo{contains: analyze(re.Sub[0]).required()}
	case syntax.OpRepeat:
		if re.Min == 0 {
			return litInfo{}
		}
		return litInfo{contains: analyze(re.Sub[0]).required()}
	default:
		return litInfo{}
	}
}

// better picks the more selective of two required sets: the one whose
// shortest string is longest.
func better(a, b []string) []string {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	if minLen(b) > minLen(a) {
		return b
	}
	return a
}

func minLen(ss []string) int {
	m := -1
	for _, s := range ss {
		if m < 0 || len(s) < m {
			m = len(s)
		}
	}
	return m
}

var (
	ruleHeader      = regexp.MustCompile(`(?m)^[ \t]*\[\[[ \t]*rule[ \t]*\]\]`)
	allowlistHeader = regexp.MustCompile(`(?m)^[ \t]*\[[ \t]*allowlist[ \t]*\]`)
)

// ruleLine returns the 1-based line of the i-th [[rule]] header in text.
func ruleLine(text []byte, i int) int {
	locs := ruleHeader.FindAllIndex(text, -1)
	if i >= len(locs) {
		return 0
	}
	return bytes.Count(text[:locs[i][0]], []byte("\n")) + 1
}

func sectionLine(text []byte, name string) int {
	if name != "allowlist" {
		return 0
	}
	loc := allowlistHeader.FindIndex(text)
	if loc == nil {
		return 0
	}
	return bytes.Count(text[:loc[0]], []byte("\n")) + 1
}

// fieldLine returns the line of `field =` at or after line start, or start.
func fieldLine(text []byte, start int, field string) int {
	lines := bytes.Split(text, []byte("\n"))
	re := regexp.MustCompile(`^[ \t]*` + regexp.QuoteMeta(field) + `[ \t]*=`)
	for i := max(start-1, 0); i < len(lines); i++ {
		if i > start-1 && ruleHeader.Match(lines[i]) {
			break
		}
		if re.Match(lines[i]) {
			return i + 1
		}
	}
	return start
}

// regionRE matches AWS region names: us-east-1, eu-central-2,
// us-gov-west-1, cn-north-1.
var regionRE = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$`)

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// sectionLineOf returns the line of a [name] table header, or 0.
func sectionLineOf(text []byte, name string) int {
	re := regexp.MustCompile(`(?m)^[ \t]*\[[ \t]*` + regexp.QuoteMeta(name) + `[ \t]*\]`)
	loc := re.FindIndex(text)
	if loc == nil {
		return 0
	}
	return bytes.Count(text[:loc[0]], []byte("\n")) + 1
}
