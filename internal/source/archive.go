package source

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Archives are opened and their members scanned as files of their own,
// named ARCHIVE!MEMBER (build/app.jar!config/app.properties): zip (jar, war,
// whl, nupkg, …), tar, gzip and tar.gz, nested up to a depth. Each archive
// has a budget of decompressed bytes, all members and nesting included; an
// archive that would exceed it (a zip bomb, or just a very large archive)
// is reported and the rest of it left out.
//
// Opening every archive is asked for (--archive-depth): it costs in
// proportion to what they hold. By default the CLI opens small ones only
// (FSOptions.ArchiveMaxSize), each copy of one once (ArchiveCopies). Measured on bench/run's tree, whose Go module cache
// holds 170 MB of zipped source (450 MB more text), a scan took 3.5 times
// as long; prometheus's history, 1.19 times.
const (
	// maxMembers bounds the members read from one archive.
	maxMembers = 100_000
)

type archiveKind int

const (
	notArchive archiveKind = iota
	zipArchive
	gzipArchive
	tarArchive
)

// archiveKindOf recognises an archive by its magic bytes.
func archiveKindOf(data []byte) archiveKind {
	switch {
	case len(data) >= 4 && string(data[:4]) == "PK\x03\x04":
		return zipArchive
	case len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b:
		return gzipArchive
	case len(data) >= 262 && string(data[257:262]) == "ustar":
		return tarArchive
	}
	return notArchive
}

// archiveBudget is the most decompressed bytes one archive may yield:
// 256 MiB (a variable so that tests can make a bomb cheaply). An archive
// gets less when it is small: maxRatio times its own size, but at least
// minBudget. Text compresses about ten to one; a bomb a thousand to one and
// more, and is stopped after little work.
var archiveBudget int64 = 256 << 20

const (
	maxRatio  = 100
	minBudget = 16 << 20 // 16 MiB
)

// errBudget ends an archive whose members exceed the budget.
var errBudget = errors.New("over its decompression budget")

// expander opens archives within a budget.
type expander struct {
	left int64 // decompressed bytes left
	rep  Reporter
	fn   func(path string, text []byte)
}

// ExpandArchive calls fn with the path and text of every text member of the
// archive held in data (named name), opening nested archives up to depth.
// It reports an archive it cannot read, or whose members exceed the budget,
// as skipped (with what was scanned of it kept), and returns whether data
// was an archive at all.
func ExpandArchive(data []byte, name string, depth int, rep Reporter, fn func(path string, text []byte)) bool {
	return expandArchive(data, name, depth, 0, rep, fn)
}

// smallArchiveBudget bounds what an archive opened by default (a small
// one, FSOptions.ArchiveMaxSize) may inflate to: a zip bomb among test
// fixtures stops at 1 MiB instead of 16.
const smallArchiveBudget = 1 << 20

// expandArchive is ExpandArchive; a maxSize (not 0) says the archive was
// opened by default, and caps its budget at smallArchiveBudget.
func expandArchive(data []byte, name string, depth int, maxSize int64, rep Reporter, fn func(path string, text []byte)) bool {
	if depth <= 0 || archiveKindOf(data) == notArchive {
		return false
	}
	budget := min(archiveBudget, max(minBudget, maxRatio*int64(len(data))))
	if maxSize > 0 {
		budget = min(budget, smallArchiveBudget)
	}
	e := &expander{left: budget, rep: rep, fn: fn}
	if err := e.expand(data, name, depth); err != nil {
		switch {
		case errors.Is(err, errBudget) && maxSize > 0:
			rep.Skipped(name, fmt.Sprintf("archive: decompressed members over the %d MiB an archive opened by default may yield; the rest of it is not scanned (--archive-depth 2 opens it whole)", budget>>20))
		case errors.Is(err, errBudget):
			rep.Skipped(name, fmt.Sprintf("archive: decompressed members over its budget of %d MiB (a zip bomb?); the rest of it is not scanned", budget>>20))
		default:
			rep.Skipped(name, "archive not readable: "+err.Error())
		}
	}
	return true
}

func (e *expander) expand(data []byte, name string, depth int) error {
	switch archiveKindOf(data) {
	case zipArchive:
		return e.zip(data, name, depth)
	case gzipArchive:
		return e.gzip(data, name, depth)
	case tarArchive:
		return e.tar(bytes.NewReader(data), name, depth)
	}
	return nil
}

// read reads a member within the budget. size, when known (zip, tar), sizes
// the buffer at once: growing one by doubling cost more than inflating.
func (e *expander) read(r io.Reader, size int64) ([]byte, error) {
	if size >= 0 {
		if size > e.left {
			return nil, errBudget
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, err
		}
		e.left -= size
		return data, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, e.left+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > e.left {
		return nil, errBudget
	}
	e.left -= int64(len(data))
	return data, nil
}

// readHint reads a member of unknown size within the budget, its buffer
// sized first by hint.
func (e *expander) readHint(r io.Reader, hint int64) ([]byte, error) {
	var buf bytes.Buffer
	if hint > 0 {
		buf.Grow(int(min(hint, e.left)) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, e.left+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > e.left {
		return nil, errBudget
	}
	e.left -= int64(buf.Len())
	return buf.Bytes(), nil
}

// member scans one member: a nested archive is opened while depth allows,
// text is handed on, anything else is left out.
func (e *expander) member(data []byte, name string, depth int) error {
	if depth > 1 && archiveKindOf(data) != notArchive {
		if err := e.expand(data, name, depth-1); err != nil {
			if errors.Is(err, errBudget) {
				return err
			}
			e.rep.Skipped(name, "archive not readable: "+err.Error())
		}
		return nil
	}
	if text, ok := Text(data); ok {
		e.fn(name, text)
	}
	return nil
}

func (e *expander) zip(data []byte, name string, depth int) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	for i, f := range zr.File {
		if i >= maxMembers {
			e.rep.Skipped(name, fmt.Sprintf("archive: more than %d members; the rest are not scanned", maxMembers))
			return nil
		}
		if f.FileInfo().IsDir() {
			continue
		}
		if f.UncompressedSize64 > uint64(e.left) {
			return errBudget
		}
		rc, err := f.Open()
		if err != nil {
			e.rep.Skipped(name+"!"+f.Name, "archive member not readable: "+err.Error())
			continue
		}
		body, err := e.read(rc, int64(f.UncompressedSize64))
		rc.Close()
		if errors.Is(err, errBudget) {
			return err
		}
		if err != nil {
			e.rep.Skipped(name+"!"+f.Name, "archive member not readable: "+err.Error())
			continue
		}
		if err := e.member(body, name+"!"+f.Name, depth); err != nil {
			return err
		}
	}
	return nil
}

func (e *expander) gzip(data []byte, name string, depth int) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer zr.Close()
	// The trailer holds the inflated size (modulo 4 GiB): a hint for the
	// buffer, never trusted beyond the budget.
	hint := int64(-1)
	if len(data) >= 18 {
		hint = int64(binary.LittleEndian.Uint32(data[len(data)-4:]))
	}
	body, err := e.readHint(zr, hint)
	if err != nil {
		return err
	}
	inner := zr.Name
	if inner == "" {
		inner = strings.TrimSuffix(strings.TrimSuffix(path.Base(name), ".gz"), ".tgz")
	}
	if archiveKindOf(body) == tarArchive {
		// A .tar.gz is one archive: its members are one level down.
		return e.tar(bytes.NewReader(body), name, depth)
	}
	return e.member(body, name+"!"+inner, depth)
}

func (e *expander) tar(r io.Reader, name string, depth int) error {
	tr := tar.NewReader(r)
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if i >= maxMembers {
			e.rep.Skipped(name, fmt.Sprintf("archive: more than %d members; the rest are not scanned", maxMembers))
			return nil
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > e.left {
			return errBudget
		}
		body, err := e.read(tr, h.Size)
		if err != nil {
			return err
		}
		if err := e.member(body, name+"!"+h.Name, depth); err != nil {
			return err
		}
	}
}
