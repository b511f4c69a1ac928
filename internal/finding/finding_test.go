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
	c.Add(m) // unpaired: its own finding, one level lower
	fs := c.Findings()
	if len(fs) != 2 || len(fs[0].Locations) != 2 || fs[0].Locations[0].File != "a" {
		t.Fatalf("findings = %+v", fs)
	}
	var unpaired *Finding
	for _, f := range fs {
		if !f.Paired() {
			unpaired = f
		}
	}
	if unpaired == nil || unpaired.Severity != "medium" {
		t.Errorf("unpaired finding = %+v, want severity medium", unpaired)
	}
	kept, n := Baseline{fs[0].Fingerprint(): true}.Filter(fs)
	if n != 1 || len(kept) != 1 || kept[0] == fs[0] {
		t.Errorf("Filter kept %d, accepted %d", len(kept), n)
	}
	if fs[0].Fingerprint() == unpaired.Fingerprint() {
		t.Errorf("paired and unpaired findings share a fingerprint")
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
