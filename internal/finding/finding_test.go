package finding

import (
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/secret"
)

const fp = "49c4ecf5b8a351f3efe0addd85128403697cc9d4aee14cdc64280ad56429b740"

func TestParseBaseline(t *testing.T) {
	tests := []struct {
		name, in string
		want     int
		err      string
	}{
		{"text", "# accepted\n" + fp + " test fixture\n\n", 1, ""},
		{"json", `[{"rule":"aws-access-key","fingerprint":"` + fp + `"}]`, 1, ""},
		{"jsonl", `{"fingerprint":"` + fp + `"}` + "\n", 1, ""},
		{"empty", "", 0, ""},
		{"bad line", "# x\nnot-a-fingerprint\n", 0, "b.txt:2:"},
		{"bad json", `[{"fingerprint": 5}]`, 0, "not a keyburn JSON report"},
		{"short fp in json", `[{"fingerprint":"abc"}]`, 0, "entry 0"},
	}
	for _, tt := range tests {
		b, err := ParseBaseline("b.txt", []byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: ParseBaseline error = %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || len(b) != tt.want {
			t.Errorf("%s: ParseBaseline = %d entries, %v, want %d", tt.name, len(b), err, tt.want)
		}
	}
}

func TestCollectorGroupsAndFilters(t *testing.T) {
	c := NewCollector()
	s := secret.New("5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF")
	m := Match{Rule: "aws-access-key", Severity: "high", KeyID: "AKIAROSDW5AABZW3VLYZ", Secret: s, Location: Location{File: "b", Line: 2, Column: 1}}
	c.Add(m)
	c.Add(m) // the same place twice (chunk overlap): once
	m.Location.File = "a"
	c.Add(m)
	m.Secret = secret.Secret{}
	m.Location.File = "c"
	c.Add(m) // seen elsewhere without its secret: the same key, one finding
	lone := Match{Rule: "aws-access-key", Severity: "high", KeyID: "AKIABOTYWKPD2H3RV7SD", Location: Location{File: "d", Line: 1, Column: 1}}
	c.Add(lone)
	fs := c.Findings()
	if len(fs) != 2 {
		t.Fatalf("findings = %+v, want 2 (one per key)", fs)
	}
	byKey := map[string]*Finding{}
	for _, f := range fs {
		byKey[f.KeyID] = f
	}
	f := byKey[m.KeyID]
	if len(f.Locations) != 3 || f.Locations[0].File != "a" || f.Secret.Reveal() != s.Reveal() || f.Severity != "high" {
		t.Errorf("the paired key: %+v", f)
	}
	if u := byKey[lone.KeyID]; u == nil || u.Paired() || u.Severity != "medium" {
		t.Errorf("a key never paired: %+v, want medium", u)
	}
}

// TestOneFindingPerKey: a key paired with different secrets in different
// places is one finding; its secret is the one paired most often, the
// others are alternates. Merging findings of several repositories keeps that.
func TestOneFindingPerKey(t *testing.T) {
	good := secret.New("5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF")
	other := secret.New("XA9FCuj67f/VxTPchbu1o68EH55iS+Ro0f9edXs+")
	c := NewCollector()
	add := func(file string, s secret.Secret) {
		c.Add(Match{Rule: "aws-access-key", Severity: "high", KeyID: "AKIAJHS4T6XPF7XIURNA", Secret: s, Location: Location{File: file, Line: 1, Column: 1}})
	}
	add("a", other) // the earliest place pairs a stray token
	add("b", good)
	add("c", good)
	add("d", secret.Secret{})
	fs := c.Findings()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1", len(fs))
	}
	f := fs[0]
	if f.Secret.Reveal() != good.Reveal() || len(f.Alternates) != 1 || f.Alternates[0].Reveal() != other.Reveal() || len(f.Locations) != 4 {
		t.Errorf("secret %s, alternates %v, %d locations; want the secret paired twice, the other as alternate, 4 locations",
			f.Secret.Redacted(), f.Alternates, len(f.Locations))
	}
	unpaired := &Finding{Rule: "aws-access-key", Severity: "medium", KeyID: "AKIAJHS4T6XPF7XIURNA", Locations: []Location{{File: "repo2/x", Line: 1}}}
	merged := Merge([]*Finding{unpaired, f})
	if len(merged) != 1 || merged[0].Secret.Reveal() != good.Reveal() || len(merged[0].Locations) != 5 || merged[0].Severity != "high" {
		t.Errorf("Merge = %+v", merged)
	}
	if alone := Merge([]*Finding{unpaired}); alone[0].Severity != "medium" {
		t.Errorf("merging an unpaired finding lowered it again: %s", alone[0].Severity)
	}
}

func FuzzParseBaseline(f *testing.F) {
	f.Add([]byte(fp + "\n"))
	f.Add([]byte(`[{"fingerprint":"` + fp + `"}]`))
	f.Add([]byte(`{"fingerprint":"` + fp + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBaseline("f", data)
		if err != nil {
			return
		}
		for k := range b {
			if !fingerprintRE.MatchString(k) {
				t.Fatalf("accepted fingerprint %q", k)
			}
		}
	})
}

// TestSurestLocationDecides: a key's severity is its surest location's,
// whatever order its matches come in (history is scanned in parallel), and
// a merge of several scans keeps each location's own secret.
func TestSurestLocationDecides(t *testing.T) {
	s1, s2 := secret.New("5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF"), secret.New("Y3vZvRrmRFWu5loOQMq2YGt+sW32vMuDsMdnGtJg")
	fixture := Match{Rule: "aws-access-key", Severity: "high", KeyID: "AKIAH7RH4MBQEQEFGOSL", Location: Location{File: "pkg/testdata/a.env", Line: 1}}
	plain := Match{Rule: "aws-access-key", Severity: "high", KeyID: "AKIAH7RH4MBQEQEFGOSL", Location: Location{File: "deploy/b.env", Line: 1}}
	for _, order := range [][]Match{{fixture, plain}, {plain, fixture}} {
		c := NewCollector()
		for _, m := range order {
			c.Add(m)
		}
		if fs := c.Findings(); len(fs) != 1 || fs[0].Severity != "medium" {
			t.Errorf("order %s first: severity %s, want medium (an ID alone, found outside fixtures)", order[0].Location.File, fs[0].Severity)
		}
	}
	c := NewCollector()
	a, b := plain, plain
	a.Secret, a.Location.File = s1, "one.env"
	b.Secret, b.Location.File = s2, "two.env"
	c.Add(a)
	c.Add(a)
	c.Add(b)
	merged := Merge(c.Findings())
	if len(merged) != 1 || merged[0].Secret.Reveal() != s1.Reveal() {
		t.Fatalf("merged %+v, want one finding with the secret paired most often", merged)
	}
	for _, l := range merged[0].Locations {
		want := s1
		if l.File == "two.env" {
			want = s2
		}
		if l.Secret.Reveal() != want.Reveal() {
			t.Errorf("%s: location secret %s after a merge, want %s", l.File, l.Secret, want)
		}
	}
}
