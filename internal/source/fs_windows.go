package source

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

type fileID struct{ path string }

// idOf identifies a directory by its path with every link resolved, so
// that a walk through links (and junctions) enters each once.
func idOf(path string, _ fs.FileInfo) (fileID, bool) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fileID{}, false
	}
	return fileID{strings.ToLower(real)}, true
}

// openFile opens a file for reading.
func openFile(path string) (fdReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return fdReader{}, err
	}
	return fdReader{f: f, path: path}, nil
}

// fdReader reads an open file; it can also tell the file's size.
type fdReader struct {
	f    *os.File
	path string
}

func (f fdReader) close() { _ = f.f.Close() }

func (f fdReader) Read(p []byte) (int, error) { return f.f.Read(p) }

func (f fdReader) size() (int64, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
