package rules_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/testkeys"
	"github.com/keyburn/keyburn/rules"
)

// TestExamples runs every rule's match and nomatch examples through the
// detector.
func TestExamples(t *testing.T) {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	m := detect.New(set)
	n := 0
	for _, r := range set.Rules {
		if len(r.Examples) == 0 {
			t.Errorf("%s: rule %q has no examples", r.Source, r.ID)
		}
		for i, ex := range r.Examples {
			n++
			text := ex.Match + ex.NoMatch
			var mine []detect.Candidate
			for _, c := range m.Scan(detect.Whole([]byte(text))) {
				if c.Rule.ID == r.ID {
					mine = append(mine, c)
				}
			}
			switch {
			case ex.Match != "" && len(mine) == 0:
				t.Errorf("%s: rule %q example %d: no match in %q", r.Source, r.ID, i, text)
			case ex.Match != "" && ex.Paired && mine[0].Secret.IsZero():
				t.Errorf("%s: rule %q example %d: matched %s but found no secret", r.Source, r.ID, i, mine[0].KeyID)
			case ex.NoMatch != "" && len(mine) > 0:
				t.Errorf("%s: rule %q example %d: unexpected match %s in %q", r.Source, r.ID, i, mine[0].KeyID, text)
			}
		}
	}
	if n < 5 {
		t.Errorf("ran %d examples, want at least 5", n)
	}
}

func TestCheckKeywords(t *testing.T) {
	tests := []struct {
		expr     string
		keywords []string
		ok       bool
	}{
		{`(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}`, []string{"AKIA", "ASIA", "ABIA", "ACCA"}, true},
		{`(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}`, []string{"AKIA", "ASIA"}, false},
		{`(?:AKIA|ASIA)[A-Z2-7]{16}`, []string{"KIA", "SIA"}, true},
		{`A[KS]IA[A-Z2-7]{16}`, []string{"AKIA", "ASIA"}, true},
		{`A[KS]IA[A-Z2-7]{16}`, []string{"AKIA"}, false},
		{`[A-Z]{20}`, []string{"AKIA"}, false},
		{`x?AKIA`, []string{"AKIA"}, true},
		{`(?i)akia[a-z]{16}`, []string{"AKIA"}, false},
		{`AK(IA)?[A-Z]{16}`, []string{"AKIA"}, false},
		{`[0-9]{4}AKIA[A-Z]{16}`, []string{"AKIA"}, true},
	}
	for _, tt := range tests {
		err := rules.CheckKeywords(tt.expr, tt.keywords)
		if (err == nil) != tt.ok {
			t.Errorf("CheckKeywords(%q, %q) = %v, want ok=%v", tt.expr, tt.keywords, err, tt.ok)
		}
	}
}

func TestMaxMatchLen(t *testing.T) {
	tests := []struct {
		expr string
		want int // -1: error
	}{
		{`(?:AKIA|ASIA)[A-Z2-7]{16}`, 20},
		{`AKIA[A-Z]+`, -1},
		{`AKIA[A-Z]*`, -1},
		{`AKIA[A-Z]{16,18}x?`, 23},
	}
	for _, tt := range tests {
		got, err := rules.MaxMatchLen(tt.expr)
		if tt.want < 0 && err == nil || tt.want >= 0 && got != tt.want {
			t.Errorf("MaxMatchLen(%q) = %d, %v, want %d", tt.expr, got, err, tt.want)
		}
	}
}

var loadErrorTests = []struct {
	name string
	toml string
	want string // substring of the error
}{
	{"unknown key", "[[rule]]\nid = \"x\"\nkey_id = 'AKIA[A-Z]{16}'\nkeywords = ['AKIA']\nkeywrods = ['x']\n", `user.toml:5: unknown key "rule.keywrods"`},
	{"bad regexp", "[[rule]]\nid = \"x\"\nkeywords = ['AKIA']\nkey_id = 'AKIA[A-Z'\n", `user.toml:4: rule "x": key_id: error parsing regexp`},
	{"unbounded", "# c\n[[rule]]\nid = \"y\"\nkey_id = 'AKIA[A-Z]+'\nkeywords = ['AKIA']\n", `user.toml:4: rule "y": key_id: matches are unbounded`},
	{"keywords not implied", "[[rule]]\nid = \"z\"\nkey_id = '[A-Z]{20}'\nkeywords = ['AKIA']\n", `user.toml:4: rule "z": keywords:`},
	{"no keywords", "[[rule]]\nid = \"z\"\nkey_id = 'AKIA[A-Z]{16}'\n", `user.toml:1: rule "z": keywords is empty`},
	{"no id", "[[rule]]\nkey_id = 'AKIA[A-Z]{16}'\n", `user.toml:1: rule has no id`},
	{"bad severity", "[[rule]]\nid = \"s\"\nseverity = \"urgent\"\nkey_id = 'AKIA[A-Z]{16}'\nkeywords = ['AKIA']\n", `user.toml:3: rule "s": severity "urgent"`},
	{"bad allowlist", "[allowlist]\npaths = ['(']\n", `user.toml:2: allowlist paths:`},
	{"malformed", "[[rule]\nid=1\n", `user.toml:1:`},
	{"bad account", "# x\n[aws]\ndeny_accounts = ['12']\n", `user.toml:2: aws: account "12" is not 12 digits`},
	{"wrong type", "[[rule]]\nid = 5\n", `user.toml:2:`},
	{"bad severity floor", "[aws]\nrespond_min_severity = 'severe'\n", `user.toml:1: aws: respond_min_severity "severe"`},
	{"bad region", "[aws]\nevidence_regions = ['us-east-1', 'Ireland']\n", `user.toml:1: aws: evidence_regions: "Ireland" is not an AWS region name`},
	{"type: string for a number", "[scan]\narchive_depth = \"two\"\n", "user.toml:2: scan.archive_depth: a string, where a whole number is wanted"},
	{"type: number for a list", "[aws]\nallow_accounts = 5\n", "user.toml:2: aws.allow_accounts: a whole number, where a list of strings is wanted"},
	{"type: number for true or false", "[scan]\nskip_binaries = 1\n", "user.toml:2: scan.skip_binaries: a whole number, where true or false is wanted"},
	{"example both", "[[rule]]\nid = \"e\"\nkey_id = 'AKIA[A-Z]{16}'\nkeywords = ['AKIA']\n[[rule.examples]]\nmatch = 'a'\nnomatch = 'b'\n", `rule "e": examples[0]: set exactly one`},
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range loadErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rules.Load(rules.DefaultFS(), &rules.UserFile{Name: "user.toml", Text: []byte(tt.toml)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%q) error = %v, want one containing %q", tt.toml, err, tt.want)
			}
			var re *rules.Error
			if err != nil && !errors.As(err, &re) {
				t.Errorf("Load error %v is not a *rules.Error", err)
			}
		})
	}
}

func TestUserFileOverridesAndExtends(t *testing.T) {
	user := `
[[rule]]
id = "aws-access-key"
description = "only long-term keys"
key_id = 'AKIA[A-Z2-7]{16}'
keywords = ["AKIA"]
secret = '[A-Za-z0-9/+]{40}'
secret_length = 40
secret_min_entropy = 3.8

[[rule]]
id = "corp-token"
key_id = 'CORP[A-Z0-9]{12}'
keywords = ["CORP"]

[allowlist]
paths = ['^fixtures/']
key_ids = ['^AKIAQX4BPTNRRLUGAZ2M$']
`
	set, err := rules.Load(rules.DefaultFS(), &rules.UserFile{Name: "user.toml", Text: []byte(user)})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Rules) != 2 || set.Rules[0].ID != "aws-access-key" || set.Rules[0].Description != "only long-term keys" || set.Rules[1].ID != "corp-token" {
		t.Fatalf("rules after override = %v", set.Rules)
	}
	defaults, _ := rules.Default()
	if len(set.AllowPaths) != 1 || len(set.AllowKeyIDs) != len(defaults.AllowKeyIDs)+1 {
		t.Errorf("allowlists were not joined: %d paths, %d key IDs", len(set.AllowPaths), len(set.AllowKeyIDs))
	}
	m := detect.New(set)
	got := m.Scan(detect.Whole([]byte("a=ASIAQX4BPTNRW3HNQ5VC b=CORPABCDEF123456 c=AKIAQX4BPTNRRLUGAZ2M")))
	if len(got) != 1 || got[0].KeyID != "CORPABCDEF123456" {
		t.Errorf("with the user's rules got %v, want only the corp token", got)
	}

	withAWS, err := rules.Load(rules.DefaultFS(), &rules.UserFile{Name: "u.toml", Text: []byte("[aws]\ncanary_accounts = ['111122223333']\nrole_name = 'kb'\n" +
		"centralized_root_access = true\nevidence_regions = ['us-east-1', 'eu-west-1', 'us-gov-west-1']\nrespond_min_severity = 'critical'\n")})
	if err != nil || len(withAWS.AWS.CanaryAccounts) != 1 || withAWS.AWS.RoleName != "kb" || !withAWS.AWS.CentralizedRootAccess || withAWS.AWS.RespondMinSeverity != "critical" ||
		strings.Join(withAWS.AWS.EvidenceRegions, ",") != "us-east-1,eu-west-1,us-gov-west-1" {
		t.Errorf("[aws] section: %+v, %v", withAWS.AWS, err)
	}

	disabled, err := rules.Load(rules.DefaultFS(), &rules.UserFile{Name: "u.toml", Text: []byte("[[rule]]\nid = \"aws-access-key\"\ndisabled = true\n")})
	if err != nil || len(disabled.Rules) != 0 {
		t.Errorf("disabling the default rule: %d rules, %v", len(disabled.Rules), err)
	}
}

// FuzzParseRules checks that no rules file makes Load panic, and that a file
// it accepts compiles patterns whose keywords hold.
func FuzzParseRules(f *testing.F) {
	for _, tt := range loadErrorTests {
		f.Add(tt.toml)
	}
	f.Add("[[rule]]\nid = \"x\"\nkey_id = 'AKIA[A-Z]{16}'\nkeywords = ['AKIA']\n")
	f.Fuzz(func(t *testing.T, text string) {
		set, err := rules.Load(rules.DefaultFS(), &rules.UserFile{Name: "f.toml", Text: []byte(text)})
		if err != nil {
			return
		}
		for _, r := range set.Rules {
			if len(r.Keywords) == 0 || r.MaxKeyIDLen <= 0 {
				t.Fatalf("accepted rule %q with no keywords or no length", r.ID)
			}
		}
	})
}

// TestAllowlistSparesRandomKeys checks that no default allowlist pattern
// matches random keys: a pattern such as "fake" would silently drop one real
// secret in 30,000.
func TestAllowlistSparesRandomKeys(t *testing.T) {
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 11))
	for range 200_000 {
		id, sec := testkeys.KeyID(rng, "AKIA", rng.Uint64N(1_000_000_000_000)), testkeys.Secret(rng)
		for _, re := range set.AllowKeyIDs {
			if re.MatchString(id) {
				t.Fatalf("key ID allowlist %q matches the random key ID %s", re, id)
			}
		}
		for _, re := range set.AllowSecrets {
			if re.MatchString(sec) {
				t.Fatalf("secret allowlist %q matches a random secret", re)
			}
		}
	}
}
