package awsnotice

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	exposed := string(fixture(t, "exposed.json"))
	tests := []struct {
		name    string
		body    string
		want    error // nil, ErrOther or ErrMalformed
		errText string
		account string
		keys    []string
		ignored int
	}{
		{name: "AWS's documented example", body: exposed, account: "123456789012", keys: []string{"AKIAQYLPMN5HHHFPZAM2"}},
		{name: "an organisation's aggregated view names the member account", body: string(fixture(t, "organization.json")),
			account: "444455556666", keys: []string{"AKIAWFAKEKEYEXAMPLE2"}, ignored: 1},
		{name: "another Health event", body: string(fixture(t, "ec2-scheduled.json")), want: ErrOther, errText: "AWS_EC2_INSTANCE_STORE"},
		{name: "another source", body: string(fixture(t, "guardduty.json")), want: ErrOther, errText: "aws.guardduty"},
		{name: "not JSON", body: "hello", want: ErrMalformed, errText: "syntax error at byte"},
		{name: "an SNS envelope is another kind", body: `{"Type":"Notification","Message":"{}"}`, want: ErrOther},
		{name: "no detail", body: `{"source":"aws.health","detail-type":"AWS Health Event","account":"123456789012"}`, want: ErrMalformed, errText: "without detail"},
		{name: "detail of the wrong type", body: `{"source":"aws.health","detail-type":"AWS Health Event","account":"123456789012","detail":[1]}`, want: ErrMalformed},
		{name: "a bad account", body: strings.Replace(exposed, `"account": "123456789012"`, `"account": "12345"`, 1), want: ErrMalformed, errText: "12-digit"},
		{name: "a bad member account", body: strings.Replace(exposed, `"service": "RISK",`, `"affectedAccount": "../../x",`, 1), want: ErrMalformed, errText: "12-digit"},
		{name: "no key among the entities", body: strings.ReplaceAll(exposed, `"AKIAQYLPMN5HHHFPZAM2"`, `"not-a-key"`), want: ErrMalformed, errText: "no access key ID"},
		{name: "a lower-case key ID is not one", body: strings.ReplaceAll(exposed, `"AKIAQYLPMN5HHHFPZAM2"`, `"akiaqylpmn5hhhfpzam2"`), want: ErrMalformed},
		{name: "too large", body: `{"x":"` + strings.Repeat("a", MaxSize) + `"}`, want: ErrMalformed, errText: "over the"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse([]byte(tt.body))
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Parse error = %v, want %v", err, tt.want)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("Parse error = %q, want it to say %q", err, tt.errText)
				}
				if len(err.Error()) > 300 {
					t.Errorf("error of %d characters: a hostile message must not be quoted whole", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if n.Account != tt.account || !slices.Equal(n.Keys, tt.keys) || n.Ignored != tt.ignored {
				t.Errorf("Parse = account %s, keys %v, ignored %d; want %s, %v, %d", n.Account, n.Keys, n.Ignored, tt.account, tt.keys, tt.ignored)
			}
			if n.EventARN == "" || n.StartTime.IsZero() {
				t.Errorf("Parse = event %q, start %v: want both read", n.EventARN, n.StartTime)
			}
		})
	}
}

func TestFindings(t *testing.T) {
	n, err := Parse(fixture(t, "exposed.json"))
	if err != nil {
		t.Fatal(err)
	}
	fs := n.Findings()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1", len(fs))
	}
	f := fs[0]
	if f.KeyID != "AKIAQYLPMN5HHHFPZAM2" || f.AccountID != "123456789012" || f.Paired() || f.Vouched == nil || f.Vouched.Account != "123456789012" || f.Vouched.By != By {
		t.Errorf("finding = %+v, vouched %+v", f, f.Vouched)
	}
	want := time.Date(2016, 6, 5, 15, 10, 9, 0, time.UTC).Format(time.RFC3339)
	if l := f.Locations[0]; l.Date != want || !strings.Contains(l.Ref, "AWS_RISK_CREDENTIALS_EXPOSED") {
		t.Errorf("location = %+v: want the start time %s and the event ARN", l, want)
	}
}

// FuzzParse: whatever a queue holds, Parse returns a notice that holds
// only key IDs and a 12-digit account, or an error of one of its two kinds.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"exposed.json", "organization.json", "ec2-scheduled.json", "guardduty.json"} {
		f.Add(fixture(&testing.T{}, name))
	}
	f.Add([]byte(`{"source":"aws.health","detail-type":"AWS Health Event","account":"123456789012","detail":{"eventTypeCode":"AWS_RISK_CREDENTIALS_EXPOSED","affectedEntities":[{"entityValue":"AKIAQYLPMN5HHHFPZAM2"}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrOther) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error of neither kind: %v", err)
			}
			return
		}
		if !accountRE.MatchString(n.Account) || len(n.Keys) == 0 || len(n.Keys) > maxKeys {
			t.Fatalf("notice %+v: a bad account or key count", n)
		}
		for _, k := range n.Keys {
			if !keyIDRE.MatchString(k) {
				t.Fatalf("key %q is not a key ID", k)
			}
		}
		if n.EventARN != "" && label(n.EventARN) != n.EventARN {
			t.Fatalf("event ARN %q kept", n.EventARN)
		}
	})
}

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/X_1": "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/X_1",
		"us-east-1":              "us-east-1",
		"":                       "",
		"a b":                    "",
		"<script>":               "",
		"line\nbreak":            "",
		"é":                      "",
		strings.Repeat("a", 200): strings.Repeat("a", 200),
		strings.Repeat("a", 201): "",
	} {
		if got := label(in); got != want {
			t.Errorf("label(%.20q) = %.20q, want %.20q", in, got, want)
		}
	}
}
