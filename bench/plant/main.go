//go:build bench

// Command plant plants synthetic AWS credentials into a tree of text files
// for the benchmark, and writes a manifest of what it planted:
//
//	plant -n 300 -seed 1 DIR > manifest.tsv
//
// Each manifest line is "key_id<TAB>secret_sha256<TAB>file". The keys are
// random and were never issued by AWS.
//
//	plant check manifest.tsv < findings.jsonl
//
// counts how many planted pairs keyburn's JSON Lines output found, with their
// secret, and how many findings were not planted.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/keyburn/keyburn/internal/testkeys"
)

// The forms a leak takes; %[1]s is the key ID, %[2]s the secret.
var forms = []string{
	"\nAWS_ACCESS_KEY_ID=%[1]s\nAWS_SECRET_ACCESS_KEY=%[2]s\n",
	"\n[default]\naws_access_key_id = %[1]s\naws_secret_access_key = %[2]s\n",
	"\n// creds := credentials.NewStaticCredentialsProvider(\"%[1]s\", \"%[2]s\", \"\")\n",
	"\n{\"AccessKeyId\":\"%[1]s\",\"SecretAccessKey\":\"%[2]s\"}\n",
	"\n  access_key: %[1]s\n  secret_key: '%[2]s'\n",
	"\nexport AWS_ACCESS_KEY_ID=\"%[1]s\" AWS_SECRET_ACCESS_KEY=\"%[2]s\"\n",
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "check" {
		check(os.Args[2])
		return
	}
	n := flag.Int("n", 300, "how many pairs to plant")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: plant [-n N] [-seed S] DIR")
		os.Exit(2)
	}
	var files []string
	err := filepath.WalkDir(flag.Arg(0), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && isText(p) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		fmt.Fprintln(os.Stderr, "plant: no text files:", err)
		os.Exit(1)
	}
	sort.Strings(files)
	rng := rand.New(rand.NewPCG(*seed, *seed))
	used := map[string]bool{}
	for i := 0; i < *n; {
		p := files[rng.IntN(len(files))]
		if used[p] {
			continue
		}
		used[p] = true
		id := testkeys.KeyID(rng, "AKIA", 100000000000+rng.Uint64N(899999999999))
		sec := testkeys.Secret(rng)
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "plant:", err)
			os.Exit(1)
		}
		fmt.Fprintf(f, forms[i%len(forms)], id, sec)
		f.Close()
		h := sha256.Sum256([]byte(sec))
		fmt.Printf("%s\t%s\t%s\n", id, hex.EncodeToString(h[:]), p)
		i++
	}
}

// isText picks files that are plainly text, so that no plant lands in a
// binary that every scanner skips.
func isText(p string) bool {
	for _, ext := range []string{".go", ".s", ".txt", ".md", ".json", ".yaml", ".yml", ".sh", ".c", ".h", ".html", ".js", ".py", ".toml", ".mod", ".sum"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

func check(manifest string) {
	data, err := os.ReadFile(manifest)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plant:", err)
		os.Exit(1)
	}
	planted := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Split(line, "\t")
		planted[f[0]+" "+f[1]] = true
	}
	found, extra := 0, 0
	dec := json.NewDecoder(os.Stdin)
	for {
		var r struct {
			KeyID        string `json:"key_id"`
			SecretSHA256 string `json:"secret_sha256"`
		}
		if err := dec.Decode(&r); err != nil {
			break
		}
		if planted[r.KeyID+" "+r.SecretSHA256] {
			found++
		} else {
			extra++
		}
	}
	fmt.Printf("%d/%d planted pairs found, %d other findings\n", found, len(planted), extra)
}
