package detect

import (
	"testing"

	"github.com/keyburn/keyburn/internal/vectors"
	"github.com/keyburn/keyburn/rules"
)

const vectorDir = "../../testdata/vectors"

func loadVectors(t testing.TB) []vectors.Vector {
	t.Helper()
	vs, err := vectors.Load(vectorDir, 20)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func defaultMatcher(t testing.TB) *Matcher {
	t.Helper()
	set, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	return New(set)
}

func TestVectors(t *testing.T) {
	m := defaultMatcher(t)
	for _, v := range loadVectors(t) {
		if v.Encoding != "" || len(v.Lone) > 0 {
			continue // found by decoding or in configuration, as the engine decides: its tests run these
		}
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			checkVector(t, m, v, v.Body)
		})
	}
}

// checkVector runs v's expectations against the candidates found in body.
func checkVector(t *testing.T, m *Matcher, v vectors.Vector, body []byte) {
	t.Helper()
	var found []vectors.Found
	for _, c := range m.Scan(Whole(body)) {
		found = append(found, vectors.Found{Rule: c.Rule.ID, KeyID: c.KeyID, Secret: c.Secret, SessionToken: c.SessionToken})
		if !holds(body[c.KeySpan.Start:c.KeySpan.End], IDMatch{Value: c.KeyID, Joined: c.Joined}) {
			t.Errorf("%s: key span %v holds %q, not the key ID", v.Comment, c.KeySpan, body[c.KeySpan.Start:c.KeySpan.End])
		}
	}
	for _, e := range v.Check(found) {
		t.Error(e)
	}
}
