package engine

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/testkeys"
)

// TestSeverityLadder: before verification, severity says how sure the
// detector is. A pair a keyword names is high; a pair by proximity alone,
// an ID alone, or an ID joined from literals is medium; a key of an account
// no real key is in, or in a test fixture, is low.
func TestSeverityLadder(t *testing.T) {
	opts := Options{Matcher: matcher(t, "")}
	rng := rand.New(rand.NewPCG(5, 21))
	docs, emulator := testkeys.KeyID(rng, "AKIA", 123456789012), testkeys.KeyID(rng, "ASIA", 0)
	tests := []struct {
		name, path, text, want string
	}{
		{"named pair", "deploy/prod.env", "AWS_ACCESS_KEY_ID=AKIAH7RH4MBQEQEFGOSL\nAWS_SECRET_ACCESS_KEY=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\n", "high"},
		{"generic keyword", "deploy/prod.env", "id = AKIAH7RH4MBQEQEFGOSL\nsecret = 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\n", "high"},
		{"proximity alone", "deploy/prod.env", "AKIAH7RH4MBQEQEFGOSL Y3vZvRrmRFWu5loOQMq2YGt+sW32vMuDsMdnGtJg\n", "medium"},
		{"ID alone", "deploy/prod.env", "key = AKIAH7RH4MBQEQEFGOSL\n", "medium"},
		{"documentation account", "deploy/prod.env", "AWS_ACCESS_KEY_ID=" + docs + "\nAWS_SECRET_ACCESS_KEY=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\n", "low"},
		{"emulator account", "deploy/prod.env", "AWS_ACCESS_KEY_ID=" + emulator + "\nAWS_SECRET_ACCESS_KEY=Y3vZvRrmRFWu5loOQMq2YGt+sW32vMuDsMdnGtJg\n", "low"},
		{"fixture directory", "pkg/testdata/creds.env", "AWS_ACCESS_KEY_ID=AKIAH7RH4MBQEQEFGOSL\nAWS_SECRET_ACCESS_KEY=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\n", "low"},
		{"another scanner's allow comment", "deploy/prod.env", "AWS_ACCESS_KEY_ID=AKIAH7RH4MBQEQEFGOSL # gitleaks:allow\nAWS_SECRET_ACCESS_KEY=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\n", "low"},
		{"test file", "pkg/aws/aws_test.go", "id := \"AKIAH7RH4MBQEQEFGOSL\"\nsecret := \"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\"\n", "low"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ScanReader(context.Background(), opts, strings.NewReader(tt.text), tt.path, &recorder{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Findings) != 1 || res.Findings[0].Severity != tt.want {
				var got []string
				for _, f := range res.Findings {
					got = append(got, f.KeyID+" "+f.Severity)
				}
				t.Errorf("findings %v, want one of severity %s", got, tt.want)
			}
		})
	}
}
