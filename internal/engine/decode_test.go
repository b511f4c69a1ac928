package engine

import (
	"testing"

	"github.com/keyburn/keyburn/internal/finding"
	"github.com/keyburn/keyburn/internal/source"
	"github.com/keyburn/keyburn/internal/vectors"
)

// TestVectors runs every detection vector through the engine, decoders
// included: a plain vector must give the same findings as the detector's
// own test expects, and an encoded one must be found, paired, and noted
// with its encoding.
func TestVectors(t *testing.T) {
	m := matcher(t, "")
	vs, err := vectors.Load("../../testdata/vectors", 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			coll := finding.NewCollector()
			for _, mt := range Matches(m, source.Whole(v.Body, source.Provenance{Path: v.Name}), DefaultDecodeDepth) {
				coll.Add(mt)
			}
			var found []vectors.Found
			for _, f := range coll.Findings() {
				vf := vectors.Found{Rule: f.Rule, KeyID: f.KeyID, Secret: f.Secret, SessionToken: f.SessionToken}
				for _, loc := range f.Locations {
					vf.Encodings = append(vf.Encodings, loc.Encoding)
				}
				found = append(found, vf)
			}
			for _, e := range v.Check(found) {
				t.Error(e)
			}
		})
	}
}

// TestDecodedLocation: a decoded key is located at its encoded text, and
// its secret's line is that of the encoded secret.
func TestDecodedLocation(t *testing.T) {
	m := matcher(t, "")
	vs, err := vectors.Load("../../testdata/vectors", 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Name != "base64-k8s-secret" {
			continue
		}
		ms := Matches(m, source.Whole(v.Body, source.Provenance{Path: "secret.yaml"}), DefaultDecodeDepth)
		if len(ms) != 1 {
			t.Fatalf("got %d matches, want 1", len(ms))
		}
		loc := ms[0].Location
		if loc.Line != 7 || loc.Column != 22 || loc.SecretLine != 8 || loc.Encoding != "base64" {
			t.Errorf("located at %d:%d, secret line %d, encoding %q; want 7:22, secret line 8, base64", loc.Line, loc.Column, loc.SecretLine, loc.Encoding)
		}
		return
	}
	t.Fatal("vector base64-k8s-secret is missing")
}
