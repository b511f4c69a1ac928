package mirror

import (
	"context"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/keyburn/keyburn/internal/gittest"
	"github.com/keyburn/keyburn/internal/testtools"
)

// server serves a one-commit repository acme/hello.git with git
// http-backend on loopback, and returns its URL and the commit.
func server(t *testing.T) (string, string) {
	t.Helper()
	root := t.TempDir()
	gittest.Run(t, root, "init", "-q", "--bare", "-b", "main", "acme/hello.git")
	work := t.TempDir()
	gittest.Run(t, work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "README"), []byte("hello\n"), 0o644)
	gittest.Run(t, work, "add", "-A")
	gittest.Run(t, work, "commit", "-q", "-m", "one")
	head := gittest.Run(t, work, "rev-parse", "HEAD")
	gittest.Run(t, work, "push", "-q", filepath.Join(root, "acme/hello.git"), "main")
	backend, err := gittest.HTTPBackend(root)
	if err != nil {
		testtools.Missing(t, "git", "apt-get install git", "the tests that run git")
	}
	srv := httptest.NewServer(backend)
	t.Cleanup(srv.Close)
	return srv.URL + "/acme/hello.git", head
}

// TestConcurrentFetchesIntoANewMirror: four deliveries race to create one
// mirror; each succeeds and the mirror holds the commit.
func TestConcurrentFetchesIntoANewMirror(t *testing.T) {
	u, head := server(t)
	dir := filepath.Join(t.TempDir(), "acme", "hello.git")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			missing, err := Fetch(context.Background(), dir, Source{URL: u}, []string{head})
			if err == nil && len(missing) > 0 {
				err = os.ErrNotExist
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("fetch %d: %v", i, err)
		}
	}
	assertMirror(t, dir, head)
}

// TestBrokenMirrorsAreRepaired: a directory left by a crash mid-creation,
// and a mirror whose remote is gone, are fetched into all the same.
func TestBrokenMirrorsAreRepaired(t *testing.T) {
	u, head := server(t)
	ctx := context.Background()
	half := filepath.Join(t.TempDir(), "acme", "hello.git")
	os.MkdirAll(filepath.Join(half, "objects"), 0o755) // a crash after mkdir
	if _, err := Fetch(ctx, half, Source{URL: u}, []string{head}); err != nil {
		t.Fatalf("fetch into a half-made mirror: %v", err)
	}
	assertMirror(t, half, head)

	noRemote := filepath.Join(t.TempDir(), "acme", "hello.git")
	if _, err := Fetch(ctx, noRemote, Source{URL: u}, nil); err != nil {
		t.Fatal(err)
	}
	repo, _ := git.PlainOpen(noRemote)
	if err := repo.DeleteRemote("origin"); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(ctx, noRemote, Source{URL: u}, []string{head}); err != nil {
		t.Fatalf("fetch into a mirror without its remote: %v", err)
	}
}

func assertMirror(t *testing.T, dir, head string) {
	t.Helper()
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatalf("mirror %s: %v", dir, err)
	}
	if _, err := repo.CommitObject(plumbingHash(head)); err != nil {
		t.Errorf("the mirror lacks %s: %v", head, err)
	}
	// Private: nothing in it is open to group or others.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if fi, err := d.Info(); err == nil && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v, want no access for group and others", p, fi.Mode().Perm())
		}
		return nil
	})
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 2 { // the mirror and its lock file
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("beside the mirror: %v, want only it and its lock (no temporary directories left)", names)
	}
}

func TestTokenOnlyOverHTTPS(t *testing.T) {
	_, err := Fetch(context.Background(), filepath.Join(t.TempDir(), "x.git"), Source{URL: "http://example.com/acme/x.git", Token: "ghs_x"}, nil)
	if err == nil || !strings.Contains(err.Error(), "https only") {
		t.Errorf("a token over plain http to another host: %v, want refused", err)
	}
	for _, u := range []string{"file:///etc", "file:-x", "ssh://git@github.com/a/b", "ext::sh"} {
		if _, err := Fetch(context.Background(), filepath.Join(t.TempDir(), "x.git"), Source{URL: u}, nil); err == nil {
			t.Errorf("Fetch(%q) was attempted", u)
		}
	}
	if _, err := ParseRewrite("https://github.com/=file:///srv/"); err == nil {
		t.Errorf("a rewrite to file:// was accepted")
	}
}

func plumbingHash(s string) plumbing.Hash { return plumbing.NewHash(s) }
