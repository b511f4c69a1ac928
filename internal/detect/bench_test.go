package detect

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/keyburn/keyburn/internal/testkeys"
)

// corpus returns about n bytes of real source text, as files (the Go
// distribution's own sources), with a credential pair planted in one file of
// every 64.
func corpus(b *testing.B, n int) [][]byte {
	b.Helper()
	root := filepath.Join(runtime.GOROOT(), "src")
	var files [][]byte
	total := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || total >= n {
			return fs.SkipAll
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".go") {
			text, err := os.ReadFile(p)
			if err == nil {
				files = append(files, text)
				total += len(text)
			}
		}
		return nil
	})
	if err != nil || total < n/2 {
		b.Skipf("no Go sources under %s to build a corpus: %v", root, err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < len(files); i += 64 {
		files[i] = append(files[i], "\nvar cfg = map[string]string{\"aws_access_key_id\": \""+testkeys.KeyID(rng, "AKIA", 123456789012)+"\", \"aws_secret_access_key\": \""+testkeys.Secret(rng)+"\"}\n"...)
	}
	return files
}

// BenchmarkScan measures the matcher on source files with few keys: mostly
// the prefilter's speed, since nearly every byte is far from a key.
func BenchmarkScan(b *testing.B) {
	m := defaultMatcher(b)
	files := corpus(b, 32<<20)
	total := 0
	for _, f := range files {
		total += len(f)
	}
	b.SetBytes(int64(total))
	b.ResetTimer()
	var n int
	for b.Loop() {
		n = 0
		for _, f := range files {
			n += len(m.Scan(Whole(f)))
		}
	}
	if n < len(files)/64 {
		b.Fatalf("found %d candidates, planted %d", n, (len(files)+63)/64)
	}
}

// BenchmarkScanDense measures a file where every line holds a credential,
// which exercises secret tokenizing and pairing.
func BenchmarkScanDense(b *testing.B) {
	m := defaultMatcher(b)
	rng := rand.New(rand.NewPCG(6, 6))
	var sb strings.Builder
	for i := range 5000 {
		sb.WriteString("[p" + itoa(uint64(i)) + "]\naws_access_key_id = " + testkeys.KeyID(rng, "AKIA", uint64(i)) + "\naws_secret_access_key = " + testkeys.Secret(rng) + "\n")
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if len(m.Scan(Whole(data))) != 5000 {
			b.Fatal("wrong count")
		}
	}
}
