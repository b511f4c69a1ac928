package hook

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The little of git keyburn-hook reads itself: where a repository keeps
// its objects, whether it has a HEAD, and loose objects. The list of
// staged files comes from git itself, as keyburn's does. Whatever this
// cannot read (a packed blob, an alternate object store, SHA-256 names)
// sends the commit to keyburn, which reads everything.

// repo is a repository's git directory and object store.
type repo struct {
	gitDir, objects string
}

// openRepo finds the git directory of the work tree that holds path: a
// .git directory, or a .git file naming one (a linked worktree or a
// submodule), whose objects may be in the common directory it names.
func openRepo(path string) (*repo, error) {
	dir, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	for {
		dotgit := filepath.Join(dir, ".git")
		if fi, err := os.Stat(dotgit); err == nil {
			gitDir := dotgit
			if !fi.IsDir() {
				if gitDir, err = gitFile(dotgit); err != nil {
					return nil, err
				}
			}
			common := gitDir
			if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
				common = strings.TrimSpace(string(b))
				if !filepath.IsAbs(common) {
					common = filepath.Join(gitDir, common)
				}
			}
			return &repo{gitDir: gitDir, objects: filepath.Join(common, "objects")}, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, errors.New("not in a git work tree")
		}
		dir = parent
	}
}

// gitFile reads a .git file: "gitdir: PATH", relative to the file's
// directory.
func gitFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	dir, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
	if !ok || dir == "" {
		return "", fmt.Errorf("%s: not a gitdir file", p)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(filepath.Dir(p), dir)
	}
	return dir, nil
}

// hasHead reports whether HEAD names a commit that exists: false before
// the first commit (HEAD names an unborn branch). It asks git only when
// the branch is packed or HEAD is detached.
func (r *repo) hasHead() bool {
	b, err := os.ReadFile(filepath.Join(r.gitDir, "HEAD"))
	if err != nil {
		return true // git decides: diff-index against HEAD fails loudly
	}
	ref, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "ref: ")
	if !ok {
		return true // detached: a commit
	}
	common := filepath.Dir(r.objects)
	if _, err := os.Stat(filepath.Join(common, filepath.FromSlash(ref))); err == nil {
		return true
	}
	packed, err := os.ReadFile(filepath.Join(common, "packed-refs"))
	return err == nil && bytes.Contains(packed, []byte(" "+ref+"\n"))
}

// looseBlob reads blob hash (hex) from the loose objects, when it is one
// and at most limit bytes.
func (r *repo) looseBlob(hash string, limit int64) ([]byte, bool) {
	if len(hash) != 40 || strings.Trim(hash, "0123456789abcdef") != "" {
		return nil, false
	}
	f, err := os.Open(filepath.Join(r.objects, hash[:2], hash[2:]))
	if err != nil {
		return nil, false // packed, or elsewhere: keyburn reads it
	}
	defer f.Close()
	data, err := readLoose(f, limit)
	return data, err == nil
}

// readLoose inflates a loose object and returns a blob's content: at most
// limit bytes, its header's size checked.
func readLoose(r io.Reader, limit int64) ([]byte, error) {
	z, err := zlib.NewReader(r)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	var head []byte // "blob SIZE", up to its NUL
	one := []byte{0}
	for {
		if _, err := io.ReadFull(z, one); err != nil {
			return nil, err
		}
		if one[0] == 0 {
			break
		}
		if head = append(head, one[0]); len(head) > 32 {
			return nil, errors.New("no object header")
		}
	}
	kind, size, ok := strings.Cut(string(head), " ")
	if !ok || kind != "blob" {
		return nil, errors.New("not a blob")
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 || n > limit {
		return nil, errors.New("blob size out of bounds")
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(z, data); err != nil {
		return nil, err
	}
	return data, nil
}
