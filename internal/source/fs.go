package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/keyburn/keyburn/internal/treepath"
)

// Limits for reading files. A file is read whole when it fits in one chunk,
// and in overlapping chunks otherwise, so memory stays bounded by
// workers × ChunkSize whatever the file sizes.
const (
	DefaultMaxFileSize = 256 << 20 // 256 MiB: larger files are skipped and reported
	DefaultChunkSize   = 4 << 20   // 4 MiB
	// DefaultChunkOverlap must exceed the longest match with its context:
	// a key ID, a URL-encoded secret, a session token (a few KiB at most).
	DefaultChunkOverlap = 64 << 10
	// sniffLen is how much of a file decides whether it is binary, as git
	// does: a NUL byte in the first 8000 bytes.
	sniffLen = 8000
)

// FSOptions configures reading files. The zero value uses the defaults.
type FSOptions struct {
	MaxFileSize  int64
	ChunkSize    int
	ChunkOverlap int
	// ArchiveDepth is how deep archives are opened (2 opens a jar inside a
	// war); 0 leaves them closed, as compressed files.
	ArchiveDepth int
	// ArchiveMaxSize, when not 0, leaves archives larger than this closed
	// (the CLI's default: small archives are opened at no notable cost,
	// large ones only when asked).
	ArchiveMaxSize int64
	// SkipBinaries leaves binary files out. By default they are scanned as
	// they are, which finds the printable strings in them as strings(1)
	// would: any byte that is not a letter or digit ends a key ID or a
	// secret. Compressed files and images are left out either way.
	SkipBinaries bool
}

func (o FSOptions) withDefaults() FSOptions {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkOverlap <= 0 || o.ChunkOverlap >= o.ChunkSize {
		o.ChunkOverlap = min(DefaultChunkOverlap, o.ChunkSize/2)
	}
	return o
}

// File is a regular file found by Walk.
type File struct {
	Path string // as reached from the root, OS-separated
	Root string // the root it was reached from, as given to Walk
	Size int64  // -1 when not known before reading
}

// Walk calls visit for every regular file under roots (files or
// directories), in directory order, from the calling goroutine.
//
// Hidden files are included and .gitignore is not honoured: an ignored file
// on disk can still leak. .git directories are skipped (scan git reads
// history). A root is taken as given, links and all: the operator named it.
// Nothing under a root is read outside it: a symbolic link whose target
// leaves the root (a cloned tree's "config.env -> ~/.aws/credentials") is
// never followed, and is reported as skipped with the reason
// LinkOutsideRoot. A link whose target is inside the root is not followed
// either: the target is scanned once, at its own path, by the walk itself.
// A directory reached twice (a bind mount) is walked once. Files that are
// not regular (sockets, devices) are reported as skipped; unreadable
// directories as failures, and the walk goes on. Walk returns only ctx's
// error.
func Walk(ctx context.Context, roots []string, visit func(File), rep Reporter) error {
	w := &walker{ctx: ctx, visit: visit, rep: rep, dirs: map[fileID]bool{}}
	for _, root := range roots {
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := os.Stat(root)
		if err != nil {
			rep.Failed(fmt.Errorf("scan %s: %w", root, err))
			continue
		}
		w.root = root
		if w.realRoot, err = filepath.EvalSymlinks(root); err != nil {
			rep.Failed(fmt.Errorf("scan %s: %w", root, err))
			continue
		}
		if w.realRoot, err = filepath.Abs(w.realRoot); err != nil {
			rep.Failed(fmt.Errorf("scan %s: %w", root, err))
			continue
		}
		w.entry(root, fi)
	}
	return ctx.Err()
}

type walker struct {
	root     string // the root being walked
	realRoot string // root with its links resolved, absolute
	ctx      context.Context
	visit    func(File)
	rep      Reporter
	dirs     map[fileID]bool
}

// entry handles path, whose (followed) info is fi.
func (w *walker) entry(path string, fi fs.FileInfo) {
	switch {
	case fi.IsDir():
		w.dir(path, fi)
	case fi.Mode().IsRegular():
		w.visit(File{Path: path, Root: w.root, Size: fi.Size()})
	default:
		w.rep.Skipped(path, "not a regular file ("+fi.Mode().Type().String()+")")
	}
}

func (w *walker) dir(path string, fi fs.FileInfo) {
	if id, ok := idOf(path, fi); ok {
		if w.dirs[id] {
			w.rep.Skipped(path, "directory already scanned (symbolic link loop or second link)")
			return
		}
		w.dirs[id] = true
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		w.rep.Failed(fmt.Errorf("read directory %s: %w", path, err))
		// ReadDir returns what it read before the error: go on with it.
	}
	for _, e := range ents {
		if w.ctx.Err() != nil {
			return
		}
		p := filepath.Join(path, e.Name())
		t := e.Type()
		switch {
		case t.IsDir():
			if e.Name() == ".git" {
				continue
			}
			info, err := e.Info()
			if err != nil {
				w.rep.Failed(fmt.Errorf("stat %s: %w", p, err))
				continue
			}
			w.dir(p, info)
		case t.IsRegular():
			// No stat: the reader learns the size as it reads. (A stat per
			// file cost 15% of a scan's CPU time.)
			w.visit(File{Path: p, Root: w.root, Size: -1})
		case t&fs.ModeSymlink != 0:
			w.link(p)
		default:
			w.rep.Skipped(p, "not a regular file ("+t.String()+")")
		}
	}
}

// LinkOutsideRoot is the reason a symbolic link leaving the scanned root is
// skipped.
const LinkOutsideRoot = "symbolic link out of the scanned root"

// link handles a symbolic link met inside the root: it is never followed.
// Its target, when inside the root, is scanned at its own path by the walk;
// a target outside the root is not read, and said.
func (w *walker) link(p string) {
	real, err := filepath.EvalSymlinks(p)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Broken links are common (node_modules, virtualenvs) and hold
		// nothing to read.
		w.rep.Skipped(p, "broken symbolic link")
	case err != nil:
		w.rep.Failed(fmt.Errorf("follow symbolic link %s: %w", p, err))
	case !treepath.Within(w.realRoot, real):
		w.rep.Skipped(p, LinkOutsideRoot+" (to "+real+"): not read")
	}
}

// OpensArchive reports whether an archive of size bytes is opened under
// depth and maxSize (0: any size).
func OpensArchive(depth int, maxSize int64, size int) bool {
	return depth > 0 && (maxSize == 0 || int64(size) <= maxSize)
}

// Reader reads files into chunks, reusing its buffer. A Reader is owned by
// one goroutine; make one per worker.
type Reader struct {
	opts FSOptions
	buf  []byte
	// copies, when set, is told of every archive opened: a copy of one
	// opened before is not opened again.
	copies *ArchiveCopies
}

// NewReader returns a Reader with the given options.
func NewReader(opts FSOptions) *Reader {
	return &Reader{opts: opts.withDefaults()}
}

// ErrTooLarge is reported for files over the size limit.
var ErrTooLarge = errors.New("file over the size limit")

// ReadFile calls fn with the chunks of the file at path, in order. The chunk
// data is valid only during the call. Binary files are skipped (reported to
// rep); UTF-16 text is decoded to UTF-8 first.
//
// Files are opened, read and closed with plain system calls: os.Open adds an
// fstat and poller bookkeeping that cost a fifth of a scan of many small
// files, and nothing here needs them.
func (r *Reader) ReadFile(ctx context.Context, f File, rep Reporter, fn func(Chunk) error) error {
	if f.Size > r.opts.MaxFileSize {
		rep.Skipped(f.Path, tooLarge(f.Size, r.opts.MaxFileSize))
		return nil
	}
	fr, err := openFile(f.Path)
	if err != nil {
		return err // a *fs.PathError: "open PATH: reason"
	}
	defer fr.close()
	return r.read(ctx, fr, Provenance{Path: filepath.ToSlash(f.Path)}, rep, fn)
}

func tooLarge(size, limit int64) string {
	return fmt.Sprintf("%d bytes, over the %d-byte limit (--max-file-size)", size, limit)
}

// Read calls fn with the chunks of everything rd yields, as ReadFile does
// for a file (used for standard input). prov names the input.
func (r *Reader) Read(ctx context.Context, rd io.Reader, prov Provenance, rep Reporter, fn func(Chunk) error) error {
	return r.read(ctx, rd, prov, rep, fn)
}

func (r *Reader) read(ctx context.Context, rd io.Reader, prov Provenance, rep Reporter, fn func(Chunk) error) error {
	size, overlap := r.opts.ChunkSize, r.opts.ChunkOverlap
	n, atEnd, err := r.fill(rd, size)
	if err != nil {
		return fmt.Errorf("read %s: %w", prov.Path, err)
	}
	buf := r.buf // holds a whole chunk when !atEnd
	if !atEnd || int64(n) > r.opts.MaxFileSize {
		// A large file: check the limit before reading on.
		if fr, ok := rd.(fdReader); ok {
			total, err := fr.size()
			if err != nil {
				return fmt.Errorf("stat %s: %w", prov.Path, err)
			}
			if total > r.opts.MaxFileSize {
				rep.Skipped(prov.Path, tooLarge(total, r.opts.MaxFileSize))
				return nil
			}
		}
	}
	data := buf[:n]
	if r.opts.ArchiveDepth > 0 && archiveKindOf(data) != notArchive && (r.opts.ArchiveMaxSize == 0 || atEnd && int64(n) <= r.opts.ArchiveMaxSize) {
		return r.archive(rd, data, atEnd, prov, rep, fn)
	}
	kind := sniff(data)
	switch kind {
	case kindBinary:
		if IsPNG(data) {
			// Its text chunks, never its pixels: read it whole (within
			// the size limit), as text chunks may follow the image data.
			rest, err := io.ReadAll(io.LimitReader(rd, r.opts.MaxFileSize))
			if err != nil {
				return fmt.Errorf("read %s: %w", prov.Path, err)
			}
			if text := PNGText(append(append([]byte{}, data...), rest...)); text != nil {
				prov.Binary = true
				return fn(Whole(text, prov))
			}
		}
		if why := unscannable(data, r.opts.SkipBinaries); why != "" {
			rep.Skipped(prov.Path, why)
			return nil
		}
		prov.Binary = true
	case kindUTF16LE, kindUTF16BE:
		// UTF-16 files are rare and small (Windows .reg, PowerShell
		// output): read the rest and decode the whole.
		rest, err := io.ReadAll(io.LimitReader(rd, r.opts.MaxFileSize))
		if err != nil {
			return fmt.Errorf("read %s: %w", prov.Path, err)
		}
		data = decodeUTF16(append(append([]byte{}, data...), rest...), kind == kindUTF16BE)
		return fn(Whole(data, prov))
	}
	var offset int64
	line, col := 1, 1
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := Chunk{Data: data, Offset: offset, Line: line, Column: col, AtStart: offset == 0, AtEnd: atEnd, OwnEnd: len(data), Prov: prov}
		if !c.AtStart {
			c.OwnStart = overlap / 2
		}
		if !c.AtEnd {
			c.OwnEnd = len(data) - (overlap - overlap/2)
		}
		if err := fn(c); err != nil {
			return err
		}
		if atEnd {
			return nil
		}
		// Keep the last overlap bytes and fill the rest.
		keep := data[len(data)-overlap:]
		done := data[:len(data)-overlap]
		line += bytes.Count(done, []byte("\n"))
		if nl := bytes.LastIndexByte(done, '\n'); nl >= 0 {
			col = len(done) - nl // the column of keep[0]
		} else {
			col += len(done) // a line longer than a chunk
		}
		offset += int64(len(data) - overlap)
		copy(buf, keep)
		m, err := io.ReadFull(rd, buf[overlap:])
		switch {
		case err == io.ErrUnexpectedEOF || err == io.EOF:
			atEnd = true
		case err != nil:
			return fmt.Errorf("read %s at offset %d: %w", prov.Path, offset+int64(overlap), err)
		}
		// When the previous chunk ended exactly at the end (m == 0), this
		// last chunk is the overlap alone: it owns the overlap's second
		// half, which the previous chunk left to it.
		data = buf[:overlap+m]
	}
}

// archive reads the rest of an archive whose start is head (within the
// size limit, checked before) and scans its members.
func (r *Reader) archive(rd io.Reader, head []byte, atEnd bool, prov Provenance, rep Reporter, fn func(Chunk) error) error {
	data := head
	if !atEnd {
		// Size the buffer from the file once, rather than growing it.
		total := int64(len(head)) * 2
		if fr, ok := rd.(fdReader); ok {
			if n, err := fr.size(); err == nil {
				total = n
			}
		}
		buf := make([]byte, max(int64(len(head)), min(total, r.opts.MaxFileSize)))
		copy(buf, head)
		n, err := io.ReadFull(rd, buf[len(head):])
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return fmt.Errorf("read %s: %w", prov.Path, err)
		}
		data = buf[:len(head)+n]
	}
	if r.copies != nil {
		if r.copies.claim(data, prov.Path) != "" {
			return nil // a copy: reported as the first (ArchiveCopies)
		}
		rep = r.copies.noting(prov.Path, rep)
	}
	var ferr error
	expandArchive(data, prov.Path, r.opts.ArchiveDepth, r.opts.ArchiveMaxSize, rep, func(member string, text []byte) {
		if ferr == nil {
			p := prov
			p.Path = member
			ferr = fn(Whole(text, p))
		}
	})
	return ferr
}

// initialBuffer is a Reader's first buffer. It grows, up to a chunk, only
// for larger files: most files are small, and a 4 MiB buffer per worker costs
// a small scan more in page faults than the whole scan of its files.
const initialBuffer = 64 << 10

// fill reads into r.buf until it holds limit bytes or the input ends,
// growing the buffer as needed. It returns how many bytes it holds and
// whether the input ended.
func (r *Reader) fill(rd io.Reader, limit int) (n int, atEnd bool, err error) {
	if r.buf == nil {
		r.buf = make([]byte, min(initialBuffer, limit))
	}
	for {
		if n == len(r.buf) {
			if n >= limit {
				return n, false, nil
			}
			grown := make([]byte, min(2*len(r.buf), limit))
			copy(grown, r.buf[:n])
			r.buf = grown
		}
		m, err := rd.Read(r.buf[n:])
		n += m
		switch {
		case err == io.EOF:
			return n, true, nil
		case err != nil:
			return n, false, err
		}
	}
}

// Text returns data as text to scan: UTF-16 decoded to UTF-8, and ok false
// for binary data.
func Text(data []byte) (text []byte, ok bool) {
	switch k := sniff(data); k {
	case kindBinary:
		return nil, false
	case kindUTF16LE, kindUTF16BE:
		return decodeUTF16(data, k == kindUTF16BE), true
	default:
		return data, true
	}
}

// Scannable returns what of data to scan: text as Text gives it, a binary
// as it is (binary true) unless skipBinaries; why says why there is
// nothing to scan (compressed data, an image, a binary when skipped).
func Scannable(data []byte, skipBinaries bool) (text []byte, binary bool, why string) {
	if text, ok := Text(data); ok {
		return text, false, ""
	}
	if IsPNG(data) {
		// Its text chunks, never its pixels.
		if text := PNGText(data); text != nil {
			return text, true, ""
		}
	}
	if why := unscannable(data, skipBinaries); why != "" {
		return nil, true, why
	}
	return data, true, ""
}

// unscannable says why a binary is not scanned, or "": compressed data and
// images hold no text worth a search (archives are opened by
// --archive-depth), and binaries may be skipped on purpose.
func unscannable(data []byte, skipBinaries bool) string {
	for _, m := range compressedMagic {
		if bytes.HasPrefix(data, []byte(m.magic)) {
			return "compressed (" + m.format + ")"
		}
	}
	if skipBinaries {
		return "binary"
	}
	return ""
}

// compressedMagic are the first bytes of compressed formats and images.
var compressedMagic = []struct{ magic, format string }{
	{"PK\x03\x04", "zip"}, {"PK\x05\x06", "zip"}, {"\x1f\x8b", "gzip"}, {"BZh", "bzip2"},
	{"\xfd7zXZ\x00", "xz"}, {"\x28\xb5\x2f\xfd", "zstd"}, {"7z\xbc\xaf\x27\x1c", "7z"},
	{"\x89PNG", "png"}, {"\xff\xd8\xff", "jpeg"}, {"GIF8", "gif"}, {"RIFF", "riff (webp, wav)"},
}

type kind int

const (
	kindText kind = iota
	kindBinary
	kindUTF16LE
	kindUTF16BE
)

// sniff classifies the start of a file: UTF-16 by its byte-order mark or by
// NULs in every other byte of ASCII text, binary by any other NUL in the
// first sniffLen bytes, text otherwise.
func sniff(data []byte) kind {
	head := data[:min(len(data), sniffLen)]
	if len(head) >= 2 {
		switch {
		case head[0] == 0xFF && head[1] == 0xFE:
			return kindUTF16LE
		case head[0] == 0xFE && head[1] == 0xFF:
			return kindUTF16BE
		}
	}
	if bytes.IndexByte(head, 0) < 0 {
		return kindText
	}
	// UTF-16 without a mark: ASCII text puts a NUL in every odd (LE) or
	// even (BE) byte.
	if len(head) >= 8 {
		var evenNUL, oddNUL int
		for i, b := range head {
			if b == 0 {
				if i%2 == 0 {
					evenNUL++
				} else {
					oddNUL++
				}
			}
		}
		half := len(head) / 2
		switch {
		case oddNUL*10 >= half*9 && evenNUL*10 < half:
			return kindUTF16LE
		case evenNUL*10 >= half*9 && oddNUL*10 < half:
			return kindUTF16BE
		}
	}
	return kindBinary
}

func decodeUTF16(b []byte, bigEndian bool) []byte {
	if len(b) >= 2 && (b[0] == 0xFF && b[1] == 0xFE || b[0] == 0xFE && b[1] == 0xFF) {
		b = b[2:]
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		if bigEndian {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		} else {
			u[i] = uint16(b[2*i+1])<<8 | uint16(b[2*i])
		}
	}
	runes := utf16.Decode(u)
	out := make([]byte, 0, len(runes))
	for _, r := range runes {
		out = utf8.AppendRune(out, r)
	}
	return out
}
