package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/sourcegraph/conc"

	"github.com/keyburn/keyburn/internal/diffindex"
)

// The native fast path reads objects with git's own cat-file instead of
// go-git. Inflating objects is the whole cost of a history scan, and it
// parallelises only across processes: go-git reads prometheus's history (159k
// blobs, 5 GB inflated) in 36 s in one goroutine; two `git cat-file --batch`
// processes over halves of the object list, in pack order, take about a third
// of that. go-git stays the path that always works (no git installed, or
// GitOptions.GoGitOnly).

// HasGit reports whether a git binary is on PATH.
func HasGit() bool {
	_, err := exec.LookPath("git")
	return err == nil
}

// object is one entry of the object list.
type objectInfo struct {
	hash plumbing.Hash
	typ  string
	size int64
}

// listObjects lists every object in the repository's store, in pack order.
// An object git cannot read (a corrupt loose object) is reported.
func (r *Repo) listObjects(ctx context.Context, rep Reporter) ([]objectInfo, error) {
	cmd := exec.CommandContext(ctx, "git", "-C", r.Path, "cat-file", "--batch-all-objects", "--unordered",
		"--batch-check=%(objectname) %(objecttype) %(objectsize)")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("git cat-file: %w", err)
	}
	var objs []objectInfo
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[1] == "missing" {
			rep.Failed(fmt.Errorf("read object %s: git cannot read it (corrupt or missing)", f[0]))
			continue
		}
		if len(f) != 3 {
			rep.Failed(fmt.Errorf("git cat-file --batch-check: malformed line %q", sc.Text()))
			continue
		}
		h, ok := parseHash(f[0])
		size, err := strconv.ParseInt(f[2], 10, 64)
		if !ok || err != nil {
			continue
		}
		objs = append(objs, objectInfo{h, f[1], size})
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git cat-file --batch-all-objects: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return objs, nil
}

func parseHash(s string) (plumbing.Hash, bool) {
	if len(s) != 40 {
		return plumbing.ZeroHash, false
	}
	h := plumbing.NewHash(s)
	return h, !h.IsZero() || s == plumbing.ZeroHash.String()
}

// catFile reads the objects hashes with one `git cat-file --batch` process
// and calls fn for each, in order, from the calling goroutine. fn's data is
// valid only during the call: one buffer is reused, since allocating 5 GB
// afresh for a large history costs more than inflating it. A missing object
// is reported and skipped; if git fails (a corrupt object makes it exit), the
// failing object is reported and the rest are read by a new process.
func (r *Repo) catFile(ctx context.Context, hashes []plumbing.Hash, rep Reporter, fn func(h plumbing.Hash, typ string, data []byte) error) error {
	for len(hashes) > 0 {
		rest := hashes
		hashes = nil
		pending, err := r.catFileFrom(ctx, func() []plumbing.Hash {
			b := rest
			rest = nil
			return b
		}, rep, fn)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if len(pending) == 0 {
			return err
		}
		rep.Failed(fmt.Errorf("read object %s: %w", pending[0], err))
		hashes = pending[1:]
	}
	return nil
}

// catFileFrom is catFile fed by next, which returns the following batch of
// hashes (nil at the end) and is called from one goroutine of this process.
// When git fails, it returns the hashes asked for but not delivered, the
// failing one first.
func (r *Repo) catFileFrom(ctx context.Context, next func() []plumbing.Hash, rep Reporter, fn func(h plumbing.Hash, typ string, data []byte) error) (pending []plumbing.Hash, err error) {
	cmd, in, out, stderr, err := r.startGit(ctx, "cat-file", "--batch", "--buffer")
	if err != nil {
		return nil, err
	}
	// The writer hands the reader, through sent, each batch it asks for.
	sent := make(chan []plumbing.Hash, 1024)
	var wg conc.WaitGroup
	wg.Go(func() {
		defer close(sent)
		defer in.Close()
		bw := bufio.NewWriterSize(in, 64<<10)
		for ctx.Err() == nil {
			batch := next()
			if len(batch) == 0 {
				break
			}
			// Announce before writing: git answers as it reads, and the
			// reader must be draining its answers or both block.
			sent <- batch
			for _, h := range batch {
				bw.WriteString(h.String())
				bw.WriteByte('\n')
			}
			if bw.Flush() != nil {
				break
			}
		}
	})
	br := bufio.NewReaderSize(out, 1<<20)
	var readErr error
	var buf []byte
	for batch := range sent {
		if readErr != nil {
			pending = append(pending, batch...)
			continue
		}
		var n int
		n, buf, readErr = readBatch(br, batch, buf, rep, fn)
		if readErr != nil {
			pending = append(pending, batch[n:]...)
			// Stop git at once, so that the writer cannot block on it.
			_ = cmd.Process.Kill()
			wg.Go(func() { _, _ = io.Copy(io.Discard, out) }) // until the killed process's pipe closes
		}
	}
	wg.Wait()
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case readErr != nil:
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			readErr = fmt.Errorf("%w: git said: %s", readErr, msg)
		}
		return pending, readErr
	case waitErr != nil:
		return nil, fmt.Errorf("git cat-file --batch: %w: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	return nil, nil
}

// startGit starts git in the repository with pipes to its standard input
// and output (grown, see pipeSize) and its standard error collected.
func (r *Repo) startGit(ctx context.Context, args ...string) (*exec.Cmd, io.WriteCloser, io.ReadCloser, *bytes.Buffer, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", r.Path}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	if f, ok := out.(*os.File); ok {
		growPipe(f)
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("git %s: %w", args[0], err)
	}
	return cmd, in, out, stderr, nil
}

// pipeSize is the pipe buffer asked for between git and keyburn. With
// Linux's default of 64 KiB, moving 5 GB through a pipe costs more system time
// than git spends inflating it; 1 MiB (the default limit for unprivileged
// processes) cuts the switches between the two sixteenfold.
// readBatch parses cat-file --batch output for the objects of batch: for each
// a header line "<hash> <type> <size>" (or "<name> missing"), size bytes, and
// a newline. It returns how many objects it went through.
func readBatch(br *bufio.Reader, batch []plumbing.Hash, buf []byte, rep Reporter, fn func(h plumbing.Hash, typ string, data []byte) error) (int, []byte, error) {
	for i := range batch {
		line, err := br.ReadString('\n')
		if err != nil {
			return i, buf, fmt.Errorf("git cat-file --batch stopped before object %s: %w", batch[i], err)
		}
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == "missing" {
			rep.Failed(fmt.Errorf("object %s is missing from the repository", f[0]))
			continue
		}
		if len(f) != 3 {
			return i, buf, fmt.Errorf("git cat-file --batch: malformed header %q", strings.TrimSpace(line))
		}
		h, ok := parseHash(f[0])
		size, err := strconv.ParseInt(f[2], 10, 64)
		if !ok || err != nil || size < 0 {
			return i, buf, fmt.Errorf("git cat-file --batch: malformed header %q", strings.TrimSpace(line))
		}
		if int64(cap(buf)) < size+1 {
			buf = make([]byte, size+1+size/4)
		}
		data := buf[:size+1] // and the trailing newline
		if _, err := io.ReadFull(br, data); err != nil {
			return i, buf, fmt.Errorf("git cat-file --batch: read object %s: %w", h, err)
		}
		if err := fn(h, f[1], data[:size]); err != nil {
			return i, buf, err
		}
	}
	return len(batch), buf, nil
}

// NativeScan reads the whole object store with git cat-file processes: it
// loads the commit graph (as LoadGraph does) with one process while procs
// others read the blobs and call fn with each (as Blobs does). fn is called
// from procs goroutines at once and must be safe for that; its data is valid
// only during the call.
func (r *Repo) NativeScan(ctx context.Context, procs int, maxSize int64, rep Reporter, fn func(h plumbing.Hash, data []byte) error) (*Graph, error) {
	objs, err := r.listObjects(ctx, rep)
	if err != nil {
		return nil, err
	}
	var blobs, commits, tags []plumbing.Hash
	for _, o := range objs {
		switch o.typ {
		case "tag":
			tags = append(tags, o.hash)
		case "commit":
			commits = append(commits, o.hash)
		case "blob":
			if o.size > maxSize {
				rep.Skipped("blob "+o.hash.String(), tooLarge(o.size, maxSize))
				continue
			}
			blobs = append(blobs, o.hash)
		}
	}
	objs = nil
	// The processes take batches of the pack-ordered list in turn: a batch
	// keeps its delta bases close together, and taking turns keeps every
	// process busy to the end.
	var mu sync.Mutex
	nextBatch := func() []plumbing.Hash {
		mu.Lock()
		defer mu.Unlock()
		n := min(len(blobs), catFileBatch)
		b := blobs[:n]
		blobs = blobs[n:]
		return b
	}
	procs = max(1, procs)
	var wg conc.WaitGroup
	errs := make([]error, procs+1)
	var g *Graph
	wg.Go(func() { g, errs[procs] = r.nativeGraph(ctx, commits, rep) })
	for i := range procs {
		wg.Go(func() {
			each := func(h plumbing.Hash, _ string, data []byte) error { return fn(h, data) }
			for {
				pending, err := r.catFileFrom(ctx, nextBatch, rep, each)
				if err == nil || ctx.Err() != nil || len(pending) == 0 {
					errs[i] = err
					return
				}
				// A corrupt object made git exit: report it, read the rest
				// of what this process was given, and go on with a new one.
				rep.Failed(fmt.Errorf("read object %s: %w", pending[0], err))
				if err := r.catFile(ctx, pending[1:], rep, each); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if g != nil {
		g.TagObjects = append([]plumbing.Hash{}, tags...) // non-nil: listed, even if none
	}
	return g, errors.Join(errs...)
}

// catFileBatch is how many objects a cat-file process is given at a time.
const catFileBatch = 16384

// nativeGraph loads the graph of the given commits, read with git cat-file.
func (r *Repo) nativeGraph(ctx context.Context, commits []plumbing.Hash, rep Reporter) (*Graph, error) {
	g := newGraph()
	err := r.catFile(ctx, commits, rep, func(h plumbing.Hash, typ string, data []byte) error {
		c, err := parseCommit(h, data)
		if err != nil {
			rep.Failed(fmt.Errorf("commit %s: %w", h, err))
			return nil
		}
		g.Commits[h] = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, r.finishGraph(g)
}

// NativeIntroductions finds, as Introductions does, the commits that added
// each wanted blob, with one `git log --raw` over every commit of the graph
// (reachable or not), each diffed against its first parent by git itself.
func (r *Repo) NativeIntroductions(ctx context.Context, g *Graph, want map[plumbing.Hash]bool, rep Reporter) (map[plumbing.Hash][]Introduction, error) {
	cmd, in, out, stderr, err := r.startGit(ctx, "log", "--stdin", "--no-walk=unsorted", "--raw", "--no-abbrev",
		"--no-renames", "--root", "--diff-merges=first-parent", "--format=%H")
	if err != nil {
		return nil, err
	}
	var wg conc.WaitGroup
	wg.Go(func() {
		defer in.Close()
		bw := bufio.NewWriter(in)
		for h := range g.Commits {
			bw.WriteString(h.String())
			bw.WriteByte('\n')
		}
		bw.Flush()
	})
	found := map[plumbing.Hash][]Introduction{}
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	var cur *Commit
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, ":") {
			if h, ok := parseHash(strings.TrimSpace(line)); ok {
				cur = g.Commits[h]
			}
			continue
		}
		// :100644 100644 <old> <new> M\tpath
		meta, path, ok := strings.Cut(line, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) < 5 || cur == nil || f[1] == "160000" || f[1] == "000000" {
			continue
		}
		if h, ok := parseHash(f[3]); ok && want[h] {
			found[h] = append(found[h], Introduction{Commit: cur, Path: unquotePath(path)})
		}
	}
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("git log --raw: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	for _, intros := range found {
		sort.Slice(intros, func(i, j int) bool {
			a, b := intros[i].Commit, intros[j].Commit
			if !a.When.Equal(b.When) {
				return a.When.Before(b.When)
			}
			return a.Hash.String() < b.Hash.String()
		})
	}
	return found, nil
}

// unquotePath undoes git's C-style quoting of unusual paths ("a\tb").
func unquotePath(p string) string {
	if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
		if u, err := strconv.Unquote(p); err == nil {
			return u
		}
	}
	return p
}

// NativeStaged returns what Staged does, asking git (diffindex.Staged),
// which skips unchanged directories with the index's cache tree: on 10,000
// files it answers in a few milliseconds, where decoding the index and
// walking HEAD with go-git takes 60.
func (r *Repo) NativeStaged(ctx context.Context) ([]StagedFile, error) {
	_, err := r.R.Head()
	files, err := diffindex.Staged(ctx, r.Path, err == nil)
	if err != nil {
		return nil, err
	}
	out := make([]StagedFile, 0, len(files))
	for _, f := range files {
		h, ok := parseHash(f.Blob)
		if !ok {
			return nil, fmt.Errorf("git diff-index: malformed hash %q", f.Blob)
		}
		out = append(out, StagedFile{Path: f.Path, Blob: h})
	}
	return out, nil
}
