package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/secret"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// Synthetic credentials: random, never issued by AWS.
const (
	secret1 = "5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF"
	secret2 = "Y3vZvRrmRFWu5loOQMq2YGt+sW32vMuDsMdnGtJg"
	token1  = "IQoJb3JpZ2luX2VjFmKnebxsvOEZPs6ZhJdS0F+XNXJuxS6zzb/XO/6evERvp/AGs1NjmZFEe+rtQqSP+6z7kCJ3F/qvmKRbmg9LuB2cHMM9"
)

func sample() []*finding.Finding {
	c := finding.NewCollector()
	c.Add(finding.Match{Rule: "aws-access-key", Severity: "high", KeyID: "AKIAROSDW5AABZW3VLYZ", AccountID: "100000000000",
		Secret: secret.New(secret1), Location: finding.Location{File: "config/.env", Line: 3, Column: 19, SecretLine: 4}})
	c.Add(finding.Match{Rule: "aws-access-key", Severity: "high", KeyID: "AKIAROSDW5AABZW3VLYZ", AccountID: "100000000000",
		Secret: secret.New(secret1), Location: finding.Location{File: "deploy/prod.tf", Line: 12, Column: 16, SecretLine: 13}})
	// Per-location truth: one place pairs the key with another secret.
	c.Add(finding.Match{Rule: "aws-access-key", Severity: "high", KeyID: "AKIAROSDW5AABZW3VLYZ", AccountID: "100000000000",
		Secret: secret.New(secret2), Location: finding.Location{File: "old/settings.ini", Line: 7, Column: 9, SecretLine: 8}})
	c.Add(finding.Match{Rule: "aws-access-key", Severity: "high", KeyID: "ASIATCH6YDSY6SG3DFZG", AccountID: "210987654321", Temporary: true,
		SessionToken: secret.New(token1), Location: finding.Location{File: "notes/creds with space.txt", Line: 1, Column: 1,
			Commit: "9fceb02d0ae598e95dc970b74767f19372d61af8", Author: "Alice <alice@example.invalid>", Date: "2024-03-01T10:00:00Z", Ref: "refs/heads/main"}})
	fs := c.Findings()
	fs[0].Verification = &finding.Verification{Status: "live", ARN: "arn:aws:iam::100000000000:user/ci", Account: "100000000000",
		Reach: &finding.Reach{Level: finding.ReachData, Why: []string{"data: s3:GetObject (read-data (attached to group readers))"},
			Policies: []string{"read-data"}, Groups: []string{"readers"}}}
	fs[0].Response = &finding.Response{Action: "deleted", At: "2024-03-01T10:01:00Z", Evidence: &finding.Evidence{
		From: time.Date(2024, 2, 28, 9, 0, 0, 0, time.UTC), To: time.Date(2024, 3, 1, 10, 1, 0, 0, time.UTC), Regions: []string{"us-east-1"},
		Calls: 3, Own: 1, OwnCalls: []finding.OwnCall{{At: time.Date(2024, 3, 1, 10, 0, 5, 0, time.UTC), Event: "GetCallerIdentity", RequestID: "c0ffee00-0000-4000-8000-000000000001"}}, First: time.Date(2024, 2, 29, 22, 14, 5, 0, time.UTC), Last: time.Date(2024, 2, 29, 23, 2, 41, 0, time.UTC),
		SourceIPs:   []finding.Count{{Value: "203.0.113.9", N: 2}, {Value: "198.51.100.4", N: 1}},
		EventNames:  []finding.Count{{Value: "CreateUser", N: 1}, {Value: "GetCallerIdentity", N: 1}, {Value: "ListBuckets", N: 1}},
		CallRegions: []finding.Count{{Value: "us-east-1", N: 3}},
		Notes:       []string{"CloudTrail delivers events within about 15 minutes: the last calls may not be here yet"}}}
	fs[0].Response.Replacement = &finding.Replacement{KeyID: "AKIAROSDW5AAREPLACE2", Secret: "keyburn/rotated/100000000000/ci",
		SecretARN: "arn:aws:secretsmanager:us-east-1:100000000000:secret:keyburn/rotated/100000000000/ci-AbCdEf"}
	fs[1].Verification = &finding.Verification{Status: "live", ARN: "arn:aws:sts::210987654321:assumed-role/deploy/ci", Account: "210987654321"}
	fs[1].Response = &finding.Response{Action: "sessions revoked", At: "2024-03-01T10:01:00Z", Evidence: &finding.Evidence{
		From: time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC), To: time.Date(2024, 3, 1, 10, 1, 0, 0, time.UTC), Regions: []string{"us-east-1"},
		Unread: "keyburn has no credentials in account 210987654321 (its own are in 100000000000, and no role_name is set to read there)"}}
	// A key AWS's own notice vouches for: no secret, the quarantine named.
	fs = append(fs, &finding.Finding{Rule: "aws-exposed-notice", Severity: "high", KeyID: "AKIAQYLPMN5HHHFPZAM2", AccountID: "123456789012",
		Locations: []finding.Location{{File: "(AWS Health notice)", Date: "2016-06-05T15:10:09Z",
			Ref: "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_EXAMPLE1"}},
		Vouched: &finding.Vouch{By: "AWS Health AWS_RISK_CREDENTIALS_EXPOSED", Account: "123456789012",
			Event: "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_EXAMPLE1"},
		Verification: &finding.Verification{Status: "exposed", ARN: "arn:aws:iam::123456789012:user/deploy", Account: "123456789012",
			Quarantine: []string{"AWSCompromisedKeyQuarantineV3"}},
		Response: &finding.Response{Action: "deleted", At: "2016-06-05T15:11:00Z"}})
	return fs
}

func TestGolden(t *testing.T) {
	for _, format := range Formats {
		for _, color := range []bool{false, true} {
			if color && format != "text" {
				continue
			}
			name := format
			if color {
				name += "-color"
			}
			t.Run(name, func(t *testing.T) {
				var buf bytes.Buffer
				if err := Write(&buf, format, sample(), Options{Color: color, Version: "test"}); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(buf.String(), secret1) || strings.Contains(buf.String(), token1[20:60]) {
					t.Fatalf("%s output carries a secret in full", format)
				}
				golden := filepath.Join("testdata", name+".golden")
				if *update {
					if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(string(want), buf.String()); diff != "" {
					t.Errorf("%s output differs from %s (-want +got):\n%s", format, golden, diff)
				}
			})
		}
	}
}

func TestShowSecret(t *testing.T) {
	for _, format := range Formats {
		var buf bytes.Buffer
		if err := Write(&buf, format, sample(), Options{ShowSecret: true}); err != nil {
			t.Fatal(err)
		}
		// SARIF goes to GitHub, and an HTML page is handed around: never
		// the secret.
		want := format != "sarif" && format != "html"
		if got := strings.Contains(buf.String(), secret1); got != want {
			t.Errorf("%s with ShowSecret: secret present = %v, want %v", format, got, want)
		}
	}
}

// TestJSONFields checks the JSON carries the finding format's field names.
func TestJSONFields(t *testing.T) {
	var buf bytes.Buffer
	if err := JSONL(&buf, sample()[:1], Options{}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"rule", "key_id", "account_id", "secret_redacted", "secret_sha256", "fingerprint", "file", "line", "column", "verification", "response"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks field %q: %s", k, buf.String())
		}
	}
	if v := m["verification"].(map[string]any); v["status"] != "live" || v["arn"] == nil {
		t.Errorf("verification = %v", v)
	}
}

func TestUnknownFormat(t *testing.T) {
	err := Write(&bytes.Buffer{}, "xml", nil, Options{})
	if err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("Write(xml) = %v, want an error naming the format", err)
	}
}
