package engine

import (
	"context"
	"os"
	"testing"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/rules"
)

// BenchmarkScanTree scans the tree named by KEYBURN_BENCH_TREE (bench/run
// builds one under bench/out/tree), for profiling the whole engine.
func BenchmarkScanTree(b *testing.B) {
	dir := os.Getenv("KEYBURN_BENCH_TREE")
	if dir == "" {
		b.Skip("set KEYBURN_BENCH_TREE to a directory (bench/run builds bench/out/tree)")
	}
	set, err := rules.Default()
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Matcher: detect.New(set)}
	var res *Result
	for b.Loop() {
		res, err = ScanPaths(context.Background(), opts, []string{dir}, &recorder{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(res.Bytes)
	b.ReportMetric(float64(len(res.Findings)), "findings")
}

// BenchmarkScanHistory scans the repository named by KEYBURN_BENCH_REPO (a
// large public history, such as prometheus/prometheus), native and go-git.
func BenchmarkScanHistory(b *testing.B) {
	dir := os.Getenv("KEYBURN_BENCH_REPO")
	if dir == "" {
		b.Skip("set KEYBURN_BENCH_REPO to a git repository")
	}
	set, err := rules.Default()
	if err != nil {
		b.Fatal(err)
	}
	for _, goGit := range []bool{false, true} {
		name := "native"
		if goGit {
			name = "go-git"
		}
		b.Run(name, func(b *testing.B) {
			opts := Options{Matcher: detect.New(set)}
			var res *Result
			for b.Loop() {
				res, err = ScanHistory(context.Background(), opts, dir, GitOptions{GoGitOnly: goGit}, &recorder{})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(res.Bytes)
		})
	}
}
