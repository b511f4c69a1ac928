package detect

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/keyburn/keyburn/internal/secret"
	"github.com/keyburn/keyburn/internal/testkeys"
)

func TestAccountID(t *testing.T) {
	tests := []struct {
		keyID, want string
		ok          bool
	}{
		// A published example of the encoding.
		{"ASIAY34FZKBOKMUTVV7A", "609629065308", true},
		{"AKIAROSDW5AABZW3VLYZ", "100000000000", true},
		{"AKIABOTYWKPD2H3RV7SD", "100111111111", true},
		// The old format does not encode the account.
		{"AKIAIOSFODNN7EXAMPLE", "", false},
		{"AKIAJQABLZS4A3QDU576", "", false},
		{"AKIA", "", false},
		{"AKIA0000000000000000", "", false}, // 0 is not base32
	}
	for _, tt := range tests {
		got, ok := AccountID(tt.keyID)
		if got != tt.want || ok != tt.ok {
			t.Errorf("AccountID(%q) = %q, %v, want %q, %v", tt.keyID, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAccountIDRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 1000 {
		acct := rng.Uint64N(1_000_000_000_000)
		id := testkeys.KeyID(rng, "AKIA", acct)
		got, ok := AccountID(id)
		if want := strings.Repeat("0", 12-len(itoa(acct))) + itoa(acct); !ok || got != want {
			t.Fatalf("AccountID(%s) = %q, %v, want %q", id, got, ok, want)
		}
	}
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

var tokenTests = []struct {
	in   string
	want []string // decoded values of runs of 40 or more
}{
	{"x=5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF;", []string{"5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF"}},
	{"s=%2BjWGg%2F9XDwmrm7wC0KCwKrnsBqnEQR5Dr8Z%2BVC4A&x", []string{"+jWGg/9XDwmrm7wC0KCwKrnsBqnEQR5Dr8Z+VC4A"}},
	{"s=%2bjWGg%2f9XDwmrm7wC0KCwKrnsBqnEQR5Dr8Z%2bVC4A", []string{"+jWGg/9XDwmrm7wC0KCwKrnsBqnEQR5Dr8Z+VC4A"}},
	{`"o1EuqWdS\/t6IIyQehwgCV5xu8vhhlwOrCEeOuNGk"`, []string{"o1EuqWdS/t6IIyQehwgCV5xu8vhhlwOrCEeOuNGk"}},
	{`"a\nqjHtiV5k/aCxpLsOfv+3ifgFRlvYS9CPHSLgjnuL\n"`, []string{"qjHtiV5k/aCxpLsOfv+3ifgFRlvYS9CPHSLgjnuL"}},
	{"key%3DNbyrXaQpYfZX+23AfHrOQE3B0fUiUU+irhJnxQnf%26", []string{"NbyrXaQpYfZX+23AfHrOQE3B0fUiUU+irhJnxQnf"}},
	{"short+token/only", nil},
	{"", nil},
	{"%2", nil},
	{`\`, nil},
}

func TestTokens(t *testing.T) {
	for i, tt := range tokenTests {
		var got []string
		for _, tok := range tokens(Whole([]byte(tt.in)), 40) {
			got = append(got, tok.Value)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("tokens(case %d) = %q, want %q", i, redactAll(got), redactAll(tt.want))
		}
	}
}

var secretGateTests = []struct {
	in      string
	keyword bool
	want    bool
}{
	{"5cz5JaTvHLCR/Obl71LPbATNwC0uUNDJVdJQXksF", false, true},
	{"NbyrXaQpYfZXhAfHrOQEBfUiUUirhJnxQnfLKwpd", true, true}, // letters only, after a keyword
	{"NbyrXaQpYfZXhAfHrOQEBfUiUUirhJnxQnfLKwpd", false, false},
	{"9fceb02d0ae598e95dc970b74767f19372d61af8", false, false}, // SHA-1
	{"9FCEB02D0AE598E95DC970B74767F19372D61AF8", false, false},
	{"9fCEb02d0AE598e95dc970b74767f19372D61AF8", false, false}, // mixed-case hex
	{"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", false, false},
	{"ThisIsAVeryLongIdentifierNameForTheTests", false, false}, // low entropy, no digits
	{"abcdefghijklmnopqrstuvwxyzabcdefghijklmn", false, false}, // one case
}

func TestLooksSecret(t *testing.T) {
	for _, tt := range secretGateTests {
		if got := looksSecret(tt.in, 3.8, tt.keyword); got != tt.want {
			t.Errorf("looksSecret(%s) = %v (entropy %.2f), want %v", secret.Redact(tt.in), got, Entropy(tt.in), tt.want)
		}
	}
	// Real secrets pass the gates: measure on many random ones.
	rng := rand.New(rand.NewPCG(3, 3))
	fails := 0
	for range 100000 {
		if !looksSecret(testkeys.Secret(rng), 3.8, true) {
			fails++
		}
	}
	if fails > 0 {
		t.Errorf("%d of 100000 random secrets fail the gates", fails)
	}
}

// TestLongLine puts a credential in the middle of a 1 MB line of minified
// code, and next to both ends of the data.
func TestLongLine(t *testing.T) {
	m := defaultMatcher(t)
	const id, sec = "AKIAROXCVFNKZXCNQIRA", "o1EuqWdS/t6IIyQehwgCV5xu8vhhlwOrCEeOuNGk"
	filler := bytes.Repeat([]byte(`function(a,b){return a+b};var q="x";`), 30000)
	cases := map[string][]byte{
		"middle": append(append(append([]byte{}, filler[:500000]...), `var k="`+id+`",s="`+sec+`";`...), filler[500000:]...),
		"start":  append([]byte(id+` `+sec+`;`), filler...),
		"end":    append(append([]byte{}, filler...), ` `+id+` secret=`+sec...),
	}
	for name, data := range cases {
		c := m.Scan(Whole(data))
		if len(c) != 1 || c[0].KeyID != id || c[0].Secret.Reveal() != sec {
			t.Errorf("%s of a %d-byte line: got %d candidates, want %s paired", name, len(data), len(c), id)
		}
	}
}

func TestUTF16Helper(t *testing.T) {
	// detect itself scans bytes; sources decode UTF-16 before calling it.
	// Check the matcher does not see a key in raw UTF-16 (so a source that
	// forgot to decode would fail its own tests rather than pass by luck).
	u := utf16.Encode([]rune("AKIAROXCVFNKZXCNQIRA"))
	var b []byte
	for _, r := range u {
		b = append(b, byte(r), byte(r>>8))
	}
	if c := defaultMatcher(t).Scan(Whole(b)); len(c) != 0 {
		t.Errorf("raw UTF-16 gave %d candidates, want 0", len(c))
	}
}

func TestPairingManyPairs(t *testing.T) {
	m := defaultMatcher(t)
	rng := rand.New(rand.NewPCG(9, 9))
	var b strings.Builder
	want := map[string]string{}
	for i := range 200 {
		id, sec := testkeys.KeyID(rng, "AKIA", uint64(i)), testkeys.Secret(rng)
		want[id] = sec
		// Alternate orders and layouts.
		switch i % 3 {
		case 0:
			b.WriteString("[p" + itoa(uint64(i)) + "]\naws_access_key_id = " + id + "\naws_secret_access_key = " + sec + "\n\n")
		case 1:
			b.WriteString(`{"AccessKeyId":"` + id + `","SecretAccessKey":"` + sec + `"},`)
		case 2:
			b.WriteString("export AWS_ACCESS_KEY_ID=" + id + " AWS_SECRET_ACCESS_KEY=" + sec + "\n")
		}
	}
	got := m.Scan(Whole([]byte(b.String())))
	if len(got) != len(want) {
		t.Fatalf("got %d candidates, want %d", len(got), len(want))
	}
	for _, c := range got {
		if want[c.KeyID] != c.Secret.Reveal() {
			t.Errorf("%s paired with %v, want its own secret", c.KeyID, c.Secret)
		}
		if len(c.Alternates) > c.Rule.MaxPairs-1 {
			t.Errorf("%s has %d alternates, cap is %d", c.KeyID, len(c.Alternates), c.Rule.MaxPairs-1)
		}
	}
}

func TestChooseAnchors(t *testing.T) {
	tests := []struct {
		keywords []string
		want     string
	}{
		{[]string{"AKIA", "ASIA", "ABIA", "ACCA"}, "IA,ACCA"},
		{[]string{"AKIA"}, "AKIA"},
		{[]string{"CORP", "CORE"}, "COR"},
		{[]string{"X"}, "X"},
		{[]string{"ghp_", "gho_", "AKIA"}, "gh,AKIA"},
	}
	for _, tt := range tests {
		var kws [][]byte
		for _, k := range tt.keywords {
			kws = append(kws, []byte(k))
		}
		var got []string
		for _, a := range chooseAnchors(kws) {
			got = append(got, string(a.lit))
			for _, ka := range a.in {
				if !bytes.Equal(ka.kw[ka.off:ka.off+len(a.lit)], a.lit) {
					t.Errorf("anchor %q recorded at %d of %q", a.lit, ka.off, ka.kw)
				}
			}
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("chooseAnchors(%q) = %q, want %q", tt.keywords, got, tt.want)
		}
	}
}

// redactAll redacts each value, so that a failing test prints no secret.
func redactAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = secret.Redact(v)
	}
	return out
}
