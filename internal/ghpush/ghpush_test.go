package ghpush

import (
	"errors"
	"strings"
	"testing"
)

const a, b = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"

func body(fullName, ref, before, after string) []byte {
	return []byte(`{"ref":"` + ref + `","before":"` + before + `","after":"` + after +
		`","repository":{"full_name":"` + fullName + `","clone_url":"file:///etc","default_branch":"main"},` +
		`"installation":{"id":666},"commits":[{"id":"` + after + `"},{"id":"not a sha"}]}`)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"a push", body("acme/hello", "refs/heads/main", a, b), true},
		{"a new branch", body("acme/hello", "refs/heads/feature/x", Zero, b), true},
		{"escaping name", body("../escaped", "refs/heads/main", a, b), false},
		{"dot-dot repo", body("acme/..", "refs/heads/main", a, b), false},
		{"ref with ..", body("acme/hello", "refs/heads/a..b", a, b), false},
		{"ref not under refs/", body("acme/hello", "main", a, b), false},
		{"short sha", body("acme/hello", "refs/heads/main", a, "abc"), false},
		{"option as sha", body("acme/hello", "refs/heads/main", a, "--upload-pack=x"), false},
		{"not JSON", []byte(`{"ref":`), false},
	}
	for _, tt := range tests {
		p, name, err := Parse(tt.body)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrNotPush)) {
			t.Errorf("%s: Parse = %+v, %v, %v; want ok %v", tt.name, p, name, err, tt.ok)
			continue
		}
		if tt.ok && (name.String() != "acme/hello" || len(p.Commits) != 1 || strings.Join(p.Wants(), ",") != b) {
			t.Errorf("%s: %+v %v; wants %v", tt.name, p, name, p.Wants())
		}
	}
	p1, _, _ := Parse(body("acme/hello", "refs/heads/main", a, b))
	p2, _, _ := Parse(body("ACME/hello", "refs/heads/main", a, b))
	if p1.DedupeKey() != p2.DedupeKey() {
		t.Errorf("the same push under two spellings of the owner: %q and %q", p1.DedupeKey(), p2.DedupeKey())
	}
}

func FuzzParse(f *testing.F) {
	f.Add(body("acme/hello", "refs/heads/main", a, b))
	f.Add([]byte(`{"ref":"refs/heads/x","repository":{"full_name":"a/b"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, name, err := Parse(data)
		if err != nil {
			return
		}
		if strings.Contains(name.String(), "..") && (name.Repo == ".." || name.Owner == "..") {
			t.Errorf("accepted %q", name)
		}
		if len(p.After) != 40 || len(p.Commits) > maxCommits {
			t.Errorf("accepted %+v", p)
		}
	})
}
