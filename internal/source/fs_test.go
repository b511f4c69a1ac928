package source

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/keyburn/keyburn/internal/treepath"
)

type recorder struct {
	mu      sync.Mutex
	skipped []string
	failed  []error
}

func (r *recorder) Skipped(path, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skipped = append(r.skipped, path+": "+reason)
}

func (r *recorder) Failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, err)
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWalk(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	write(t, filepath.Join(outside, "credentials"), []byte("the operator's own"))
	write(t, filepath.Join(outside, "d/x.txt"), []byte("outside"))
	write(t, filepath.Join(dir, "a.txt"), []byte("a"))
	write(t, filepath.Join(dir, ".hidden/b.txt"), []byte("b"))
	write(t, filepath.Join(dir, ".git/config"), []byte("skipped"))
	write(t, filepath.Join(dir, "sub/c.txt"), []byte("c"))
	write(t, filepath.Join(dir, ".gitignore"), []byte("sub/\n"))
	must(t, os.Symlink("..", filepath.Join(dir, "sub/loop")))
	must(t, os.Symlink("a.txt", filepath.Join(dir, "alias.txt")))
	must(t, os.Symlink("missing", filepath.Join(dir, "dangling")))
	must(t, os.Symlink(filepath.Join(outside, "credentials"), filepath.Join(dir, "config.env")))
	must(t, os.Symlink(filepath.Join(outside, "d"), filepath.Join(dir, "vendor")))
	must(t, os.Symlink("../../"+filepath.Base(outside)+"/credentials", filepath.Join(dir, "sub/up")))
	must(t, os.Symlink("/proc/self/environ", filepath.Join(dir, "environ")))
	must(t, os.Link(filepath.Join(dir, "sub/c.txt"), filepath.Join(dir, "hard.txt")))

	var got []string
	rec := &recorder{}
	if err := Walk(context.Background(), []string{dir}, func(f File) {
		rel, _ := filepath.Rel(dir, f.Path)
		got = append(got, rel)
	}, rec); err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	// Links are never followed: a target inside the root is scanned once at
	// its own path, one outside it is not read at all. A hard link is a
	// file like any other.
	want := []string{".gitignore", ".hidden/b.txt", "a.txt", "hard.txt", "sub/c.txt"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Walk visited %q, want %q", got, want)
	}
	// A dangling link is skipped, not a failure: node_modules and
	// virtualenvs hold them, and one must not fail a scan.
	if len(rec.failed) != 0 {
		t.Errorf("failures = %v, want none", rec.failed)
	}
	sort.Strings(rec.skipped)
	var wantSkipped []string
	for _, p := range []string{"config.env", "environ", "sub/up", "vendor"} {
		wantSkipped = append(wantSkipped, filepath.Join(dir, p)+": "+LinkOutsideRoot)
	}
	wantSkipped = append(wantSkipped, filepath.Join(dir, "dangling")+": broken symbolic link")
	sort.Strings(wantSkipped)
	if len(rec.skipped) != len(wantSkipped) {
		t.Fatalf("skipped = %q, want %q", rec.skipped, wantSkipped)
	}
	for i := range wantSkipped {
		if !strings.HasPrefix(rec.skipped[i], wantSkipped[i]) {
			t.Errorf("skipped[%d] = %q, want it to start %q", i, rec.skipped[i], wantSkipped[i])
		}
	}
}

// TestWalkRootThroughLink: a root named through a link (the operator's
// choice) is walked, and a link inside it to a sibling stays inside.
func TestWalkRootThroughLink(t *testing.T) {
	base := t.TempDir()
	write(t, filepath.Join(base, "real/a.txt"), []byte("a"))
	must(t, os.Symlink("a.txt", filepath.Join(base, "real/b.txt")))
	must(t, os.Symlink("real", filepath.Join(base, "named")))
	var got []string
	rec := &recorder{}
	if err := Walk(context.Background(), []string{filepath.Join(base, "named")}, func(f File) { got = append(got, filepath.Base(f.Path)) }, rec); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a.txt" || len(rec.skipped)+len(rec.failed) != 0 {
		t.Errorf("visited %q, skipped %q, failed %v; want a.txt alone, nothing skipped", got, rec.skipped, rec.failed)
	}
}

// FuzzWalkStaysInRoot builds a tree of links from fuzzed targets (relative,
// "..", absolute, chains) and checks that every file visited is inside the
// root once its links are resolved, and that no file outside is reached.
func FuzzWalkStaysInRoot(f *testing.F) {
	f.Add("../out/secret", "sub/../../out", "/tmp")
	f.Add("a", "../..", "sub")
	f.Add("l2", "l1", "../out/d")
	f.Fuzz(func(t *testing.T, t1, t2, t3 string) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		write(t, filepath.Join(base, "out/secret"), []byte("outside"))
		write(t, filepath.Join(base, "out/d/x"), []byte("outside"))
		write(t, filepath.Join(root, "a"), []byte("in"))
		write(t, filepath.Join(root, "sub/b"), []byte("in"))
		for i, target := range []string{t1, t2, t3} {
			if target == "" || strings.ContainsRune(target, 0) || len(target) > 200 {
				continue
			}
			_ = os.Symlink(target, filepath.Join(root, "sub", "l"+string(rune('1'+i))))
		}
		realRoot, _ := filepath.EvalSymlinks(root)
		ctx, cancel := context.WithTimeout(context.Background(), 5e9)
		defer cancel()
		_ = Walk(ctx, []string{root}, func(fl File) {
			real, err := filepath.EvalSymlinks(fl.Path)
			if err != nil {
				t.Fatalf("visited %s, which does not resolve: %v", fl.Path, err)
			}
			if !treepath.Within(realRoot, real) {
				t.Fatalf("visited %s, which is %s, outside the root %s", fl.Path, real, realRoot)
			}
		}, &recorder{})
	})
}

func TestWalkCancelled(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), []byte("a"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	err := Walk(ctx, []string{dir}, func(File) { n++ }, &recorder{})
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Errorf("Walk on a cancelled context = %v after %d files", err, n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestChunks reads a file larger than a chunk: chunks overlap by the
// configured amount, cover the file, and carry the right line numbers.
func TestChunks(t *testing.T) {
	var data []byte
	for i := 1; len(data) < 10000; i++ {
		data = append(data, []byte(strings.Repeat("x", i%37)+"\n")...)
	}
	path := filepath.Join(t.TempDir(), "f.txt")
	write(t, path, data)
	r := NewReader(FSOptions{ChunkSize: 1024, ChunkOverlap: 100})
	var covered, owned int64
	n := 0
	err := r.ReadFile(context.Background(), File{Path: path, Size: int64(len(data))}, &recorder{}, func(c Chunk) error {
		n++
		if !bytes.Equal(c.Data, data[c.Offset:c.Offset+int64(len(c.Data))]) {
			t.Fatalf("chunk at %d does not hold the file's bytes", c.Offset)
		}
		if want := bytes.Count(data[:c.Offset], []byte("\n")) + 1; c.Line != want {
			t.Fatalf("chunk at %d: line %d, want %d", c.Offset, c.Line, want)
		}
		if c.Offset > covered {
			t.Fatalf("gap before chunk at %d", c.Offset)
		}
		if c.Offset > 0 && covered-c.Offset != 100 {
			t.Fatalf("chunk at %d overlaps by %d, want 100", c.Offset, covered-c.Offset)
		}
		if c.AtStart != (c.Offset == 0) {
			t.Fatalf("chunk at %d: AtStart %v", c.Offset, c.AtStart)
		}
		if c.Offset+int64(c.OwnStart) != owned {
			t.Fatalf("chunk at %d owns from %d, want %d", c.Offset, c.Offset+int64(c.OwnStart), owned)
		}
		owned = c.Offset + int64(c.OwnEnd)
		covered = c.Offset + int64(len(c.Data))
		if c.AtEnd != (covered == int64(len(data))) {
			t.Fatalf("chunk at %d: AtEnd %v", c.Offset, c.AtEnd)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if covered != int64(len(data)) || owned != covered || n < 10 {
		t.Errorf("chunks covered %d of %d bytes in %d chunks", covered, len(data), n)
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want kind
	}{
		{"text", []byte("hello\nworld"), kindText},
		{"empty", nil, kindText},
		{"binary", []byte("ELF\x00\x01\x02\x03"), kindBinary},
		{"utf16le bom", []byte("\xff\xfeh\x00i\x00"), kindUTF16LE},
		{"utf16be bom", []byte("\xfe\xff\x00h\x00i"), kindUTF16BE},
		{"utf16le bare", []byte("k\x00e\x00y\x00=\x00A\x00K\x00"), kindUTF16LE},
		{"utf16be bare", []byte("\x00k\x00e\x00y\x00=\x00A\x00K"), kindUTF16BE},
	}
	for _, tt := range tests {
		if got := sniff(tt.in); got != tt.want {
			t.Errorf("sniff(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := string(decodeUTF16([]byte("\xff\xfek\x00=\x00\xe9\x00"), false)); got != "k=é" {
		t.Errorf("decodeUTF16 = %q", got)
	}
}

func TestReadLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	write(t, big, bytes.Repeat([]byte("a"), 2000))
	rec := &recorder{}
	r := NewReader(FSOptions{MaxFileSize: 1000})
	called := false
	err := r.ReadFile(context.Background(), File{Path: big, Size: 2000}, rec, func(Chunk) error { called = true; return nil })
	if err != nil || called || len(rec.skipped) != 1 || !strings.Contains(rec.skipped[0], "over the 1000-byte limit") {
		t.Errorf("big file: err %v, called %v, skipped %v", err, called, rec.skipped)
	}
	err = r.ReadFile(context.Background(), File{Path: filepath.Join(dir, "gone")}, rec, func(Chunk) error { return nil })
	if err == nil || strings.Count(err.Error(), "open "+filepath.Join(dir, "gone")) != 1 {
		t.Errorf("missing file: err %v, want one naming the file once", err)
	}
}

// TestChunksExactEnd reads files whose sizes end exactly at a chunk edge:
// the owned ranges still cover every byte once, up to the end.
func TestChunksExactEnd(t *testing.T) {
	for _, size := range []int{1024, 1024 + 924, 1024 + 2*924, 1023, 1025, 0, 1} {
		data := bytes.Repeat([]byte("a\n"), size/2)
		if size%2 == 1 {
			data = append(data, 'x')
		}
		path := filepath.Join(t.TempDir(), "f")
		write(t, path, data)
		r := NewReader(FSOptions{ChunkSize: 1024, ChunkOverlap: 100})
		var owned int64
		sawEnd := false
		err := r.ReadFile(context.Background(), File{Path: path, Size: -1}, &recorder{}, func(c Chunk) error {
			if c.Offset+int64(c.OwnStart) != owned {
				t.Fatalf("size %d: chunk at %d owns from %d, want %d", size, c.Offset, c.Offset+int64(c.OwnStart), owned)
			}
			owned = c.Offset + int64(c.OwnEnd)
			sawEnd = c.AtEnd
			return nil
		})
		if err != nil || owned != int64(len(data)) || !sawEnd {
			t.Errorf("size %d: owned up to %d, last chunk AtEnd %v, err %v", len(data), owned, sawEnd, err)
		}
	}
}

// TestBinaries: a binary is read as it is and marked so, over several
// chunks too; compressed files and images are skipped whatever the
// options, with their format named; SkipBinaries skips the rest.
func TestBinaries(t *testing.T) {
	dir := t.TempDir()
	elf := append([]byte("\x7fELF\x02\x01\x01\x00"), bytes.Repeat([]byte("\x00\x01key\xff"), 100000)...)
	write(t, filepath.Join(dir, "prog"), elf)
	write(t, filepath.Join(dir, "a.gz"), []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00AKIA"))
	write(t, filepath.Join(dir, "p.png"), []byte("\x89PNG\r\n\x1a\n\x00\x00"))
	for _, skip := range []bool{false, true} {
		rec := &recorder{}
		r := NewReader(FSOptions{ChunkSize: 64 << 10, SkipBinaries: skip})
		var read int
		for _, name := range []string{"prog", "a.gz", "p.png"} {
			err := r.ReadFile(context.Background(), File{Path: filepath.Join(dir, name), Size: -1}, rec, func(c Chunk) error {
				if !c.Prov.Binary {
					t.Errorf("%s: chunk at %d not marked binary", name, c.Offset)
				}
				read += c.OwnEnd - c.OwnStart
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		sort.Strings(rec.skipped)
		want := []string{filepath.Join(dir, "a.gz") + ": compressed (gzip)", filepath.Join(dir, "p.png") + ": compressed (png)"}
		wantRead := len(elf)
		if skip {
			want = append(want, filepath.Join(dir, "prog")+": binary")
			wantRead = 0
		}
		if strings.Join(rec.skipped, "|") != strings.Join(want, "|") || read != wantRead {
			t.Errorf("SkipBinaries %v: skipped %q, read %d bytes; want %q, %d", skip, rec.skipped, read, want, wantRead)
		}
	}
}
