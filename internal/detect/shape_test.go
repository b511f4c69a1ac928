package detect

import (
	"math/rand/v2"
	"testing"

	"github.com/keyburn/keyburn/internal/testkeys"
)

func TestReadsAsIdentifier(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"ConfigServiceConfigChangedFunction8CB6DB", true},
		{"PublisherServiceTriggerValidatorA1B2C3D4", true},
		{"TestSecretsManagerRotationLambdaHandler2", true},
		{"serverlesspressostackpublisherservice123", true},
		{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE12", false},
		{"5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF", false},
		{"XA9FCuj67f/VxTPchbu1o68EH55iS+Ro0f9edXs+", false},
	} {
		if got := readsAsIdentifier(tt.v); got != tt.want {
			t.Errorf("readsAsIdentifier(%s…) = %v, want %v", tt.v[:4], got, tt.want)
		}
	}
}

func TestReadsAsPath(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"build/2024/06/releaseNotes/packageLayout", true},
		{"home/runner/work/deployment/artifacts/x1", true}, // one short segment among words
		{"var/lib/jenkins/workspace/pipelineCache", true},
		{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLE12", false},
		{"5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF", false},
	} {
		if got := readsAsPath(tt.v); got != tt.want {
			t.Errorf("readsAsPath(%s…) = %v, want %v", tt.v[:4], got, tt.want)
		}
	}
}

// TestShapesSpareRandomKeys: no shape test rejects a random secret or
// key ID, 2 million of each (a real key lost to one would never be
// verified). Each shape's test has its own name, for the comments that cite
// it.
func TestShapesSpareRandomKeys(t *testing.T) {
	n := 2_000_000
	if testing.Short() {
		n = 200_000
	}
	for _, tt := range []struct {
		name   string
		seed   uint64
		draw   func(*rand.Rand) string
		reject func(string) bool
	}{
		{"TestIdentifierShapeSparesRandomSecrets", 21, testkeys.Secret, readsAsIdentifier},
		{"TestPathShapeSparesRandomSecrets", 23, testkeys.Secret, readsAsPath},
		{"TestPlaceholderShapeSparesRandomIDs", 22, func(rng *rand.Rand) string {
			return testkeys.KeyID(rng, "AKIA", rng.Uint64N(1_000_000_000_000))
		}, func(id string) bool { return placeholderShape(id[4:]) != "" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tt.seed, tt.seed))
			for range n {
				if v := tt.draw(rng); tt.reject(v) {
					t.Fatalf("a random key (%s…) is rejected by its shape", v[:4])
				}
			}
		})
	}
}
