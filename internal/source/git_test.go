package source

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/keyburn/keyburn/internal/gittest"
	"github.com/keyburn/keyburn/internal/testtools"
)

const rawCommit = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n" +
	"parent 9fceb02d0ae598e95dc970b74767f19372d61af8\n" +
	"parent 1111111111111111111111111111111111111111\n" +
	"author Alice <alice@example.invalid> 1700000000 +0100\n" +
	"committer Bob <bob@example.invalid> 1700000060 -0230\n" +
	"gpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n" +
	"\n" +
	"subject line\n\nbody AKIA\n"

// TestParseCommit checks the fast parser against go-git's decoder.
func TestParseCommit(t *testing.T) {
	h := plumbing.NewHash("2222222222222222222222222222222222222222")
	got, err := parseCommit(h, []byte(rawCommit))
	if err != nil {
		t.Fatal(err)
	}
	o := &plumbing.MemoryObject{}
	o.SetType(plumbing.CommitObject)
	o.Write([]byte(rawCommit))
	ref, err := object.DecodeCommit(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	want := newCommit(ref)
	want.Hash = h
	if got.Tree != want.Tree || len(got.Parents) != 2 || got.Parents[1] != want.Parents[1] ||
		got.Author != want.Author || !got.When.Equal(want.When) || got.Message != want.Message {
		t.Errorf("parseCommit = %+v\nwant %+v", got, want)
	}
	if _, off := got.When.Zone(); off != -(2*3600 + 30*60) {
		t.Errorf("committer zone offset %d", off)
	}
	for _, bad := range []string{"", "parent xyz\n", "tree 12\n\nmsg"} {
		if _, err := parseCommit(h, []byte(bad)); err == nil {
			t.Errorf("parseCommit(%q) gave no error", bad)
		}
	}
}

func FuzzParseCommit(f *testing.F) {
	f.Add([]byte(rawCommit))
	f.Add([]byte("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCommit(plumbing.ZeroHash, data)
		if err == nil && c.Tree.IsZero() && !bytes.Contains(data, []byte(plumbing.ZeroHash.String())) {
			t.Fatalf("accepted a commit without a tree")
		}
	})
}

// TestNativeMatchesGoGit builds a repository with more objects than a pipe
// holds and checks that the native reader and go-git see the same blobs and
// commits (this once caught a deadlock between cat-file's input and output).
func TestNativeMatchesGoGit(t *testing.T) {
	if !HasGit() {
		testtools.Missing(t, "git", "apt-get install git", "the tests that run git")
	}
	dir := t.TempDir()
	run := func(args ...string) { t.Helper(); gittest.Run(t, dir, args...) }
	run("init", "-q")
	for i := range 30 {
		for j := range 200 {
			p := filepath.Join(dir, "d", string(rune('a'+j%26)), "f"+string(rune('0'+j%10))+".txt")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, bytes.Repeat([]byte{byte('a' + (i+j)%26)}, 100+i*j), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run("add", "-A")
		run("commit", "-q", "-m", "c")
	}
	run("gc", "-q")
	r, err := OpenRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	goGit := map[plumbing.Hash]int{}
	if err := r.Blobs(1<<30, nopReporter{}, func(h plumbing.Hash, data []byte) error { goGit[h] = len(data); return nil }); err != nil {
		t.Fatal(err)
	}
	gg, err := r.LoadGraph(nopReporter{})
	if err != nil {
		t.Fatal(err)
	}
	native := map[plumbing.Hash]int{}
	ch := make(chan [2]any, 16)
	done := make(chan struct{})
	go func() {
		for x := range ch {
			native[x[0].(plumbing.Hash)] = x[1].(int)
		}
		close(done)
	}()
	ng, err := r.NativeScan(t.Context(), 2, 1<<30, nopReporter{}, func(h plumbing.Hash, data []byte) error {
		ch <- [2]any{h, len(data)}
		return nil
	})
	close(ch)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if len(native) != len(goGit) || len(native) < 500 {
		t.Fatalf("native read %d blobs, go-git %d", len(native), len(goGit))
	}
	for h, n := range goGit {
		if native[h] != n {
			t.Fatalf("blob %s: native %d bytes, go-git %d", h, native[h], n)
		}
	}
	if len(ng.Commits) != len(gg.Commits) || len(ng.Reachable) != 30 {
		t.Errorf("native graph %d commits (%d reachable), go-git %d", len(ng.Commits), len(ng.Reachable), len(gg.Commits))
	}
	for h, c := range gg.Commits {
		if n := ng.Commits[h]; n == nil || n.Tree != c.Tree || n.Message != c.Message || !n.When.Equal(c.When) {
			t.Errorf("commit %s differs: native %+v, go-git %+v", h, n, c)
		}
	}
	// Both ways of attributing blobs agree.
	want := map[plumbing.Hash]bool{}
	for h := range goGit {
		if len(want) < 300 {
			want[h] = true
		}
	}
	gi := r.Introductions(gg, want, nopReporter{})
	ni, err := r.NativeIntroductions(t.Context(), ng, want, nopReporter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(gi) != len(want) || len(ni) != len(gi) {
		t.Fatalf("introductions: go-git found %d, native %d, of %d", len(gi), len(ni), len(want))
	}
	for h, a := range gi {
		b := ni[h]
		if len(a) != len(b) {
			t.Fatalf("blob %s: go-git %d introductions, native %d", h, len(a), len(b))
		}
		for i := range a {
			if a[i].Commit.Hash != b[i].Commit.Hash || a[i].Path != b[i].Path {
				t.Errorf("blob %s introduction %d: go-git %s %s, native %s %s", h, i, a[i].Commit.Hash, a[i].Path, b[i].Commit.Hash, b[i].Path)
			}
		}
	}
}

type nopReporter struct{}

func (nopReporter) Skipped(string, string) {}
func (nopReporter) Failed(error)           {}

// TestStagedAgree checks go-git's Staged and git's NativeStaged agree, before
// and after the first commit.
func TestStagedAgree(t *testing.T) {
	if !HasGit() {
		testtools.Missing(t, "git", "apt-get install git", "the tests that run git")
	}
	dir := t.TempDir()
	git := func(args ...string) { t.Helper(); gittest.Run(t, dir, args...) }
	writeFile := func(name, text string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	writeFile("a.txt", "a")
	writeFile("d/b.txt", "b")
	git("add", "-A")
	check := func(want ...string) {
		t.Helper()
		r, err := OpenRepo(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		a, err := r.Staged()
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.NativeStaged(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i, f := range a {
			got = append(got, f.Path)
			if i >= len(b) || b[i] != f {
				t.Errorf("go-git %v, native %v", a, b)
				return
			}
		}
		if len(a) != len(b) || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("staged = %v (native %v), want %v", a, b, want)
		}
	}
	check("a.txt", "d/b.txt")
	git("commit", "-q", "-m", "one")
	check()
	writeFile("d/b.txt", "b2")
	writeFile("d/e/c.txt", "c")
	git("rm", "-q", "a.txt")
	git("add", "-A")
	check("d/b.txt", "d/e/c.txt")
}

// TestBlobSizeCheckedFirst: a blob over the limit is refused from its
// header, with its size, and not read.
func TestBlobSizeCheckedFirst(t *testing.T) {
	if !HasGit() {
		testtools.Missing(t, "git", "apt-get install git", "the tests that run git")
	}
	dir := t.TempDir()
	gittest.Run(t, dir, "init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "big.txt"), bytes.Repeat([]byte("x"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, dir, "add", "-A")
	h := plumbing.NewHash(gittest.Run(t, dir, "rev-parse", ":big.txt"))
	r, err := OpenRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Blob(h, 1024)
	var tooBig *BlobTooLargeError
	if !errors.As(err, &tooBig) || tooBig.Size != 4096 || tooBig.Limit != 1024 {
		t.Errorf("Blob over the limit: %v, want a BlobTooLargeError of 4096 bytes", err)
	}
	if data, err := r.Blob(h, 4096); err != nil || len(data) != 4096 {
		t.Errorf("Blob at the limit: %d bytes, %v", len(data), err)
	}
}
