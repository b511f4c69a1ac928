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
			t.Errorf("readsAsIdentifier(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// TestIdentifierShapeSparesRandomSecrets: the identifier test rejects no
// random secret in 2 million (a real secret lost to it would be a key
// never verified).
func TestIdentifierShapeSparesRandomSecrets(t *testing.T) {
	n := 2_000_000
	if testing.Short() {
		n = 200_000
	}
	rng := rand.New(rand.NewPCG(21, 21))
	for range n {
		if s := testkeys.Secret(rng); readsAsIdentifier(s) {
			t.Fatalf("a random secret reads as an identifier: %s…", s[:4])
		}
	}
}

// TestPlaceholderShapeSparesRandomIDs: no random AWS key ID of 2 million
// looks typed.
func TestPlaceholderShapeSparesRandomIDs(t *testing.T) {
	n := 2_000_000
	if testing.Short() {
		n = 200_000
	}
	rng := rand.New(rand.NewPCG(22, 22))
	for range n {
		id := testkeys.KeyID(rng, "AKIA", rng.Uint64N(1_000_000_000_000))
		if why := placeholderShape(id[4:]); why != "" {
			t.Fatalf("random ID %s reads as a placeholder: %s", id, why)
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
			t.Errorf("readsAsPath(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// TestPathShapeSparesRandomSecrets: no random secret of 2 million reads as
// a path.
func TestPathShapeSparesRandomSecrets(t *testing.T) {
	n := 2_000_000
	if testing.Short() {
		n = 200_000
	}
	rng := rand.New(rand.NewPCG(23, 23))
	for range n {
		if s := testkeys.Secret(rng); readsAsPath(s) {
			t.Fatalf("a random secret reads as a path: %s…", s[:4])
		}
	}
}
