package engine

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"github.com/keyburn/keyburn/internal/gittest"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/keyburn/keyburn/internal/detect"
	"github.com/keyburn/keyburn/internal/source"
	"github.com/keyburn/keyburn/internal/testkeys"
	"github.com/keyburn/keyburn/rules"
)

type recorder struct {
	mu     sync.Mutex
	failed []error
}

func (r *recorder) Skipped(string, string) {}
func (r *recorder) Failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, err)
}

func matcher(t *testing.T, user string) *detect.Matcher {
	t.Helper()
	var uf *rules.UserFile
	if user != "" {
		uf = &rules.UserFile{Name: "user.toml", Text: []byte(user)}
	}
	set, err := rules.Load(rules.DefaultFS(), uf)
	if err != nil {
		t.Fatal(err)
	}
	return detect.New(set)
}

// TestChunkBoundaries plants keys at every offset around chunk edges of a
// file read in small chunks: each is found once, on its own line.
func TestChunkBoundaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	want := map[string]int{} // key ID → line
	line := 1
	for buf.Len() < 64<<10 {
		n := rng.IntN(300)
		buf.WriteString(strings.Repeat("z", n) + "\n")
		line++
		id, sec := testkeys.KeyID(rng, "AKIA", 123456789012), testkeys.Secret(rng)
		buf.WriteString("k=" + id + " s=" + sec + "\n")
		want[id] = line
		line++
	}
	path := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Matcher: matcher(t, ""), FS: source.FSOptions{ChunkSize: 1000, ChunkOverlap: 200}}
	res, err := ScanPaths(context.Background(), opts, []string{path}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != len(want) {
		t.Fatalf("found %d findings, planted %d", len(res.Findings), len(want))
	}
	for _, f := range res.Findings {
		if len(f.Locations) != 1 || f.Locations[0].Line != want[f.KeyID] || f.Locations[0].Column != 3 || !f.Paired() {
			t.Errorf("%s: locations %+v paired %v, want line %d column 3", f.KeyID, f.Locations, f.Paired(), want[f.KeyID])
		}
	}
}

// TestManyFiles scans a tree of files concurrently: every key is found with
// its file, allowlisted paths are not read, and an unreadable entry is
// reported while the rest goes on.
func TestManyFiles(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[string]string{}
	for i := range 200 {
		p := filepath.Join(dir, fmt.Sprintf("d%d/f%d.env", i%7, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		id := testkeys.KeyID(rng, "AKIA", uint64(100000000000+i))
		want[id] = filepath.ToSlash(p)
		body := fmt.Sprintf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", id, testkeys.Secret(rng))
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "fixtures"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fixtures/k.txt"), []byte("AKIAROSDW5AABZW3VLYZ"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", filepath.Join(dir, "broken")); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	opts := Options{Matcher: matcher(t, "[allowlist]\npaths = ['(^|/)fixtures/']\n"), Concurrency: 3}
	res, err := ScanPaths(context.Background(), opts, []string{dir}, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 200 || res.Files != 200 || res.AllowedPaths != 1 {
		t.Fatalf("findings %d, files %d, allowed %d; want 200, 200, 1", len(res.Findings), res.Files, res.AllowedPaths)
	}
	for _, f := range res.Findings {
		if f.Locations[0].File != want[f.KeyID] {
			t.Errorf("%s found in %s, planted in %s", f.KeyID, f.Locations[0].File, want[f.KeyID])
		}
	}
	if len(rec.failed) != 0 {
		t.Errorf("failures %v, want none (a broken link is skipped)", rec.failed)
	}
}

// TestPathAllowlistRelativeToRoot: an allowlisted path is left out however
// the scanned root is typed: from the repository root, from a subdirectory,
// by an absolute path, with a trailing slash, a file by itself.
func TestPathAllowlistRelativeToRoot(t *testing.T) {
	repo := t.TempDir()
	if err := os.MkdirAll(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	key := "aws_access_key_id = AKIAROSDW5AABZW3VLYZ\naws_secret_access_key = 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\n"
	for _, f := range []string{"README.md", "docs/README.md", "src/app.env"} {
		os.MkdirAll(filepath.Dir(filepath.Join(repo, f)), 0o755)
		os.WriteFile(filepath.Join(repo, f), []byte(key), 0o644)
	}
	m := matcher(t, "[allowlist]\npaths = ['^README\\.md$']\n")
	t.Chdir(filepath.Join(repo, "docs"))
	all := []string{"docs/README.md", "src/app.env"} // README.md at the root is allowlisted
	tests := map[string][]string{
		repo: all, repo + "/": all, "..": all, "../": all, "../.": all,
		".": {"docs/README.md"}, "./README.md": {"docs/README.md"}, "../src": {"src/app.env"},
		filepath.Join(repo, "README.md"): nil, "../README.md": nil,
	}
	for root, want := range tests {
		res, err := ScanPaths(context.Background(), Options{Matcher: m}, []string{root}, &recorder{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range res.Findings {
			for _, l := range f.Locations {
				abs, _ := filepath.Abs(l.File)
				rel, _ := filepath.Rel(repo, abs)
				got = append(got, filepath.ToSlash(rel))
			}
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("scan of %q found %v, want %v", root, got, want)
		}
	}
}

// TestColumnsOnLongLines: a key far into a line longer than a chunk (a
// minified bundle) is reported at its real column.
func TestColumnsOnLongLines(t *testing.T) {
	dir := t.TempDir()
	for name, prefix := range map[string]string{
		"one-line.js":  strings.Repeat("x ", 50_000),                  // 100,000 bytes before the key, no newline
		"two-lines.js": "first\n" + strings.Repeat("y ", 30_000) + "", // the key on line 2, after 60,000 bytes
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(prefix+"AKIAROSDW5AABZW3VLYZ tail\n"), 0o644)
	}
	opts := Options{Matcher: matcher(t, ""), FS: source.FSOptions{ChunkSize: 8 << 10, ChunkOverlap: 1 << 10}}
	res, err := ScanPaths(context.Background(), opts, []string{dir}, &recorder{})
	if err != nil || len(res.Findings) != 1 {
		t.Fatalf("findings %v, %v", res.Findings, err)
	}
	want := map[string][2]int{"one-line.js": {1, 100_001}, "two-lines.js": {2, 60_001}}
	for _, l := range res.Findings[0].Locations {
		w := want[filepath.Base(l.File)]
		if l.Line != w[0] || l.Column != w[1] {
			t.Errorf("%s: line %d column %d, want line %d column %d", filepath.Base(l.File), l.Line, l.Column, w[0], w[1])
		}
	}
}

// TestArchives: with --archive-depth, a key in a jar is found in a tree,
// in a repository's whole history and in a range, located inside the
// archive; by default archives stay closed.
func TestArchives(t *testing.T) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("config/app.properties")
	w.Write([]byte("aws_access_key_id = AKIAROSDW5AABZW3VLYZ\naws_secret_access_key = 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\n"))
	zw.Close()
	dir := t.TempDir()
	gittest.Run(t, dir, "init", "-q", "-b", "main")
	gittest.Run(t, dir, "commit", "-q", "--allow-empty", "-m", "empty")
	base := gittest.Run(t, dir, "rev-parse", "HEAD")
	os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	os.WriteFile(filepath.Join(dir, "build", "app.jar"), b.Bytes(), 0o644)
	gittest.Run(t, dir, "add", "-A")
	gittest.Run(t, dir, "commit", "-q", "-m", "jar")
	m := matcher(t, "")
	fs := source.FSOptions{ArchiveDepth: 2}
	where := func(res *Result, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range res.Findings {
			for _, l := range f.Locations {
				out = append(out, filepath.ToSlash(l.File)+":"+fmt.Sprint(l.Line)+" paired="+fmt.Sprint(f.Paired()))
			}
		}
		return strings.Join(out, ",")
	}
	tree := where(ScanPaths(context.Background(), Options{Matcher: m, FS: fs}, []string{filepath.Join(dir, "build")}, &recorder{}))
	if !strings.HasSuffix(tree, "build/app.jar!config/app.properties:1 paired=true") {
		t.Errorf("tree: %s", tree)
	}
	for _, native := range []bool{true, false} {
		hist := where(ScanHistory(context.Background(), Options{Matcher: m, FS: fs}, dir, GitOptions{GoGitOnly: !native}, &recorder{}))
		if hist != "build/app.jar!config/app.properties:1 paired=true" {
			t.Errorf("history (native %v): %s", native, hist)
		}
	}
	rng := where(ScanRange(context.Background(), Options{Matcher: m, FS: fs}, dir, base+"..HEAD", GitOptions{}, &recorder{}))
	if rng != "build/app.jar!config/app.properties:1 paired=true" {
		t.Errorf("range: %s", rng)
	}
	off := where(ScanPaths(context.Background(), Options{Matcher: m}, []string{dir + "/build"}, &recorder{}))
	if off != "" {
		t.Errorf("with archives closed (the default): %s", off)
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Range
		err  string
	}{
		{"a..b", Range{From: "a", To: "b"}, ""},
		{"a..", Range{From: "a", To: "HEAD"}, ""},
		{"..b", Range{From: "HEAD", To: "b"}, ""},
		{"a...b", Range{From: "a", To: "b", Symmetric: true}, ""},
		{"...b", Range{From: "HEAD", To: "b", Symmetric: true}, ""},
		{ZeroSHA + "..b", Range{To: "b", NewBranch: true}, ""},
		{"a.." + ZeroSHA, Range{From: "a", To: ZeroSHA, Deleted: true}, ""},
		{"HEAD~3..HEAD", Range{From: "HEAD~3", To: "HEAD"}, ""},
		{"a", Range{}, "want A..B, A.., ..B or A...B"},
		{"a..b..c", Range{}, "more than one"},
		{ZeroSHA + "...b", Range{}, "symmetric"},
	} {
		got, err := ParseRange(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRange(%q) error %v, want one saying %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRange(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

// skipNotes records what is reported skipped, by path.
type skipNotes struct {
	recorder
	mu      sync.Mutex
	skipped []string
}

func (s *skipNotes) Skipped(path, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skipped = append(s.skipped, filepath.ToSlash(path)+": "+reason)
}

// TestArchiveCopies: an archive's copies are opened once, and what the
// first holds is reported at every copy: a key at each copy's member path,
// an unreadable archive at each copy's path. An archive that differs by a
// byte is opened on its own.
func TestArchiveCopies(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	id, sec := testkeys.KeyID(rng, "AKIA", 0), testkeys.Secret(rng)
	zipped := func(text string) []byte {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, _ := zw.Create("conf/app.properties")
		w.Write([]byte(text))
		zw.Close()
		return b.Bytes()
	}
	text := "aws_access_key_id = " + id + "\naws_secret_access_key = " + sec + "\n"
	withKey, other := zipped(text), zipped(text+"\n")
	broken := append([]byte("PK\x03\x04"), bytes.Repeat([]byte{0xff}, 64)...)
	dir := t.TempDir()
	files := map[string][]byte{
		"a.jar": withKey, "lib/b.jar": withKey, "lib/deep/c.jar": withKey, "d.jar": other,
		"x.zip": broken, "lib/y.zip": broken,
	}
	for name, data := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	rep := &skipNotes{}
	res, err := ScanPaths(context.Background(), Options{Matcher: matcher(t, ""), FS: source.FSOptions{ArchiveDepth: 1}}, []string{dir}, rep)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Findings {
		for _, l := range f.Locations {
			rel, _ := filepath.Rel(dir, l.File)
			got = append(got, fmt.Sprintf("%s:%d paired=%v", filepath.ToSlash(rel), l.Line, f.Paired()))
		}
	}
	sort.Strings(got)
	want := []string{
		"a.jar!conf/app.properties:1 paired=true",
		"d.jar!conf/app.properties:1 paired=true",
		"lib/b.jar!conf/app.properties:1 paired=true",
		"lib/deep/c.jar!conf/app.properties:1 paired=true",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("locations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var notes []string
	for _, s := range rep.skipped {
		notes = append(notes, strings.TrimPrefix(s, filepath.ToSlash(dir)+"/"))
	}
	sort.Strings(notes)
	if len(notes) != 2 || !strings.HasPrefix(notes[0], "lib/y.zip: archive not readable") || !strings.HasPrefix(notes[1], "x.zip: archive not readable") {
		t.Errorf("skipped: %q, want both broken copies reported", notes)
	}
	if want := int64(2*len(text) + 1); res.Bytes != want {
		t.Errorf("read %d bytes, want %d (two archives' members): copies were opened again", res.Bytes, want)
	}
}
