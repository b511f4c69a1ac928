package source

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
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
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=A", "GIT_AUTHOR_EMAIL=a@example.invalid", "GIT_COMMITTER_NAME=A", "GIT_COMMITTER_EMAIL=a@example.invalid")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
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
}

type nopReporter struct{}

func (nopReporter) Skipped(string, string) {}
func (nopReporter) Failed(error)           {}
