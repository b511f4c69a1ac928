package hook

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/engine"
	"github.com/keyburn/keyburn/internal/source"
	"github.com/keyburn/keyburn/internal/testkeys"
	"github.com/keyburn/keyburn/internal/vectors"
	"github.com/keyburn/keyburn/rules"
)

func matcher(t testing.TB) *detect.Matcher {
	t.Helper()
	set, err := rules.Load(rules.DefaultFS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return detect.New(set)
}

// TestDirtyWheneverTheEngineFinds: on every detection vector, and on
// random texts with keys planted plain, base64-encoded or named, Dirty is
// true whenever keyburn's engine finds anything in the text (as any file,
// configuration or not): keyburn-hook never calls clean what keyburn
// would not. And it is not true of everything: plain code without keys is
// clean.
func TestDirtyWheneverTheEngineFinds(t *testing.T) {
	m := matcher(t)
	vs, err := vectors.Load("../../testdata/vectors", 20)
	if err != nil {
		t.Fatal(err)
	}
	type text struct {
		name string
		body []byte
	}
	var texts []text
	for _, v := range vs {
		texts = append(texts, text{v.Name, v.Body}, text{"config.env", v.Body}, text{"main.go", v.Body})
	}
	rng := rand.New(rand.NewPCG(5, 8))
	for i := range 200 {
		id, sec := testkeys.KeyID(rng, "AKIA", 0), testkeys.Secret(rng)
		var b strings.Builder
		fmt.Fprintf(&b, "line %d\n", i)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "key = %q\nsecret = %q\n", id, sec)
		case 1:
			fmt.Fprintf(&b, "blob: %s\n", b64("aws_access_key_id="+id+"\naws_secret_access_key="+sec+"\n"))
		case 2:
			fmt.Fprintf(&b, "aws_secret_access_key = %s\n", sec)
		case 3:
			fmt.Fprintf(&b, "outer: %s\n", b64("inner: "+b64("AWS_ACCESS_KEY_ID="+id+"\n")))
		}
		texts = append(texts, text{"a.env", []byte(b.String())}, text{"a.txt", []byte(b.String())})
	}
	found := 0
	for _, tx := range texts {
		if !plainText(tx.body) {
			continue // keyburn-hook hands it to keyburn whatever it holds
		}
		ms := engine.Matches(m, source.Whole(tx.body, source.Provenance{Path: tx.name}), engine.DefaultDecodeDepth)
		if len(ms) == 0 {
			continue
		}
		found++
		if !Dirty(m, tx.body, defaultDecodeDepth) {
			t.Errorf("%s: the engine finds %s, but Dirty says clean", tx.name, ms[0].KeyID)
		}
	}
	if found < 300 {
		t.Errorf("the engine found something in only %d texts: the test lost its teeth", found)
	}
	clean := []byte("package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello, world\")\n}\n")
	if Dirty(m, clean, defaultDecodeDepth) {
		t.Error("plain code without a key is called dirty")
	}
	if defaultDecodeDepth != engine.DefaultDecodeDepth {
		t.Errorf("decode depth %d, the engine's %d", defaultDecodeDepth, engine.DefaultDecodeDepth)
	}
}

func b64(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var out strings.Builder
	b := []byte(s)
	for i := 0; i < len(b); i += 3 {
		var n uint32
		k := min(3, len(b)-i)
		for j := range 3 {
			n <<= 8
			if j < k {
				n |= uint32(b[i+j])
			}
		}
		for j := range 4 {
			if j <= k {
				out.WriteByte(alphabet[n>>(18-6*j)&63])
			} else {
				out.WriteByte('=')
			}
		}
	}
	return out.String()
}

func TestStagedArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		path string
		ok   bool
	}{
		{nil, ".", true},
		{[]string{"staged"}, ".", true},
		{[]string{"scan", "staged"}, ".", true},
		{[]string{"scan", "staged", "repo"}, "repo", true},
		{[]string{"staged", "repo"}, "repo", true},
		{[]string{"scan", "staged", "--format", "json"}, "", false},
		{[]string{"scan", "staged", "-v"}, "", false},
		{[]string{"scan", "staged", "a", "b"}, "", false},
		{[]string{"scan", "git"}, "", false},
		{[]string{"version"}, "", false},
		{[]string{"staged", ""}, "", false},
	} {
		path, ok := stagedArgs(tc.args)
		if path != tc.path || ok != tc.ok {
			t.Errorf("stagedArgs(%q) = %q, %v; want %q, %v", tc.args, path, ok, tc.path, tc.ok)
		}
	}
}

func TestPlainText(t *testing.T) {
	for _, tc := range []struct {
		data string
		want bool
	}{
		{"hello\n", true},
		{"", true},
		{"a\x00b", false},
		{"\xff\xfeh\x00", false},
		{"PK\x03\x04rest", false},
		{"\x1f\x8b\x08", false},
		{"\x89PNG\r\n", false},
		{strings.Repeat("x", 257) + "ustar", false},
	} {
		if got := plainText([]byte(tc.data)); got != tc.want {
			t.Errorf("plainText(%q) = %v, want %v", tc.data, got, tc.want)
		}
	}
}

func loose(content string) []byte {
	var b bytes.Buffer
	z := zlib.NewWriter(&b)
	fmt.Fprintf(z, "blob %d\x00%s", len(content), content)
	z.Close()
	return b.Bytes()
}

func TestReadLoose(t *testing.T) {
	got, err := readLoose(bytes.NewReader(loose("hello\n")), 100)
	if err != nil || string(got) != "hello\n" {
		t.Errorf("readLoose = %q, %v", got, err)
	}
	if _, err := readLoose(bytes.NewReader(loose(strings.Repeat("x", 101))), 100); err == nil {
		t.Error("a blob over the limit was read")
	}
	var tree bytes.Buffer
	z := zlib.NewWriter(&tree)
	z.Write([]byte("tree 0\x00"))
	z.Close()
	if _, err := readLoose(&tree, 100); err == nil {
		t.Error("a tree was read as a blob")
	}
}

// FuzzReadLoose: whatever the bytes, readLoose returns or fails, within
// its limit.
func FuzzReadLoose(f *testing.F) {
	f.Add(loose("hello\n"))
	f.Add(loose(""))
	f.Add([]byte("not zlib"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readLoose(bytes.NewReader(data), 1<<16)
		if err == nil && len(got) > 1<<16 {
			t.Errorf("read %d bytes over the limit", len(got))
		}
	})
}
